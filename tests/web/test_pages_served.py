"""The pages as served: a real gateway with emulated upstreams, generations recorded through both SDKs.

The Markdown is parsed (markdown-it-py) for the seed page's structure and figures; every table of the
Markdown form appears, cell for cell, in the HTML form; the printed code runs as printed."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from support.clients import anthropic_client, openai_client
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url, two_format_config
from support.pages import MD, get, html_tables, md_headings, md_tables
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply

from keeprouter.api.http import STATE


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    async with run_gateway(two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))) as g:
        yield g


async def record_traffic(gw: RunningGateway, oa: OpenAIUpstream, an: AnthropicUpstream) -> str:
    key = (await gw.create_key("pages", limit=5))["key"]
    oa.script(Reply(text="hi", input_tokens=120, output_tokens=30), Reply(text="yo", input_tokens=80, output_tokens=20))
    async with openai_client(gw.url, key) as oc, anthropic_client(gw.url, key) as ac:
        await oc.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}],
            extra_headers={"HTTP-Referer": "https://cline.bot", "X-Title": "Cline"},
        )  # fmt: skip
        await ac.messages.create(model="gpt-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    await gw.server.app[STATE].gateway.drain()
    return str(key)


SEED_HEADINGS = [
    ("h1", "GPT Test API — pricing & specs"),
    ("h2", "Specs"),
    ("h2", "Call GPT Test"),
]
SECTION_ORDER = ["Specs", "Call GPT Test", "Providers", "Performance", "Recent activity",
                 "Prompt caching this month", "Uptime", "Apps using GPT Test", "FAQ", "Guides",
                 "More models from Test", "More"]  # fmt: skip


async def test_model_page_markdown_structure_and_recorded_figures(
    gw: RunningGateway, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    await record_traffic(gw, openai_upstream, anthropic_upstream)
    status, ctype, text, _ = await get(gw.url + "/models/gpt-test.md")
    assert (status, ctype) == (200, "text/markdown; charset=utf-8")
    heads = md_headings(text)
    assert heads[:3] == SEED_HEADINGS
    assert [h for tag, h in heads if tag == "h2"] == SECTION_ORDER
    tables = {t[0][0] + "|" + t[0][1]: t for t in md_tables(text)}
    specs = {name: value for name, value in tables["Spec|Value"][1:]}  # two cells a row
    assert specs["Input price"] == "$1.00 per 1M tokens" and specs["Output price"] == "$2.00 per 1M tokens"
    assert specs["Context length"] == "100,000 tokens" and specs["Model id"] == "gpt-test"
    (provider,) = tables["Provider|Input"][1:]
    assert provider[:4] == ["oa", "$1.00", "$2.00", "100,000"] and provider[4] == "100.0%" and provider[-1] == "live"
    activity = tables["Date|Prompt tokens"]
    assert activity[0] == ["Date", "Prompt tokens", "Completion tokens", "Reasoning tokens", "Requests"]
    (today,) = activity[1:]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", today[0]) and today[1:] == ["200", "50", "0", "2"]
    apps = tables["App|Tokens"]
    assert apps[1:] == [["Cline", "150", "1"]]  # the Anthropic SDK call sent no attribution
    assert "about $0.002" in text  # 1000 x $1 + 500 x $2 per 1M


async def test_the_model_page_shows_this_months_cache_read_share_and_saving(
    gw: RunningGateway, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    key = (await gw.create_key("cache"))["key"]
    # 100 fresh + 900 read from cache, then 1,000 fresh: 900 of 2,000 prompt tokens (45.0%);
    # saved 900 x ($3.00 - $0.30) per 1M = $0.00243
    anthropic_upstream.script(Reply(text="a", input_tokens=100, cache_read=900), Reply(text="b", input_tokens=1000))
    async with anthropic_client(gw.url, key) as ac:
        for _ in range(2):
            await ac.messages.create(model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    await gw.server.app[STATE].gateway.drain()
    _, _, md, _ = await get(gw.url + "/models/claude-test.md")
    _, _, html, _ = await get(gw.url + "/models/claude-test")
    note = re.search(r"Since \d{4}-\d{2}-01 \(this month, UTC\), .*?saved \$[0-9.]+\.", md, re.S)
    assert note is not None, md
    sentence = " ".join(note.group(0).split())
    assert "45.0% of prompt tokens" in sentence and "(900 of 2,000 over 2 requests)" in sentence
    assert sentence.endswith("saved $0.0024.")
    assert sentence in " ".join(html.replace("&#39;", "'").split())


async def test_html_and_markdown_agree_on_every_figure(
    gw: RunningGateway, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    await record_traffic(gw, openai_upstream, anthropic_upstream)
    for path in ("/models/gpt-test", "/models/both-test", "/models", "/providers", "/providers/oa", "/rankings", "/"):
        _, _, html, _ = await get(gw.url + path)
        _, _, md, _ = await get(gw.url + (path if path != "/" else "/index") + ".md")
        md_t = md_tables(md)
        assert md_t, path
        if path == "/models":  # a list of cards in HTML, a table in Markdown: compare the figures
            for row in md_t[0][1:]:
                for figure in (row[1], row[3], row[4], row[5], row[6], row[8]):  # id, type, prices, context, caps
                    assert f">{figure}<" in html, (row[0], figure)
            continue
        html_rows = {tuple(r) for t in html_tables(html) for r in t}
        for table in md_t:
            for row in table:
                assert tuple(row) in html_rows, (path, row)


async def test_the_seed_page_on_a_server_without_any_provider_key(tmp_path: Path) -> None:
    async with run_gateway({"database": sqlite_url(tmp_path), "admin_key": ADMIN_KEY}) as g:
        status, _, text, _ = await get(g.url + "/models/ministral-14b-latest.md")
        assert status == 200
        assert md_headings(text)[0] == ("h1", "Ministral 14B API — pricing & specs")
        assert "Mistral AI" in text and "$0.20 per 1M tokens" in text and "about $0.0003" in text
        context = g.config.models["ministral-14b-latest"].context_length
        assert "billed at cost with no markup" in text and f"| Context length | {context:,} tokens |" in text
        assert "not available on this server: set MISTRAL\\_API\\_KEY" not in text  # never escaped into noise
        assert "not available on this server: set MISTRAL_API_KEY" in text
        listing = (await get(g.url + "/models"))[2]
        for m in g.config.models.values():  # every catalogue model, callable here or not
            assert f'href="/models/{m.id}"' in listing
        home = (await get(g.url + "/"))[2]
        assert g.url + "/v1" in home and "MISTRAL_API_KEY" in home


async def test_printed_python_samples_run_as_printed(
    gw: RunningGateway, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    key = (await gw.create_key("samples"))["key"]
    openai_upstream.script(*[Reply(text="Hello from the sample") for _ in range(3)])
    _, _, text, _ = await get(gw.url + "/models/gpt-test.md")
    blocks = [t.content for t in MD.parse(text) if t.type == "fence" and t.info == "python"]
    assert len(blocks) == 2  # the OpenAI and the Anthropic SDK

    def run(code: str) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "<sample>", "exec"), {"__name__": "__sample__"})
        return out.getvalue()

    os.environ["KEEPROUTER_API_KEY"] = str(key)
    try:
        for code in blocks:
            assert (await asyncio.to_thread(run, code)).strip() == "Hello from the sample"
    finally:
        del os.environ["KEEPROUTER_API_KEY"]


async def test_content_types_not_found_and_security_headers(gw: RunningGateway) -> None:
    for path, ctype in [("/", "text/html"), ("/index.md", "text/markdown"), ("/models", "text/html"),
                        ("/docs/quickstart.md", "text/markdown"), ("/use-cases/openai-sdk", "text/html"),
                        ("/llms.txt", "text/plain")]:  # fmt: skip
        status, got, _, headers = await get(gw.url + path)
        assert (status, got) == (200, ctype + "; charset=utf-8"), path
        assert (
            "default-src 'none'" in headers["Content-Security-Policy"]
            and "script-src 'self'" in headers["Content-Security-Policy"]
        )
    for path, ctype in [("/models/nope", "text/html"), ("/models/nope.md", "text/markdown"),
                        ("/providers/nope", "text/html")]:  # fmt: skip
        status, got, body, _ = await get(gw.url + path)
        assert (status, got) == (404, ctype + "; charset=utf-8") and "Not found" in body
    # the JSON catalogue keeps its paths and shapes
    status, ctype, _, _ = await get(gw.url + "/v1/models")
    assert (status, ctype) == (200, "application/json; charset=utf-8") or ctype.startswith("application/json")
    status, ctype, body, _ = await get(gw.url + "/", {"Accept": "application/json"})
    assert ctype.startswith("application/json") and '"openai_base_url"' in body


async def test_static_files_are_content_addressed_and_cached_forever(gw: RunningGateway) -> None:
    _, _, html, _ = await get(gw.url + "/models")
    (css,) = re.findall(r'href="(/static/site\.[0-9a-f]{12}\.css)"', html)
    status, ctype, _, headers = await get(gw.url + css)
    assert (status, ctype) == (200, "text/css; charset=utf-8")
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert (await get(gw.url + "/static/site.000000000000.css"))[0] == 404


async def test_llms_txt_links_resolve(gw: RunningGateway) -> None:
    _, _, text, _ = await get(gw.url + "/llms.txt")
    links = re.findall(r"\]\((http://[^)]+)\)", text)
    assert any(u.endswith("/models/gpt-test.md") for u in links)
    for url in links:
        status, ctype, _, _ = await get(url)
        assert status == 200, url
        assert ctype.startswith(("text/markdown", "application/json")), url


@pytest.mark.parametrize(
    ("site", "headers", "base"),
    [
        ({"public_url": "https://router.example"}, {}, "https://router.example"),
        ({}, {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}, None),  # untrusted peer
        ({"trusted_proxies": ["127.0.0.1"]}, {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "r.example"},
         "https://r.example"),
        ({}, {"Host": "bad host<script>"}, None),
    ],
)  # fmt: skip
async def test_base_url_shown_in_code_samples(
    openai_upstream: OpenAIUpstream, tmp_path: Path, site: dict[str, Any], headers: dict[str, str], base: str | None
) -> None:
    cfg = two_format_config(openai_upstream.url, openai_upstream.url, sqlite_url(tmp_path), site=site)
    async with run_gateway(cfg) as g:
        _, _, text, _ = await get(g.url + "/docs/quickstart.md", headers)
        expected = base or g.url
        assert f"curl {expected}/v1/chat/completions" in text
        assert "evil.example" not in text and "<script>" not in text

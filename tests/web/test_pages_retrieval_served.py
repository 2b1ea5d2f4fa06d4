"""The pages of embedding and rerank models as served, against a real gateway and an emulated
OpenAI-compatible host: the printed samples (Python through the openai and cohere SDKs, and cURL)
run as printed; the Markdown and HTML say the same; /models filters by type."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from support.gateway import RunningGateway, run_gateway, sqlite_url
from support.pages import MD, get, html_tables, md_tables
from upstreams import OpenAIUpstream
from upstreams.embeddings import DEFAULT_DIMS, score, vector_for

from keeprouter.web.pages.samples import QUERY, TEXTS


@pytest_asyncio.fixture
async def gw(openai_upstream: OpenAIUpstream, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    up = {"api": "openai", "base_url": openai_upstream.url, "api_key": openai_upstream.expected_key}
    cfg = {
        "database": sqlite_url(tmp_path),
        "providers": {"up": up},
        "models": {
            "emb-test": {
                "name": "Emb Test", "modality": "text->embedding", "dimensions": DEFAULT_DIMS, "context_length": 8192,
                "endpoints": [{"provider": "up", "model": "up-emb", "pricing": {"input": 0.02}}],
            },
            "rr-test": {
                "name": "Rerank Test", "modality": "text->rerank", "context_length": 4096,
                "endpoints": [{"provider": "up", "model": "up-rr", "pricing": {"input": 0.05, "request": 0.002}}],
            },
            "chat-test": {"endpoints": [{"provider": "up", "model": "up-chat", "pricing": {"input": 1, "output": 2}}]},
        },
    }  # fmt: skip
    async with run_gateway(cfg) as g:
        yield g


def fences(text: str, lang: str) -> list[str]:
    return [t.content for t in MD.parse(text) if t.type == "fence" and t.info == lang]


def run_python(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<sample>", "exec"), {"__name__": "__sample__"})
    return out.getvalue()


def run_sh(code: str) -> Any:
    done = subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=30, check=True)
    return orjson.loads(done.stdout)


@pytest.fixture
def api_key_env() -> Any:
    """Sets KEEPROUTER_API_KEY, as the pages tell the reader to, for the samples to read."""

    def put(key: str) -> None:
        os.environ["KEEPROUTER_API_KEY"] = key

    yield put
    os.environ.pop("KEEPROUTER_API_KEY", None)


async def test_the_printed_embeddings_samples_run_as_printed(
    gw: RunningGateway, openai_upstream: OpenAIUpstream, api_key_env: Any
) -> None:
    api_key_env((await gw.create_key("samples"))["key"])
    _, _, text, _ = await get(gw.url + "/models/emb-test.md")
    (python,) = fences(text, "python")
    assert "client.embeddings.create(" in python
    assert (await asyncio.to_thread(run_python, python)).strip() == f"2 vectors of {DEFAULT_DIMS} dimensions"
    embedded = [r.body["input"] for r in openai_upstream.requests if r.path.endswith("/embeddings")]
    assert embedded == [list(TEXTS[:2])]
    if shutil.which("curl"):
        (curl,) = fences(text, "sh")
        answer = await asyncio.to_thread(run_sh, curl)
        assert [d["embedding"] for d in answer["data"]] == [vector_for(t) for t in TEXTS[:2]]
        assert answer["usage"]["cost"] > 0


async def test_the_printed_rerank_samples_run_as_printed(
    gw: RunningGateway, openai_upstream: OpenAIUpstream, api_key_env: Any
) -> None:
    api_key_env((await gw.create_key("samples"))["key"])
    _, _, text, _ = await get(gw.url + "/models/rr-test.md")
    (python,) = fences(text, "python")
    assert "cohere.ClientV2(" in python
    best = sorted(range(len(TEXTS)), key=lambda i: -score(QUERY, TEXTS[i]))[:2]
    printed = (await asyncio.to_thread(run_python, python)).strip().splitlines()
    assert printed == [f"{i} {round(score(QUERY, TEXTS[i]), 3)}" for i in best]
    assert openai_upstream.requests[-1].path == "/v1/rerank"
    if shutil.which("curl"):
        (curl,) = fences(text, "sh")
        answer = await asyncio.to_thread(run_sh, curl)
        assert [r["index"] for r in answer["results"]] == best


async def test_an_embedding_models_page_says_the_same_in_html_and_markdown(gw: RunningGateway) -> None:
    _, _, md, _ = await get(gw.url + "/models/emb-test.md")
    _, _, html, _ = await get(gw.url + "/models/emb-test")
    specs = dict(row for row in md_tables(md)[0][1:])
    assert specs["Dimensions"] == f"{DEFAULT_DIMS:,}" and specs["Input price"] == "$0.02 per 1M tokens"
    assert "Output price" not in specs and "reply" not in md and "Output" not in md_tables(md)[1][0]
    for table in md_tables(md):  # every Markdown table appears cell for cell in the HTML form
        assert table in html_tables(html)
    _, _, rr, _ = await get(gw.url + "/models/rr-test.md")
    assert dict(row for row in md_tables(rr)[0][1:])["Search price"] == "$0.002 per search"


async def test_the_models_list_filters_by_type_in_both_forms(gw: RunningGateway) -> None:
    _, _, md, _ = await get(gw.url + "/models.md?modality=embedding")
    (listing,) = md_tables(md)
    ids = {row[1] for row in listing[1:]}
    assert "emb-test" in ids and "chat-test" not in ids and "rr-test" not in ids
    assert {row[3] for row in listing[1:]} == {"Embeddings"}
    _, _, html, _ = await get(gw.url + "/models?modality=rerank")
    assert 'href="/models/rr-test"' in html and 'href="/models/chat-test"' not in html
    assert '<option value="rerank" selected>Rerank</option>' in html
    assert 'data-modality="rerank"' in html

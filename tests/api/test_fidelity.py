"""Nothing silently lost, at the wire (raw HTTP, both emulated upstream formats): logprobs and
system_fingerprint passed back, every choice of `n`, documents, Messages `fallbacks`, and the
X-KeepRouter-Dropped header naming what an upstream could not honour."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from support.raw import auth, loads, sse_events
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply

HI = [{"role": "user", "content": "Hi"}]
DROPPED = "X-KeepRouter-Dropped"


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    async with run_gateway(two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))) as g:
        yield g


async def post(gw: RunningGateway, api: str, body: dict[str, Any]) -> tuple[int, Any, Any]:
    """(status, JSON body or the list of stream payloads, headers)."""
    path = "/v1/chat/completions" if api == "openai" else "/v1/messages"
    async with aiohttp.ClientSession() as s, s.post(gw.url + path, json=body, headers=auth(api, gw.admin_key)) as r:
        if body.get("stream") and r.status == 200:
            return r.status, [e async for e in sse_events(r)], r.headers
        return r.status, loads(await r.text()), r.headers


def generations(up: OpenAIUpstream | AnthropicUpstream) -> list[dict[str, Any]]:
    return [r.body for r in up.requests if r.path.endswith(("/chat/completions", "/messages"))]


# ---- logprobs and system_fingerprint ----------------------------------------------------------------


async def test_logprobs_and_fingerprint_come_back_whole(gw: RunningGateway, openai_upstream: OpenAIUpstream) -> None:
    openai_upstream.script(Reply(text="Hello!"))
    body = {"model": "gpt-test", "messages": HI, "logprobs": True, "top_logprobs": 2}
    status, got, _ = await post(gw, "openai", body)
    assert status == 200, got
    [sent] = generations(openai_upstream)
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 2)
    assert got["system_fingerprint"] == "fp_emulated"
    content = got["choices"][0]["logprobs"]["content"]
    assert [t["token"] for t in content] == ["Hel", "lo!"]
    assert content[0] == {
        "token": "Hel",
        "logprob": Decimal("-0.25"),
        "bytes": list(b"Hel"),
        "top_logprobs": [
            {"token": "Hel", "logprob": Decimal("-0.25"), "bytes": list(b"Hel")},
            {"token": "~", "logprob": Decimal("-3.5"), "bytes": list(b"~")},
        ],
    }


async def test_logprobs_and_fingerprint_come_back_streamed(gw: RunningGateway, openai_upstream: OpenAIUpstream) -> None:
    openai_upstream.script(Reply(text="Hello!"))
    body = {"model": "gpt-test", "messages": HI, "logprobs": True, "top_logprobs": 1, "stream": True}
    status, events, _ = await post(gw, "openai", body)
    assert status == 200, events
    chunks = [e for e in events if isinstance(e, dict)]
    assert all(c["system_fingerprint"] == "fp_emulated" for c in chunks)
    pairs = [
        (c["choices"][0]["delta"].get("content"), c["choices"][0]["logprobs"])
        for c in chunks
        if c["choices"] and c["choices"][0]["logprobs"] is not None
    ]
    assert [(text, [t["token"] for t in lp["content"]]) for text, lp in pairs] == [
        ("Hel", ["Hel"]),
        ("lo!", ["lo!"]),
    ]
    assert all(len(t["top_logprobs"]) == 1 for _, lp in pairs for t in lp["content"])


async def test_logprobs_to_an_anthropic_upstream_are_dropped_and_said(
    gw: RunningGateway, anthropic_upstream: AnthropicUpstream
) -> None:
    for stream in (False, True):
        anthropic_upstream.script(Reply(text="Hi."))
        body = {"model": "claude-test", "messages": HI, "logprobs": True, "seed": 3, "stream": stream}
        status, _, headers = await post(gw, "openai", body)
        assert status == 200
        assert headers[DROPPED] == "seed,logprobs"
        sent = generations(anthropic_upstream)[-1]
        assert "logprobs" not in sent and "seed" not in sent


async def test_nothing_dropped_means_no_header(gw: RunningGateway, openai_upstream: OpenAIUpstream) -> None:
    openai_upstream.script(Reply(text="Hi."))
    status, _, headers = await post(gw, "openai", {"model": "gpt-test", "messages": HI, "seed": 3})
    assert status == 200 and DROPPED not in headers


async def test_anthropic_client_fields_an_openai_upstream_cannot_take_are_said(
    gw: RunningGateway, openai_upstream: OpenAIUpstream
) -> None:
    openai_upstream.script(Reply(text="Hi."))
    body = {"model": "gpt-test", "max_tokens": 50, "messages": HI, "top_k": 5, "container": "c1"}
    status, _, headers = await post(gw, "anthropic", body)
    assert status == 200
    assert headers[DROPPED] == "container,top_k"


# ---- n ----------------------------------------------------------------------------------------------------


async def test_n_returns_every_choice_billed_once(gw: RunningGateway, openai_upstream: OpenAIUpstream) -> None:
    openai_upstream.script(Reply(text="Hello!", input_tokens=10, output_tokens=8))
    status, got, headers = await post(gw, "openai", {"model": "gpt-test", "messages": HI, "n": 2})
    assert status == 200, got
    assert generations(openai_upstream)[0]["n"] == 2
    assert [(c["index"], c["message"]["content"]) for c in got["choices"]] == [(0, "Hello!"), (1, "Hello! [1]")]
    # the upstream's usage covers both choices: billed once, as it bills it (gpt-test: $1 / $2 per M)
    assert (got["usage"]["prompt_tokens"], got["usage"]["completion_tokens"]) == (10, 8)
    assert got["usage"]["cost"] == Decimal("0.000026")
    async with aiohttp.ClientSession() as s:
        url = f"{gw.url}/api/v1/generation?id={headers['X-Generation-Id']}"
        for _ in range(50):
            async with s.get(url, headers=auth("openai", gw.admin_key)) as r:
                if r.status == 200:
                    g = loads(await r.text())["data"]
                    break
        assert Decimal(str(g["total_cost"])) == Decimal("0.000026")


async def test_n_with_stream_is_refused_up_front(gw: RunningGateway, openai_upstream: OpenAIUpstream) -> None:
    status, got, _ = await post(gw, "openai", {"model": "gpt-test", "messages": HI, "n": 2, "stream": True})
    assert status == 400 and "`n`" in got["error"]["message"]
    assert generations(openai_upstream) == []


async def test_n_is_refused_where_the_upstream_cannot(
    gw: RunningGateway, anthropic_upstream: AnthropicUpstream
) -> None:
    status, got, _ = await post(gw, "openai", {"model": "claude-test", "messages": HI, "n": 3})
    assert status == 400 and "`n` greater than 1" in got["error"]["message"]
    assert generations(anthropic_upstream) == []  # nothing sent, nothing billed


# ---- documents -------------------------------------------------------------------------------------------


async def test_anthropic_documents_pass_through_to_anthropic(
    gw: RunningGateway, anthropic_upstream: AnthropicUpstream
) -> None:
    docs = [
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}, "title": "A",
         "citations": {"enabled": True}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Notes."},
         "context": "meeting", "cache_control": {"type": "ephemeral"}},
    ]  # fmt: skip
    anthropic_upstream.script(Reply(text="Read."))
    body = {
        "model": "claude-test",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": [*docs, {"type": "text", "text": "Sum up."}]}],
    }
    status, got, _ = await post(gw, "anthropic", body)
    assert status == 200, got
    assert generations(anthropic_upstream)[0]["messages"][0]["content"][:2] == docs


async def test_a_document_no_endpoint_can_take_is_a_400_naming_it(
    gw: RunningGateway, openai_upstream: OpenAIUpstream
) -> None:
    doc = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
    body = {"model": "gpt-test", "max_tokens": 50, "messages": [{"role": "user", "content": ["x", doc][1:]}]}
    status, got, _ = await post(gw, "anthropic", body)
    assert status == 400
    assert "`messages[0].content[0]`" in got["error"]["message"] and "URL" in got["error"]["message"]
    assert generations(openai_upstream) == []


async def test_text_documents_reach_an_openai_upstream_as_text(
    gw: RunningGateway, openai_upstream: OpenAIUpstream
) -> None:
    openai_upstream.script(Reply(text="ok"))
    doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Notes."}}
    body = {"model": "gpt-test", "max_tokens": 50, "messages": [{"role": "user", "content": [doc]}]}
    status, _, _ = await post(gw, "anthropic", body)
    assert status == 200
    assert generations(openai_upstream)[0]["messages"][0]["content"] == [{"type": "text", "text": "Notes."}]


# ---- Messages fallbacks / models -------------------------------------------------------------------------


async def test_messages_fallbacks_are_honoured(
    gw: RunningGateway, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    for field in ("fallbacks", "models"):
        anthropic_upstream.script(Fault(status=500))
        openai_upstream.script(Reply(text="From the fallback."))
        body = {"model": "claude-test", "max_tokens": 50, "messages": HI, field: ["gpt-test"]}
        status, got, headers = await post(gw, "anthropic", body)
        assert status == 200, got
        assert got["content"] == [{"type": "text", "text": "From the fallback."}]
        assert headers["X-KeepRouter-Provider"] == "oa"

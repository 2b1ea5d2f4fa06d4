"""VertexAdapter without the gateway: config and URLs (regional, global, express), the service account's
token (cached, refreshed ahead of expiry, one refresh at a time, a bad key refused), both families."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from upstreams.script import Fault, Reply
from upstreams.vertex_server import VERSION, ServiceAccount, VertexUpstream

from keeprouter.config import EndpointConfig, Pricing, Timeouts, parse_config
from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import ChatRequest, Message, TextDelta, TextPart
from keeprouter.providers import build_adapter
from keeprouter.providers.vertex import VertexAdapter

GEMINI = "gemini-2.5-flash"
CLAUDE = "claude-sonnet-4-5@20250929"
REQ = ChatRequest(model="x", messages=[Message(role="user", content=[TextPart(text="Hi")])])


def ep(model: str) -> EndpointConfig:
    return EndpointConfig(
        provider="vx", model=model, pricing=Pricing(input=Decimal(0), output=Decimal(0)), capabilities=frozenset(),
        context_length=0, max_output_tokens=None, timeout=Timeouts(first_byte=10, idle=10),
    )  # fmt: skip


def adapter(**keys: Any) -> VertexAdapter:
    raw = {"api": "vertex", "project": "test-project", "location": "us-east5", **keys}
    a = build_adapter(parse_config({"providers": {"vx": raw}}, env={}).providers["vx"])
    assert isinstance(a, VertexAdapter)
    return a


def test_base_url_from_location_and_the_global_host() -> None:
    cfg = parse_config({"providers": {
        "r": {"api": "vertex", "project": "p", "location": "europe-west1", "credentials": "/sa.json"},
        "g": {"api": "vertex", "project": "p", "location": "global", "credentials": "/sa.json"},
    }}, env={})  # fmt: skip
    assert cfg.providers["r"].base_url == "https://europe-west1-aiplatform.googleapis.com"
    assert cfg.providers["g"].base_url == "https://aiplatform.googleapis.com"


def test_urls_regional_global_and_express() -> None:
    regional = adapter(credentials="/sa.json")
    root = "https://us-east5-aiplatform.googleapis.com/v1/projects/test-project/locations/us-east5/publishers"
    assert regional.gemini._url(GEMINI, "generateContent") == f"{root}/google/models/{GEMINI}:generateContent"
    assert regional.claude._url(CLAUDE, stream=False) == f"{root}/anthropic/models/{CLAUDE}:rawPredict"
    assert regional.claude._url(CLAUDE, stream=True) == f"{root}/anthropic/models/{CLAUDE}:streamRawPredict"
    assert regional.claude._count_url(CLAUDE) == f"{root}/anthropic/models/count-tokens:rawPredict"
    glob = adapter(credentials="/sa.json", location="global")
    assert glob.gemini._url(GEMINI, "countTokens") == (
        "https://aiplatform.googleapis.com/v1/projects/test-project/locations/global/publishers/google/models/"
        f"{GEMINI}:countTokens"
    )
    express = adapter(api_key="AQ.k")  # express keys: the global host, no project or location in the path
    assert express.gemini._url(GEMINI, "generateContent") == (
        f"https://aiplatform.googleapis.com/v1/publishers/google/models/{GEMINI}:generateContent"
    )


def test_a_location_is_required() -> None:
    with pytest.raises(Exception, match="location"):
        parse_config({"providers": {"vx": {"api": "vertex", "project": "p"}}}, env={})


def sa_adapter(up: VertexUpstream, key_file: Path, **keys: Any) -> VertexAdapter:
    return adapter(base_url=up.url, credentials=str(key_file), **keys)


async def test_gemini_and_claude_with_a_service_account(vertex_upstream: VertexUpstream, key_file: Path) -> None:
    a = sa_adapter(vertex_upstream, key_file)
    vertex_upstream.script(Reply(text="from gemini"), Reply(text="from claude"), Reply(text="streamed", chunk_size=3))
    try:
        assert (await a.complete(REQ, ep(GEMINI), {})).content == [TextPart(text="from gemini")]
        assert (await a.complete(REQ, ep(CLAUDE), {})).content == [TextPart(text="from claude")]
        text = "".join([e.text async for e in a.stream(REQ, ep(CLAUDE), {}) if isinstance(e, TextDelta)])
        assert text == "streamed"
        assert await a.count_tokens(REQ, ep(GEMINI), {}) > 0
        assert await a.count_tokens(REQ, ep(CLAUDE), {}) > 0
    finally:
        await a.close()
    gem, claude, streamed, *_ = [r for r in vertex_upstream.requests if r.path != "/token"]
    assert gem.path == f"/v1/projects/test-project/locations/us-east5/publishers/google/models/{GEMINI}:generateContent"
    assert claude.path.endswith(f"/publishers/anthropic/models/{CLAUDE}:rawPredict")
    assert claude.body["anthropic_version"] == VERSION and "model" not in claude.body
    assert claude.header("anthropic-version") is None and claude.header("x-api-key") is None
    assert streamed.path.endswith(":streamRawPredict") and streamed.body["stream"] is True
    assert vertex_upstream.grants == 1  # one token served all six requests


async def test_a_gemini_quota_429_carries_its_retry_delay(vertex_upstream: VertexUpstream, key_file: Path) -> None:
    """Vertex answers Google's error shape too: the delay is the body's RetryInfo, no header."""
    a = sa_adapter(vertex_upstream, key_file)
    vertex_upstream.retry_delay = "9s"
    vertex_upstream.script(Fault(status=429))
    try:
        with pytest.raises(UpstreamError) as limited:
            await a.complete(REQ, ep(GEMINI), {})
    finally:
        await a.close()
    assert (limited.value.status, limited.value.retry_after) == (429, "9")
    assert limited.value.metadata == {"provider_name": "vx", "provider_code": 429}


async def test_a_claude_400_in_anthropics_shape_stays_the_callers(
    vertex_upstream: VertexUpstream, key_file: Path
) -> None:
    """Google's error reading (the gemini family's) leaves Anthropic-shaped answers to the status."""
    a = sa_adapter(vertex_upstream, key_file)
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}}
    vertex_upstream.script(Fault(status=400, body=body))
    try:
        with pytest.raises(UpstreamError) as bad:
            await a.complete(REQ, ep(CLAUDE), {})
    finally:
        await a.close()
    assert (bad.value.status, bad.value.message, bad.value.retryable) == (400, "prompt is too long", False)


async def test_concurrent_first_requests_share_one_token(vertex_upstream: VertexUpstream, key_file: Path) -> None:
    a = sa_adapter(vertex_upstream, key_file)
    try:
        await asyncio.gather(*(a.complete(REQ, ep(GEMINI), {}) for _ in range(5)))
    finally:
        await a.close()
    assert vertex_upstream.grants == 1


async def test_a_token_near_expiry_is_refreshed_in_the_background(
    vertex_upstream: VertexUpstream, key_file: Path
) -> None:
    vertex_upstream.expires_in = 200  # inside the refresh-ahead window, still good to send
    a = sa_adapter(vertex_upstream, key_file)
    try:
        await a.complete(REQ, ep(GEMINI), {})
        assert vertex_upstream.grants == 1
        await a.complete(REQ, ep(GEMINI), {})  # sent with the old token; a refresh starts
        for _ in range(200):
            if vertex_upstream.grants == 2:
                break
            await asyncio.sleep(0.01)
        assert vertex_upstream.grants == 2
    finally:
        await a.close()


async def test_an_almost_expired_token_is_replaced_before_sending(
    vertex_upstream: VertexUpstream, key_file: Path
) -> None:
    vertex_upstream.expires_in = 10  # too close to expiry to send
    a = sa_adapter(vertex_upstream, key_file)
    try:
        for _ in range(3):
            await a.complete(REQ, ep(GEMINI), {})
    finally:
        await a.close()
    assert vertex_upstream.grants == 3


async def test_a_token_refused_upstream_is_replaced_on_the_next_request(
    vertex_upstream: VertexUpstream, key_file: Path
) -> None:
    a = sa_adapter(vertex_upstream, key_file)
    try:
        await a.complete(REQ, ep(GEMINI), {})
        vertex_upstream.tokens.clear()  # revoked
        with pytest.raises(UpstreamError) as info:
            await a.complete(REQ, ep(GEMINI), {})
        assert info.value.status in (502, 503) and "ya29." not in info.value.message
        await a.complete(REQ, ep(GEMINI), {})
    finally:
        await a.close()
    assert vertex_upstream.grants == 2


async def test_a_key_the_token_endpoint_refuses(vertex_upstream: VertexUpstream, tmp_path: Path) -> None:
    stranger = ServiceAccount()
    a = sa_adapter(vertex_upstream, stranger.write(tmp_path / "other.json", vertex_upstream.token_uri))
    try:
        with pytest.raises(UpstreamError) as info:
            await a.complete(REQ, ep(GEMINI), {})
    finally:
        await a.close()
    assert info.value.status == 502 and "provider vx" in info.value.message
    assert "Invalid JWT Signature" in info.value.message and "PRIVATE KEY" not in info.value.message
    assert vertex_upstream.grants == 0 and [r.path for r in vertex_upstream.requests] == ["/token"]


async def test_express_mode_key_for_gemini_only(vertex_upstream: VertexUpstream) -> None:
    a = adapter(base_url=vertex_upstream.url, api_key="AQ.express-test-key")
    try:
        assert (await a.complete(REQ, ep(GEMINI), {})).content
        with pytest.raises(UpstreamError, match="express-mode keys serve Gemini models only"):
            await a.complete(REQ, ep(CLAUDE), {})
    finally:
        await a.close()
    rec = vertex_upstream.requests[-1]
    assert rec.path == f"/v1/publishers/google/models/{GEMINI}:generateContent"
    assert rec.header("x-goog-api-key") == "AQ.express-test-key" and rec.header("authorization") is None


async def test_the_emulator_refuses_project_paths_without_a_token_it_issued(vertex_upstream: VertexUpstream) -> None:
    url = f"{vertex_upstream.url}/v1/projects/test-project/locations/us-east5/publishers/google/models/{GEMINI}"
    body = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
    async with aiohttp.ClientSession() as s:
        for headers in ({}, {"Authorization": "Bearer ya29.made-up"}, {"x-goog-api-key": "AQ.express-test-key"}):
            async with s.post(url + ":generateContent", json=body, headers=headers) as r:
                assert r.status == 401 and (await r.json())["error"]["status"] == "UNAUTHENTICATED"

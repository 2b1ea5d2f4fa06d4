"""GeminiAdapter against the emulator, without the gateway: URLs, headers, stream endings and failures."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from upstreams.gemini_server import GeminiUpstream
from upstreams.script import Fault, Reply

from keeprouter.config import EndpointConfig, Pricing, Timeouts, parse_config
from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import (
    ChatRequest,
    Finish,
    Message,
    Reasoning,
    StreamEvent,
    TextDelta,
    TextPart,
)
from keeprouter.providers import build_adapter
from keeprouter.providers.gemini import DEFAULT_BASE_URL, GeminiAdapter

EP = EndpointConfig(provider="gm", model="gemini-2.5-flash", pricing=Pricing(input=Decimal(0), output=Decimal(0)),
                    capabilities=frozenset(), context_length=0, max_output_tokens=None,
                    timeout=Timeouts(first_byte=10, idle=10))  # fmt: skip
REQ = ChatRequest(model="x", messages=[Message(role="user", content=[TextPart(text="Hi")])])


def provider(url: str, key: str = GeminiUpstream.DEFAULT_KEY, **extra: Any) -> Any:
    cfg = parse_config({"providers": {"gm": {"api": "gemini", "base_url": url, "api_key": key, **extra}}}, env={})
    return cfg.providers["gm"]


@pytest_asyncio.fixture
async def adapter(gemini_upstream: GeminiUpstream) -> AsyncIterator[GeminiAdapter]:
    a = build_adapter(provider(gemini_upstream.url + "/v1beta", headers={"X-Team": "blue"}))
    assert isinstance(a, GeminiAdapter)
    yield a
    await a.close()


async def events(a: GeminiAdapter) -> list[StreamEvent]:
    return [ev async for ev in a.stream(REQ, EP, {})]


def test_the_base_url_defaults_to_google() -> None:
    cfg = parse_config({"providers": {"gm": {"api": "gemini", "api_key": "k"}}}, env={})
    assert cfg.providers["gm"].base_url == DEFAULT_BASE_URL == "https://generativelanguage.googleapis.com"


async def test_whole_answer_and_provider_headers(adapter: GeminiAdapter, gemini_upstream: GeminiUpstream) -> None:
    gemini_upstream.script(Reply(text="Hello"))
    r = await adapter.complete(REQ, EP, {"x-api-key": "the caller's, never forwarded"})
    assert r.content == [TextPart(text="Hello")] and r.stop_reason == "end_turn"
    rec = gemini_upstream.requests[-1]
    assert rec.path == "/v1beta/models/gemini-2.5-flash:generateContent" and rec.query == {}
    assert rec.header("x-team") == "blue" and rec.header("x-api-key") is None


async def test_stream_runs_to_its_finish(adapter: GeminiAdapter, gemini_upstream: GeminiUpstream) -> None:
    gemini_upstream.script(Reply(text="Hello", chunk_size=2))
    evs = await events(adapter)
    assert "".join(e.text for e in evs if isinstance(e, TextDelta)) == "Hello"
    assert evs[-1] == Finish(stop_reason="end_turn")


@pytest.mark.parametrize(
    ("fault", "match"),
    [
        (Fault(cut_after_chunks=1, cut_clean=True), "ended the stream early"),
        (Fault(stream_error_after=1), "overloaded"),
        (Fault(malformed="json", malformed_after=1), "malformed stream chunk"),
    ],
)
async def test_stream_failures_raise(adapter: GeminiAdapter, gemini_upstream: GeminiUpstream, fault: Fault,
                                     match: str) -> None:  # fmt: skip
    gemini_upstream.script(Fault(**{**fault.__dict__, "reply": Reply(text="Hello there", chunk_size=2)}))
    with pytest.raises(UpstreamError, match=match):
        await events(adapter)


async def test_list_shaped_errors_keep_gemini_message_and_status(gemini_upstream: GeminiUpstream) -> None:
    gemini_upstream.list_errors = True
    gemini_upstream.script(Fault(status=400, body=None), Fault(status=429, headers={"retry-after": "3"}))
    a = GeminiAdapter(provider(gemini_upstream.url))
    try:
        with pytest.raises(UpstreamError) as bad:
            await events(a)
        assert (bad.value.status, bad.value.message) == (400, "Request contains an invalid argument.")
        with pytest.raises(UpstreamError) as limited:
            await a.complete(REQ, EP, {})
        assert (limited.value.status, limited.value.retry_after) == (429, "3")
    finally:
        await a.close()


async def test_a_refused_key_is_named_never_shown(gemini_upstream: GeminiUpstream) -> None:
    secret = "gm-wrong-key-0123456789"
    gemini_upstream.script(Fault(status=403, body={"error": {"code": 403, "message": f"key {secret} is denied",
                                                             "status": "PERMISSION_DENIED"}}))  # fmt: skip
    a = GeminiAdapter(provider(gemini_upstream.url, key=secret))
    try:
        with pytest.raises(UpstreamError) as e:
            await a.complete(REQ, EP, {})
    finally:
        await a.close()
    assert "rejected KeepRouter's credentials" in e.value.message and secret not in e.value.message
    assert "gm" in e.value.message


async def test_gemini_400_for_a_bad_key_is_a_credentials_failure_not_the_callers(
    gemini_upstream: GeminiUpstream,
) -> None:
    a = GeminiAdapter(provider(gemini_upstream.url, key="gm-not-the-right-key"))
    try:
        for call in (lambda: a.complete(REQ, EP, {}), lambda: events(a), lambda: a.count_tokens(REQ, EP, {})):
            with pytest.raises(UpstreamError) as e:
                await call()
            assert e.value.status == 502  # a 400 would tell the caller its request was wrong
            assert e.value.message.startswith("provider gm rejected KeepRouter's credentials: API key not valid")
    finally:
        await a.close()


@pytest.mark.parametrize(
    ("model", "reasoning", "budget"),
    [("gemini-2.5-pro", Reasoning(effort="none"), 128), ("gemini-2.5-pro", Reasoning(budget_tokens=60000), 32768),
     ("gemini-2.5-flash", Reasoning(effort="max"), 24576), ("gemini-2.5-flash-lite", Reasoning(effort="minimal"), 512)],
)  # fmt: skip
async def test_reasoning_reaches_each_25_model_inside_its_budget_range(
    adapter: GeminiAdapter, gemini_upstream: GeminiUpstream, model: str, reasoning: Reasoning, budget: int
) -> None:
    """The emulator refuses a budget outside the model's documented range, as Gemini does."""
    gemini_upstream.script(Reply(text="ok"))
    ep = dataclasses.replace(EP, model=model)
    r = await adapter.complete(msgspec.structs.replace(REQ, reasoning=reasoning), ep, {})
    assert r.content == [TextPart(text="ok")]
    sent = gemini_upstream.requests[-1].body["generationConfig"]["thinkingConfig"]
    assert sent["thinkingBudget"] == budget


@pytest.mark.parametrize(("effort", "level"), [("medium", "high"), ("minimal", "low"), ("low", "low")])
async def test_gemini_3_pro_gets_only_the_levels_it_takes(
    adapter: GeminiAdapter, gemini_upstream: GeminiUpstream, effort: str, level: str
) -> None:
    """The emulator refuses medium and minimal on Gemini 3 Pro, as Gemini does."""
    gemini_upstream.script(Reply(text="ok"))
    ep = dataclasses.replace(EP, model="gemini-3-pro-preview")
    r = await adapter.complete(msgspec.structs.replace(REQ, reasoning=Reasoning(effort=effort)), ep, {})
    assert TextPart(text="ok") in r.content  # then the signature-only part Gemini 3 closes with
    assert gemini_upstream.requests[-1].body["generationConfig"]["thinkingConfig"]["thinkingLevel"] == level


async def test_a_failed_precondition_400_is_a_provider_failure(
    adapter: GeminiAdapter, gemini_upstream: GeminiUpstream
) -> None:
    """Gemini's 400 FAILED_PRECONDITION (free tier not in the account's country) is retryable: the next
    endpoint may serve; the caller's request was fine."""
    message = "Gemini API free tier is not available in your country. Please enable billing on your project."
    body = {"error": {"code": 400, "message": message, "status": "FAILED_PRECONDITION"}}
    gemini_upstream.script(Fault(status=400, body=body), Fault(status=400, body=body))
    with pytest.raises(UpstreamError) as whole:
        await adapter.complete(REQ, EP, {})
    with pytest.raises(UpstreamError) as streamed:
        await events(adapter)
    for e in (whole.value, streamed.value):
        assert (e.status, e.retryable, e.kind) == (502, True, "provider_unavailable")
        assert message in e.message and e.metadata == {"provider_name": "gm", "provider_code": 400}

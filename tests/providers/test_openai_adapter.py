"""The OpenAI-format adapter through the fake transport: request shape, whole answers, streams cut
at awkward places, upstream errors, learned host quirks, token counting. No socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
from support.fake_transport import (
    KEY,
    FakeRequest,
    FakeResponse,
    FakeTransport,
    cut,
    cut_inside,
    drip,
    endpoint,
    provider,
    sse_body,
)

from keeprouter.errors import UpstreamError, UpstreamTimeout
from keeprouter.formats.canonical import (
    ChatRequest,
    Finish,
    Message,
    Start,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    UsageUpdate,
)
from keeprouter.providers import CountNotSupported, build_adapter

PIECES = ["Grüße", " — ", "日本語", " 🎉", " done"]  # two-, three- and four-byte UTF-8 sequences
TEXT = "".join(PIECES)
REQ = ChatRequest(model="gpt", messages=[Message(role="user", content=[TextPart(text="hi")])], stream=True)


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "c-1", "model": "m-1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


STREAM = sse_body(
    _chunk({"role": "assistant", "content": ""}),
    *(_chunk({"content": piece}) for piece in PIECES),
    _chunk({}, "stop"),
    {"id": "c-1", "model": "m-1", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 5}},
    "[DONE]",
)


def _text(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def _collect(transport: FakeTransport) -> list[StreamEvent]:
    adapter = build_adapter(transport.provider, transport)
    async with aclosing(adapter.stream(REQ, endpoint(transport.provider), {})) as events:
        return [ev async for ev in events]


def _stream_of(chunks: list[bytes] | AsyncIterator[bytes]) -> FakeTransport:
    return FakeTransport(provider("openai"), lambda req: FakeResponse(body=chunks))


async def test_complete_posts_the_chat_body_and_parses_the_answer() -> None:
    def handler(req: FakeRequest) -> FakeResponse:
        return FakeResponse.json(
            {
                "id": "c-9",
                "model": "m-1",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 4},
            }
        )

    transport = FakeTransport(provider("openai"), handler)
    adapter = build_adapter(transport.provider, transport)
    resp = await adapter.complete(REQ, endpoint(transport.provider), {})
    assert resp.content == [TextPart(text=TEXT)]
    assert resp.stop_reason == "end_turn"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (3, 4)
    [req] = transport.requests
    assert (req.method, req.url) == ("POST", "https://upstream.test/v1/chat/completions")
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert req.json()["model"] == "m-1"
    assert req.json()["messages"] == [{"role": "user", "content": "hi"}]
    assert transport.answers[0].closed


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, len(STREAM)])
async def test_stream_survives_any_chunking(size: int) -> None:
    events = await _collect(_stream_of(cut(STREAM, size)))
    assert isinstance(events[0], Start) and events[0].id == "c-1"
    assert _text(events) == TEXT
    assert [type(e) for e in events[-2:]] == [Finish, UsageUpdate]
    usage = events[-1]
    assert isinstance(usage, UsageUpdate) and usage.usage.output_tokens == 5


@pytest.mark.parametrize("needle", ["日".encode(), "🎉".encode(), b"data:", b"\n\n", b'"content"'])
async def test_stream_cut_inside_a_character_or_a_line(needle: bytes) -> None:
    assert _text(await _collect(_stream_of(cut_inside(STREAM, needle)))) == TEXT


async def test_crlf_line_ends_split_between_chunks() -> None:
    body = STREAM.replace(b"\n", b"\r\n")
    assert _text(await _collect(_stream_of(cut(body, 3)))) == TEXT


async def test_stream_of_tool_call_deltas() -> None:
    body = sse_body(
        _chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "get", "arguments": ""}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q": "é'}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"}'}}]}, "tool_calls"),
        "[DONE]",
    )
    events = await _collect(_stream_of(cut(body, 4)))
    start = next(e for e in events if isinstance(e, ToolCallStart))
    assert (start.id, start.name) == ("call_1", "get")
    assert "".join(e.arguments for e in events if isinstance(e, ToolCallDelta)) == '{"q": "é"}'
    assert Finish(stop_reason="tool_use") in events


async def test_invalid_utf8_in_a_chunk_is_replaced_not_refused() -> None:
    body = sse_body(_chunk({"content": "aXb"}), _chunk({}, "stop"), "[DONE]").replace(b"aXb", b"a\xffb")
    assert _text(await _collect(_stream_of([body]))) == "a\ufffdb"


async def test_stream_that_ends_without_finish_or_done_raises() -> None:
    body = sse_body(_chunk({"content": "half"}))
    with pytest.raises(UpstreamError, match="ended the stream early"):
        await _collect(_stream_of(cut(body, 5)))


async def test_a_cut_connection_is_an_upstream_error() -> None:
    transport = FakeTransport(provider("openai"), lambda req: FakeResponse(body=cut(STREAM, 50)[:3], cut=True))
    with pytest.raises(UpstreamError, match="connection to provider fake-openai failed"):
        await _collect(transport)
    assert transport.answers[0].closed


async def test_malformed_chunk_raises() -> None:
    with pytest.raises(UpstreamError, match="malformed stream chunk"):
        await _collect(_stream_of([b"data: {not json\n\n"]))


async def test_in_band_error_has_the_key_scrubbed() -> None:
    body = sse_body(_chunk({"content": "a"}), {"error": {"message": f"bad key {KEY}", "type": "server_error"}})
    with pytest.raises(UpstreamError) as info:
        await _collect(_stream_of([body]))
    assert KEY not in info.value.message and "[REDACTED]" in info.value.message


async def test_closing_the_stream_early_closes_the_upstream_answer() -> None:
    transport = _stream_of(cut(STREAM, 10))
    adapter = build_adapter(transport.provider, transport)
    async with aclosing(adapter.stream(REQ, endpoint(transport.provider), {})) as events:
        async for ev in events:
            if isinstance(ev, TextDelta):
                break
    assert transport.answers[0].closed


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_error_status_maps_to_an_upstream_error(stream: bool) -> None:
    def handler(req: FakeRequest) -> FakeResponse:
        return FakeResponse.json({"error": {"message": "slow down"}}, status=429, headers={"retry-after": "3"})

    transport = FakeTransport(provider("openai"), handler)
    adapter = build_adapter(transport.provider, transport)
    with pytest.raises(UpstreamError) as info:
        if stream:
            await _collect(transport)
        else:
            await adapter.complete(REQ, endpoint(transport.provider), {})
    assert (info.value.status, info.value.retry_after, info.value.message) == (429, "3", "slow down")
    assert len(transport.requests) == 1  # a 429 teaches nothing: not resent
    assert transport.answers[0].closed


async def test_refused_credentials_never_echo_the_key() -> None:
    def handler(req: FakeRequest) -> FakeResponse:
        return FakeResponse.json({"error": {"message": f"Incorrect API key provided: {KEY}"}}, status=401)

    transport = FakeTransport(provider("openai"), handler)
    with pytest.raises(UpstreamError) as info:
        await build_adapter(transport.provider, transport).complete(REQ, endpoint(transport.provider), {})
    assert "rejected KeepRouter's credentials" in info.value.message
    assert KEY not in info.value.message
    assert info.value.status == 502  # never the upstream's 401: the caller's key is fine


@pytest.mark.parametrize("stream", [False, True])
async def test_a_refused_field_is_learned_and_the_request_resent_without_it(stream: bool) -> None:
    answers = [
        FakeResponse.json({"error": {"message": "Unrecognized request argument supplied: seed"}}, status=400),
        FakeResponse(body=[STREAM])
        if stream
        else FakeResponse.json(
            {"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}
        ),
    ]
    transport = FakeTransport(provider("openai"), lambda req: answers.pop(0))
    req = ChatRequest(model="gpt", messages=REQ.messages, seed=4, stream=stream)
    adapter = build_adapter(transport.provider, transport)
    if stream:
        async with aclosing(adapter.stream(req, endpoint(transport.provider), {})) as events:
            assert _text([ev async for ev in events]) == TEXT
    else:
        assert (await adapter.complete(req, endpoint(transport.provider), {})).content == [TextPart(text="ok")]
    first, second = (r.json() for r in transport.requests)
    assert first["seed"] == 4 and "seed" not in second
    assert all(a.closed for a in transport.answers)


async def test_first_byte_timeout() -> None:
    transport = FakeTransport(provider("openai"), lambda req: FakeResponse(body=[STREAM], delay=1.0))
    adapter = build_adapter(transport.provider, transport)
    with pytest.raises(UpstreamTimeout):
        await adapter.complete(REQ, endpoint(transport.provider, first_byte=0.05), {})


async def test_idle_timeout_between_events() -> None:
    transport = _stream_of(drip(cut(STREAM, 40), 0.2))
    adapter = build_adapter(transport.provider, transport)
    got: list[StreamEvent] = []
    with pytest.raises(UpstreamTimeout):
        async with aclosing(adapter.stream(REQ, endpoint(transport.provider, first_byte=1.0, idle=0.05), {})) as s:
            async for ev in s:
                got.append(ev)
    assert isinstance(got[0], Start)  # the first event came within first_byte; the next not within idle
    assert transport.answers[0].closed


async def test_count_tokens_is_not_supported_and_sends_nothing() -> None:
    transport = FakeTransport(provider("openai"), lambda req: pytest.fail("no request expected"))
    adapter = build_adapter(transport.provider, transport)
    with pytest.raises(CountNotSupported):
        await adapter.count_tokens(REQ, endpoint(transport.provider), {})
    assert transport.requests == []


async def test_tool_call_answer_parses() -> None:
    def handler(req: FakeRequest) -> FakeResponse:
        call = {"id": "call_9", "type": "function", "function": {"name": "get", "arguments": "{}"}}
        msg = {"role": "assistant", "content": None, "tool_calls": [call]}
        return FakeResponse.json({"choices": [{"message": msg, "finish_reason": "tool_calls"}]})

    transport = FakeTransport(provider("openai"), handler)
    resp = await build_adapter(transport.provider, transport).complete(REQ, endpoint(transport.provider), {})
    assert resp.content == [ToolCallPart(id="call_9", name="get", arguments="{}")]
    assert resp.stop_reason == "tool_use"


async def test_events_before_a_failure_in_the_same_read_still_come_first() -> None:
    body = sse_body(_chunk({"content": "a"}), _chunk({"content": "b"})) + b"data: [1]\n\n"
    got: list[StreamEvent] = []
    with pytest.raises(UpstreamError, match="malformed stream chunk"):
        transport = _stream_of([body])
        adapter = build_adapter(transport.provider, transport)
        async with aclosing(adapter.stream(REQ, endpoint(transport.provider), {})) as events:
            async for ev in events:
                got.append(ev)
    assert _text(got) == "ab"

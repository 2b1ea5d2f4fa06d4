"""The Anthropic Messages adapter through the fake transport: request shape and headers, whole
answers, streams cut at awkward places, upstream errors, the upstream's own token count. No socket."""

from __future__ import annotations

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
    endpoint,
    provider,
    sse_body,
)

from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import (
    ChatRequest,
    Finish,
    Message,
    SignatureDelta,
    Start,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    UsageUpdate,
)
from keeprouter.providers import build_adapter

BASE = "https://anthropic.test"
PIECES = ["Grüße", " — ", "日本語", " 🎉", " done"]  # two-, three- and four-byte UTF-8 sequences
TEXT = "".join(PIECES)
REQ = ChatRequest(
    model="claude", messages=[Message(role="user", content=[TextPart(text="hi")])], max_tokens=100, stream=True
)


def _delta(index: int, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


STREAM = sse_body(
    (
        "message_start",
        {
            "type": "message_start",
            "message": {"id": "msg_1", "model": "m-1", "usage": {"input_tokens": 11, "output_tokens": 1}},
        },
    ),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
    ),
    _delta(0, {"type": "thinking_delta", "thinking": "hmm…"}),
    _delta(0, {"type": "signature_delta", "signature": "sig=="}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("ping", {"type": "ping"}),
    ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
    *(_delta(1, {"type": "text_delta", "text": piece}) for piece in PIECES),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}),
    ("message_stop", {"type": "message_stop"}),
)


def _text(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def _transport(handler: Any) -> FakeTransport:
    return FakeTransport(provider("anthropic", base_url=BASE), handler)


async def _collect(transport: FakeTransport, headers: dict[str, str] | None = None) -> list[StreamEvent]:
    adapter = build_adapter(transport.provider, transport)
    async with aclosing(adapter.stream(REQ, endpoint(transport.provider), headers or {})) as events:
        return [ev async for ev in events]


def _stream_of(chunks: list[bytes]) -> FakeTransport:
    return _transport(lambda req: FakeResponse(body=chunks))


async def test_complete_posts_a_messages_body_with_anthropic_headers() -> None:
    def handler(req: FakeRequest) -> FakeResponse:
        return FakeResponse.json(
            {
                "id": "msg_9",
                "type": "message",
                "role": "assistant",
                "model": "m-1",
                "content": [{"type": "text", "text": TEXT}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 3, "output_tokens": 4},
            }
        )

    transport = _transport(handler)
    adapter = build_adapter(transport.provider, transport)
    resp = await adapter.complete(REQ, endpoint(transport.provider), {"anthropic-beta": "tools-2024"})
    assert resp.content == [TextPart(text=TEXT)]
    assert (resp.stop_reason, resp.usage.input_tokens, resp.usage.output_tokens) == ("end_turn", 3, 4)
    [req] = transport.requests
    assert req.url == f"{BASE}/v1/messages"
    assert req.headers["x-api-key"] == KEY
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert req.headers["anthropic-beta"] == "tools-2024"  # the client's beta header is passed on
    body = req.json()
    assert (body["model"], body["max_tokens"]) == ("m-1", 100)
    assert transport.answers[0].closed


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, len(STREAM)])
async def test_stream_survives_any_chunking(size: int) -> None:
    events = await _collect(_stream_of(cut(STREAM, size)))
    assert isinstance(events[0], Start) and events[0].id == "msg_1"
    assert [e.text for e in events if isinstance(e, ThinkingDelta)] == ["hmm…"]
    assert SignatureDelta(signature="sig==", origin="anthropic") in events
    assert _text(events) == TEXT
    assert Finish(stop_reason="end_turn") in events
    usage = events[-1]
    assert isinstance(usage, UsageUpdate)
    assert (usage.usage.input_tokens, usage.usage.output_tokens) == (11, 9)


@pytest.mark.parametrize("needle", ["日".encode(), "…".encode(), b"event:", b"\n\n", b"message_stop"])
async def test_stream_cut_inside_a_character_or_a_line(needle: bytes) -> None:
    assert _text(await _collect(_stream_of(cut_inside(STREAM, needle)))) == TEXT


async def test_stream_without_message_stop_raises_and_closes_the_answer() -> None:
    body = STREAM[: STREAM.index(b"event: message_delta")]
    transport = _stream_of(cut(body, 9))
    with pytest.raises(UpstreamError, match="ended the stream early"):
        await _collect(transport)
    assert transport.answers[0].closed


async def test_message_stop_ends_the_stream_and_closes_the_answer() -> None:
    transport = _stream_of([STREAM + b": trailing bytes are never read\n\n"])
    assert _text(await _collect(transport)) == TEXT
    assert transport.answers[0].closed
    assert transport.answers[0].finished, "ended by its end event: its connection may be kept"


async def test_a_stream_closed_before_its_end_is_hung_up_at_once() -> None:
    transport = _stream_of([STREAM[: len(STREAM) // 2], STREAM[len(STREAM) // 2 :]])
    adapter = build_adapter(transport.provider, transport)
    async with aclosing(adapter.stream(REQ, endpoint(transport.provider), {})) as events:
        await anext(events)  # a client that goes away after the first event
    assert transport.answers[0].closed and not transport.answers[0].finished


async def test_in_band_error_event_is_an_upstream_error_without_the_key() -> None:
    body = STREAM[: STREAM.index(b"event: content_block_stop")] + sse_body(
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": f"Overloaded {KEY}"}})
    )
    with pytest.raises(UpstreamError) as info:
        await _collect(_stream_of(cut(body, 13)))
    assert "Overloaded" in info.value.message and KEY not in info.value.message


async def test_malformed_event_raises() -> None:
    with pytest.raises(UpstreamError, match="malformed stream event"):
        await _collect(_stream_of([b"event: message_start\ndata: {oops\n\n"]))


@pytest.mark.parametrize("stream", [False, True])
async def test_overloaded_status_maps_to_an_upstream_error(stream: bool) -> None:
    def handler(req: FakeRequest) -> FakeResponse:
        body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return FakeResponse.json(body, status=529, headers={"retry-after": "2"})

    transport = _transport(handler)
    adapter = build_adapter(transport.provider, transport)
    with pytest.raises(UpstreamError) as info:
        if stream:
            await _collect(transport)
        else:
            await adapter.complete(REQ, endpoint(transport.provider), {})
    assert info.value.message == "provider fake-anthropic is overloaded: Overloaded"
    assert (info.value.status, info.value.retry_after) == (502, "2")
    assert transport.answers[0].closed


async def test_invalid_request_status_is_passed_on_with_the_upstream_message() -> None:
    def handler(req: FakeRequest) -> FakeResponse:
        body = {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}}
        return FakeResponse.json(body, status=400)

    transport = _transport(handler)
    with pytest.raises(UpstreamError) as info:
        await build_adapter(transport.provider, transport).complete(REQ, endpoint(transport.provider), {})
    assert (info.value.status, info.value.message) == (400, "prompt is too long")


async def test_count_tokens_asks_the_count_endpoint_without_output_fields() -> None:
    def handler(req: FakeRequest) -> FakeResponse:
        return FakeResponse.json({"input_tokens": 42})

    transport = _transport(handler)
    adapter = build_adapter(transport.provider, transport)
    req = ChatRequest(model="claude", messages=REQ.messages, max_tokens=100, temperature=0.5, stream=True)
    assert await adapter.count_tokens(req, endpoint(transport.provider), {"anthropic-beta": "b1"}) == 42
    [sent] = transport.requests
    assert sent.url == f"{BASE}/v1/messages/count_tokens"
    assert sent.headers["anthropic-beta"] == "b1"
    body = sent.json()
    assert body["model"] == "m-1" and body["messages"]
    assert not {"max_tokens", "stream", "temperature"} & body.keys()


@pytest.mark.parametrize(
    "answer",
    [
        FakeResponse.json({"input_tokens": -1}),
        FakeResponse.json({"tokens": 5}),
        FakeResponse.json({"error": {"message": "not found"}}, status=404),
    ],
    ids=["negative", "missing", "404"],
)
async def test_count_tokens_that_cannot_count_raises_upstream_error(answer: FakeResponse) -> None:
    transport = _transport(lambda req: answer)
    with pytest.raises(UpstreamError):
        await build_adapter(transport.provider, transport).count_tokens(REQ, endpoint(transport.provider), {})


async def test_base_url_written_with_v1_is_accepted() -> None:
    transport = FakeTransport(provider("anthropic", base_url=BASE + "/v1"), lambda req: FakeResponse(body=[STREAM]))
    assert _text(await _collect(transport)) == TEXT
    assert transport.requests[0].url == f"{BASE}/v1/messages"


async def test_events_before_a_failure_in_the_same_read_still_come_first() -> None:
    body = STREAM[: STREAM.index(b'event: content_block_stop\ndata: {"type":"content_block_stop","index":1')]
    got: list[StreamEvent] = []
    adapter = build_adapter((transport := _stream_of([body + b"event: ping\ndata: [1]\n\n"])).provider, transport)
    with pytest.raises(UpstreamError, match="malformed stream event"):
        async with aclosing(adapter.stream(REQ, endpoint(transport.provider), {})) as events:
            async for ev in events:
                got.append(ev)
    assert _text(got) == TEXT, "the read's text went out before its malformed event's error"

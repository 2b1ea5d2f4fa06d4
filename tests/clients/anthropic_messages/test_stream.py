"""The Anthropic Messages client stream encoder: event order, blocks, stop reasons, errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from formats.fmt_helpers import anthropic_events, check_anthropic_stream, parse_frames

from keeprouter.clients.anthropic_messages.stream import AnthropicStreamEncoder
from keeprouter.errors import NoEndpointAvailable
from keeprouter.formats.canonical import (
    Finish,
    RedactedThinking,
    SignatureDelta,
    Start,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageUpdate,
)

START = {
    "type": "message_start",
    "message": {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 1,
            "cache_creation_input_tokens": 5,
            "cache_read_input_tokens": 4409,
        },
    },
}


def block_start(i: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": i, "content_block": block}


def delta(i: int, d: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": i, "delta": d}


def encode(events: list[StreamEvent]) -> list[bytes]:
    enc = AnthropicStreamEncoder(id="msg_gw", model="claude-sonnet-4-6")
    return [f for ev in events for f in enc.feed(ev)] + enc.end()


def test_encoder_reference_sequence_exact() -> None:
    frames = encode(
        [
            Start(
                id="up",
                model="up",
                usage=Usage(input_tokens=4426, output_tokens=1, cache_read_tokens=4409, cache_write_tokens=5),
            ),
            ThinkingDelta(text="The user wants…"),
            SignatureDelta(signature="EqQB"),
            TextDelta(text="Let me check."),
            ToolCallStart(index=0, id="toolu_01", name="get_weather"),
            ToolCallDelta(index=0, arguments='{"city":'),
            ToolCallDelta(index=0, arguments='"Paris"}'),
            Finish(stop_reason="tool_use"),
            UsageUpdate(usage=Usage(input_tokens=4426, output_tokens=57, cache_read_tokens=4409, cache_write_tokens=5)),
        ]
    )
    assert all(f.startswith(b"event: ") and f.endswith(b"\n\n") for f in frames)
    assert [d for _, d in anthropic_events(frames)] == [
        {
            "type": "message_start",
            "message": {
                "id": "msg_gw",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-6",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 12,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 5,
                    "cache_read_input_tokens": 4409,
                },
            },
        },
        {"type": "ping"},
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, {"type": "thinking_delta", "thinking": "The user wants…"}),
        delta(0, {"type": "signature_delta", "signature": "EqQB"}),
        {"type": "content_block_stop", "index": 0},
        block_start(1, {"type": "text", "text": ""}),
        delta(1, {"type": "text_delta", "text": "Let me check."}),
        {"type": "content_block_stop", "index": 1},
        block_start(2, {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}),
        delta(2, {"type": "input_json_delta", "partial_json": '{"city":'}),
        delta(2, {"type": "input_json_delta", "partial_json": '"Paris"}'}),
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {
                "output_tokens": 57,
                "input_tokens": 12,
                "cache_creation_input_tokens": 5,
                "cache_read_input_tokens": 4409,
            },
        },
        {"type": "message_stop"},
    ]
    msg = check_anthropic_stream(frames)
    assert msg.content[2].input == {"city": "Paris"}  # type: ignore[union-attr]


def test_encoder_text_to_tool_transition_keeps_first_arguments() -> None:  # the first arguments are kept
    enc = AnthropicStreamEncoder(id="m", model="m")
    enc.feed(TextDelta(text="Sure."))
    out = enc.feed(ToolCallStart(index=0, id="call_1", name="f")) + enc.feed(
        ToolCallDelta(index=0, arguments='{"x":1}')
    )
    assert [orjson.loads(e.data) for e in parse_frames(out)] == [
        {"type": "content_block_stop", "index": 0},
        block_start(1, {"type": "tool_use", "id": "call_1", "name": "f", "input": {}}),
        delta(1, {"type": "input_json_delta", "partial_json": '{"x":1}'}),
    ]


def test_encoder_parallel_tools_one_block_each_in_order() -> None:  # parallel calls must never share a block
    frames = encode(
        [
            Start(id="x", model="x"),
            ToolCallStart(index=0, id="a", name="f"),
            ToolCallDelta(index=0, arguments='{"n":'),
            ToolCallDelta(index=0, arguments="1}"),
            ToolCallStart(index=1, id="b", name="g"),
            ToolCallDelta(index=1, arguments='{"n":2}'),
            ToolCallStart(index=2, id="c", name="h"),
            Finish(stop_reason="tool_use"),
        ]
    )
    msg = check_anthropic_stream(frames)
    assert [(b.id, b.name, b.input) for b in msg.content] == [  # type: ignore[union-attr]
        ("a", "f", {"n": 1}),
        ("b", "g", {"n": 2}),
        ("c", "h", {}),
    ]
    assert msg.stop_reason == "tool_use"


def test_encoder_interleaved_tool_fragments_land_in_their_own_blocks() -> None:
    frames = encode(
        [
            ToolCallStart(index=0, id="a", name="f"),
            ToolCallStart(index=1, id="b", name="g"),
            ToolCallDelta(index=1, arguments='{"b":'),
            ToolCallDelta(index=0, arguments='{"a":'),
            ToolCallDelta(index=0, arguments="1}"),
            TextDelta(text="late text"),
            ToolCallDelta(index=1, arguments="2}"),
            Finish(stop_reason="end_turn"),
        ]
    )
    msg = check_anthropic_stream(frames)
    assert [b.type for b in msg.content] == ["tool_use", "tool_use", "text"]
    assert msg.content[0].input == {"a": 1} and msg.content[1].input == {"b": 2}  # type: ignore[union-attr]
    assert msg.content[2].text == "late text"  # type: ignore[union-attr]
    assert msg.stop_reason == "tool_use"


def test_encoder_buffers_thinking_and_redacted_after_tool_start() -> None:
    frames = encode(
        [
            ToolCallStart(index=0, id="a", name="f"),
            ThinkingDelta(text="t1"),
            ThinkingDelta(text="t2"),
            SignatureDelta(signature="S"),
            SignatureDelta(signature="2"),
            RedactedThinking(data="R"),
        ]
    )
    msg = check_anthropic_stream(frames)
    assert [b.model_dump(exclude_none=True) for b in msg.content] == [
        {"type": "tool_use", "id": "a", "name": "f", "input": {}},
        {"type": "thinking", "thinking": "t1t2", "signature": "S"},
        {"type": "thinking", "thinking": "", "signature": "2"},
        {"type": "redacted_thinking", "data": "R"},
    ]


def test_encoder_thinking_after_signature_opens_a_new_thinking_block() -> None:
    frames = encode(
        [
            ThinkingDelta(text="a"),
            SignatureDelta(signature="s1"),
            ThinkingDelta(text="b"),
            SignatureDelta(signature="s2"),
            RedactedThinking(data="R"),
            TextDelta(text="x"),
        ]
    )
    msg = check_anthropic_stream(frames)
    assert [b.model_dump(exclude_none=True) for b in msg.content] == [
        {"type": "thinking", "thinking": "a", "signature": "s1"},
        {"type": "thinking", "thinking": "b", "signature": "s2"},
        {"type": "redacted_thinking", "data": "R"},
        {"type": "text", "text": "x"},
    ]


def test_encoder_without_start_emits_exactly_one_message_start_lazily() -> None:  # two break the SDKs
    enc = AnthropicStreamEncoder(id="msg_x", model="m")
    frames = enc.feed(TextDelta(text="hi")) + enc.feed(Start(id="late", model="late")) + enc.end()
    names = [n for n, _ in anthropic_events(frames)]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    msg = check_anthropic_stream(frames)
    assert (msg.id, msg.stop_reason, msg.usage.input_tokens, msg.usage.output_tokens) == (
        "msg_x",
        "end_turn",
        0,
        0,
    )


def test_encoder_empty_stream_is_valid() -> None:
    msg = check_anthropic_stream(encode([]))
    assert msg.content == [] and msg.stop_reason == "end_turn"


@pytest.mark.parametrize(
    "stop,expected",
    [
        ("max_tokens", "max_tokens"),
        ("content_filter", "refusal"),
        ("error", "end_turn"),
        ("tool_use", "end_turn"),
    ],
)
def test_encoder_stop_reason_mapping(stop: Any, expected: str) -> None:
    assert check_anthropic_stream(encode([TextDelta(text="x"), Finish(stop_reason=stop)])).stop_reason == expected


def test_encoder_stop_sequence_is_reported() -> None:
    _, data = anthropic_events(encode([Finish(stop_reason="stop_sequence", stop_sequence="##")]))[-2]
    assert data["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "##"}


def test_encoder_error_event() -> None:
    frames = AnthropicStreamEncoder(id="m", model="m").error(NoEndpointAvailable("Overloaded"))
    assert frames == [
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    ]


@pytest.mark.parametrize("after_open_call", [False, True])
def test_encoder_seals_a_gemini_call_signature_on_a_thinking_block_of_its_own(after_open_call: bool) -> None:
    """A tool call's own signature (Gemini's) never lands on the thought before it: it gets an empty
    thinking block of its own, sealed with its origin, live or held behind an incomplete call."""
    first: list[StreamEvent] = [ToolCallStart(index=0, id="c0", name="f"), ToolCallDelta(index=0, arguments='{"a":')]
    events: list[StreamEvent] = [
        Start(id="up", model="up"),
        *(first if after_open_call else []),
        ThinkingDelta(text="I should look it up."),
        ToolCallStart(index=1, id="c1", name="get_weather", signature="SIG", origin="gemini"),
        ToolCallDelta(index=1, arguments='{"city":"Paris"}'),
        *([ToolCallDelta(index=0, arguments="1}")] if after_open_call else []),
        Finish(stop_reason="tool_use"),
    ]
    msg = check_anthropic_stream(encode(events))
    blocks = [b.model_dump(exclude_none=True) for b in msg.content]
    thinking = [b for b in blocks if b["type"] == "thinking"]
    assert [(b["thinking"], b["signature"]) for b in thinking] == [
        ("I should look it up.", ""),
        ("", "kr1.s.gemini.SIG"),
    ]
    assert blocks[-1]["type"] == "tool_use" and blocks[-2] == thinking[-1]


def test_encoder_seals_another_origins_signature_delta() -> None:
    signed = SignatureDelta(signature="SIG", origin="gemini")
    frames = encode([ThinkingDelta(text="hm"), signed, Finish(stop_reason="end_turn")])
    [block] = check_anthropic_stream(frames).content
    want = {"type": "thinking", "thinking": "hm", "signature": "kr1.s.gemini.SIG"}
    assert block.model_dump(exclude_none=True) == want

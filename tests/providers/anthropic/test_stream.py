"""The Anthropic Messages upstream stream decoder: events -> canonical, usage, in-stream errors."""

from __future__ import annotations

from typing import Any

import pytest

from keeprouter.errors import UpstreamError
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
from keeprouter.providers.anthropic.stream import AnthropicStreamDecoder

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


REFERENCE = [
    START,
    block_start(0, {"type": "thinking", "thinking": ""}),
    {"type": "ping"},
    delta(0, {"type": "thinking_delta", "thinking": "The user wants…"}),
    delta(0, {"type": "signature_delta", "signature": "EqQB"}),
    {"type": "content_block_stop", "index": 0},
    block_start(1, {"type": "text", "text": ""}),
    delta(1, {"type": "text_delta", "text": "Let me check."}),
    {"type": "content_block_stop", "index": 1},
    block_start(2, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
    delta(2, {"type": "input_json_delta", "partial_json": '{"q":1}'}),
    {"type": "content_block_stop", "index": 2},
    block_start(3, {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}),
    delta(3, {"type": "input_json_delta", "partial_json": ""}),
    delta(3, {"type": "input_json_delta", "partial_json": '{"city":'}),
    delta(3, {"type": "input_json_delta", "partial_json": '"Paris"}'}),
    {"type": "content_block_stop", "index": 3},
    block_start(4, {"type": "redacted_thinking", "data": "RD"}),
    {"type": "content_block_stop", "index": 4},
    block_start(5, {"type": "tool_use", "id": "toolu_02", "name": "f", "input": {"a": 1}}),
    {"type": "content_block_stop", "index": 5},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 57},
    },
    {"type": "message_stop"},
]


def decode(events: list[dict[str, Any]]) -> list[StreamEvent]:
    dec = AnthropicStreamDecoder()
    return [ev for e in events for ev in dec.feed(e["type"], e)]


def test_decoder_reference_stream() -> None:
    start_usage = Usage(input_tokens=4426, output_tokens=1, cache_read_tokens=4409, cache_write_tokens=5)
    assert decode(REFERENCE) == [
        Start(id="msg_01", model="claude-sonnet-4-6", usage=start_usage),
        ThinkingDelta(text="The user wants…"),
        SignatureDelta(signature="EqQB", origin="anthropic"),
        TextDelta(text="Let me check."),
        ToolCallStart(index=0, id="toolu_01", name="get_weather"),
        ToolCallDelta(index=0, arguments='{"city":'),
        ToolCallDelta(index=0, arguments='"Paris"}'),
        RedactedThinking(data="RD", origin="anthropic"),
        ToolCallStart(index=1, id="toolu_02", name="f"),
        ToolCallDelta(index=1, arguments='{"a":1}'),
        Finish(stop_reason="tool_use"),
        UsageUpdate(usage=Usage(input_tokens=4426, output_tokens=57, cache_read_tokens=4409, cache_write_tokens=5)),
    ]


def test_decoder_message_delta_input_fields_override_message_start() -> None:
    evs = decode(
        [
            START,
            {
                "type": "message_delta",
                "delta": {"stop_reason": "pause_turn", "stop_sequence": None},
                "usage": {"output_tokens": 9, "input_tokens": 20, "cache_read_input_tokens": 0},
            },
        ]
    )
    assert evs[1:] == [
        Finish(stop_reason="end_turn"),
        UsageUpdate(usage=Usage(input_tokens=25, output_tokens=9, cache_write_tokens=5)),
    ]


def test_decoder_stop_sequence_and_initial_text() -> None:
    evs = decode(
        [
            START,
            block_start(0, {"type": "text", "text": "Hi"}),
            {"type": "message_delta", "delta": {"stop_reason": "stop_sequence", "stop_sequence": "##"}},
        ]
    )
    assert evs[1:] == [TextDelta(text="Hi"), Finish(stop_reason="stop_sequence", stop_sequence="##")]


@pytest.mark.parametrize(
    "etype,status",
    [
        ("overloaded_error", 503),
        ("rate_limit_error", 429),
        ("api_error", 502),
        ("invalid_request_error", 400),
        ("weird", 502),
    ],
)
def test_decoder_error_event_raises_mapped_status(etype: str, status: int) -> None:
    with pytest.raises(UpstreamError) as e:
        AnthropicStreamDecoder().feed("error", {"type": "error", "error": {"type": etype, "message": "Overloaded"}})
    assert (e.value.message, e.value.status) == ("Overloaded", status)

"""ConverseStream events -> canonical stream events."""

from __future__ import annotations

import json

import pytest

from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import (
    Finish,
    RedactedThinking,
    SignatureDelta,
    Start,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from keeprouter.providers.bedrock.eventstream import ERROR
from keeprouter.providers.bedrock.stream import BedrockStreamDecoder


def run(events: list[tuple[str, dict]], json_tool: str | None = None) -> tuple[list, BedrockStreamDecoder]:  # type: ignore[type-arg]
    d = BedrockStreamDecoder(id="msg_1", model="m", provider="bd", json_tool=json_tool)
    out = []
    for kind, data in events:
        out += d.feed(kind, json.dumps(data).encode())
    return out, d


def delta(i: int, d: dict) -> tuple[str, dict]:  # type: ignore[type-arg]
    return ("contentBlockDelta", {"contentBlockIndex": i, "delta": d, "p": "pad"})


def test_reasoning_text_and_parallel_tools() -> None:
    out, d = run(
        [
            ("messageStart", {"role": "assistant", "p": "abc"}),
            delta(0, {"reasoningContent": {"text": "hm"}}),
            delta(0, {"reasoningContent": {"signature": "sig"}}),
            ("contentBlockStop", {"contentBlockIndex": 0}),
            delta(1, {"reasoningContent": {"redactedContent": "cmVk"}}),
            delta(2, {"text": "Hi"}),
            ("contentBlockStart", {"contentBlockIndex": 3, "start": {"toolUse": {"toolUseId": "t1", "name": "w"}}}),
            delta(3, {"toolUse": {"input": '{"city":'}}),
            ("contentBlockStart", {"contentBlockIndex": 4, "start": {"toolUse": {"toolUseId": "t2", "name": "w"}}}),
            delta(3, {"toolUse": {"input": '"Paris"}'}}),
            delta(4, {"toolUse": {"input": "{}"}}),
            ("messageStop", {"stopReason": "tool_use"}),
            ("metadata", {"usage": {"inputTokens": 3, "outputTokens": 4, "cacheReadInputTokens": 2}, "metrics": {}}),
        ]
    )
    assert out == [
        Start(id="msg_1", model="m"),
        ThinkingDelta(text="hm"),
        SignatureDelta(signature="sig", origin="bedrock"),
        RedactedThinking(data="cmVk", origin="bedrock"),
        TextDelta(text="Hi"),
        ToolCallStart(index=0, id="t1", name="w"),
        ToolCallDelta(index=0, arguments='{"city":'),
        ToolCallStart(index=1, id="t2", name="w"),
        ToolCallDelta(index=0, arguments='"Paris"}'),
        ToolCallDelta(index=1, arguments="{}"),
        Finish(stop_reason="tool_use"),
        UsageUpdate(usage=Usage(input_tokens=5, output_tokens=4, cache_read_tokens=2)),
    ]
    assert d.stopped and d.done


def test_structured_output_tool_streams_as_text() -> None:
    out, _ = run(
        [
            ("messageStart", {"role": "assistant"}),
            ("contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": "city"}}}),
            delta(0, {"toolUse": {"input": '{"a":1}'}}),
            ("messageStop", {"stopReason": "tool_use"}),
        ],
        json_tool="city",
    )
    assert out[1:] == [TextDelta(text='{"a":1}'), Finish(stop_reason="end_turn")]


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("throttlingException", 429),
        ("validationException", 400),
        ("modelStreamErrorException", 502),
        ("serviceUnavailableException", 502),
    ],
)
def test_exceptions_raise(kind: str, status: int) -> None:
    d = BedrockStreamDecoder(id="x", model="m", provider="bd")
    with pytest.raises(UpstreamError) as e:
        d.feed(kind, b'{"message":"nope"}')
    assert e.value.status == status and "nope" in e.value.message


def test_error_message_type_raises() -> None:
    d = BedrockStreamDecoder(id="x", model="m", provider="bd")
    with pytest.raises(UpstreamError, match="boom") as e:
        d.feed(ERROR, b'{"code":"ThrottlingException","message":"boom"}')
    assert e.value.status == 429


def test_unknown_events_ignored_and_bad_json_raises() -> None:
    d = BedrockStreamDecoder(id="x", model="m", provider="bd")
    assert d.feed("somethingNew", b"{}") == []
    with pytest.raises(UpstreamError, match="malformed"):
        d.feed("contentBlockDelta", b"{nope")


def test_tool_input_before_its_start_raises() -> None:
    with pytest.raises(UpstreamError, match="before its tool call"):
        run([delta(0, {"toolUse": {"input": "{}"}})])

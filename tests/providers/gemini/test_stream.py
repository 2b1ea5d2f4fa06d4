"""The streamGenerateContent state machine: whole-response chunks -> canonical events."""

from __future__ import annotations

from typing import Any

import pytest

from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import (
    Finish,
    SignatureDelta,
    Start,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from keeprouter.providers.gemini.response import call_id
from keeprouter.providers.gemini.stream import GeminiStreamDecoder


def chunk(
    parts: list[dict[str, Any]], finish: str | None = None, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    c: dict[str, Any] = {"candidates": [cand], "responseId": "r1", "modelVersion": "gemini-3-flash-preview"}
    if usage:
        c["usageMetadata"] = usage
    return c


def test_text_stream_with_closing_signature_only_part() -> None:
    d = GeminiStreamDecoder("asked")
    events = d.feed(chunk([{"text": "Hel"}], usage={"promptTokenCount": 5}))
    assert events == [
        Start(id="r1", model="gemini-3-flash-preview"),
        TextDelta(text="Hel"),
        UsageUpdate(usage=Usage(input_tokens=5)),
    ]
    assert d.feed(chunk([{"text": "lo"}], usage={"promptTokenCount": 5})) == [TextDelta(text="lo")]  # same usage
    assert not d.finished
    last = d.feed(chunk([{"text": "", "thoughtSignature": "SIG"}], "STOP",
                        {"promptTokenCount": 5, "candidatesTokenCount": 2, "thoughtsTokenCount": 3}))  # fmt: skip
    assert last == [
        SignatureDelta(signature="SIG", origin="gemini"),
        UsageUpdate(usage=Usage(input_tokens=5, output_tokens=5, reasoning_tokens=3)),
        Finish(stop_reason="end_turn"),
    ]
    assert d.finished


def test_thoughts_then_whole_function_calls() -> None:
    d = GeminiStreamDecoder("m")
    events = d.feed(chunk([{"text": "Let me", "thought": True}]))
    assert events[1:] == [ThinkingDelta(text="Let me")]
    events = d.feed(chunk([
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "S1"},
        {"functionCall": {"name": "get_time", "args": {}}},
    ], "STOP"))  # fmt: skip
    assert events == [
        ToolCallStart(index=0, id=call_id("r1", 0), name="get_weather", signature="S1", origin="gemini"),
        ToolCallDelta(index=0, arguments='{"city":"Paris"}'),
        ToolCallStart(index=1, id=call_id("r1", 1), name="get_time"),
        ToolCallDelta(index=1, arguments="{}"),
        Finish(stop_reason="tool_use"),
    ]


def test_stream_and_whole_answer_name_calls_alike() -> None:
    from keeprouter.providers.gemini.response import parse_response

    data = chunk([{"functionCall": {"name": "f", "args": {}}}], "STOP")
    whole = parse_response(data, "m").content[0]
    streamed = GeminiStreamDecoder("m").feed(data)[1]
    assert isinstance(streamed, ToolCallStart) and streamed.id == whole.id  # type: ignore[union-attr]


def test_finish_is_emitted_once_and_max_tokens_maps() -> None:
    d = GeminiStreamDecoder("m")
    assert d.feed(chunk([{"text": "a"}], "MAX_TOKENS"))[-1] == Finish(stop_reason="max_tokens")
    assert d.feed(chunk([], "MAX_TOKENS")) == []


def test_a_blocked_prompt_finishes_with_content_filter() -> None:
    d = GeminiStreamDecoder("m")
    events = d.feed({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "responseId": "r9"})
    assert events == [Start(id="r9", model="m"), Finish(stop_reason="content_filter")]


def test_an_in_stream_error_raises_with_its_status() -> None:
    d = GeminiStreamDecoder("m")
    d.feed(chunk([{"text": "a"}]))
    with pytest.raises(UpstreamError) as e:
        d.feed({"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}})
    assert e.value.status == 429 and "exhausted" in e.value.message

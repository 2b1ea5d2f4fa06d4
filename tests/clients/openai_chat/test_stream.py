"""The OpenAI Chat Completions client stream encoder: exact chunks, usage, finish, errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from formats.fmt_helpers import check_openai_stream, openai_chunks, parse_frames

from keeprouter.clients.openai_chat.stream import OpenAIStreamEncoder
from keeprouter.errors import RateLimited
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


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **kw: Any) -> dict[str, Any]:
    c: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
    }
    c.update(kw)
    return c


HEAD = {
    "id": "gen-1",
    "object": "chat.completion.chunk",
    "created": 9,
    "model": "openai/gpt-4o",
    "provider": "OpenAI",
}


def encode(
    events: list[StreamEvent],
    include_usage: bool = True,
    cost: Decimal | None = None,
    provider: str | None = "OpenAI",
) -> list[bytes]:
    enc = OpenAIStreamEncoder(
        id="gen-1", model="openai/gpt-4o", created=9, provider=provider, include_usage=include_usage
    )
    frames = [f for ev in events for f in enc.feed(ev)]
    return frames + enc.end(cost)


def c(delta: dict[str, Any], finish: str | None = None, usage: bool = True) -> dict[str, Any]:
    d: dict[str, Any] = {
        **HEAD,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage:
        d["usage"] = None
    return d


def test_encoder_exact_chunks_text_tool_usage_and_cost() -> None:
    frames = encode(
        [
            Start(id="up", model="up"),
            ThinkingDelta(text="hm"),
            TextDelta(text="Let me check."),
            TextDelta(text=""),
            ToolCallStart(index=0, id="call_abc", name="get_weather"),
            ToolCallDelta(index=0, arguments='{"city":'),
            ToolCallDelta(index=0, arguments='"Paris"}'),
            SignatureDelta(signature="s"),
            RedactedThinking(data="d"),
            Finish(stop_reason="tool_use"),
            Finish(stop_reason="end_turn"),
            UsageUpdate(usage=Usage(input_tokens=57, output_tokens=17, cache_read_tokens=7)),
        ],
        cost=Decimal("0.5"),
    )
    assert all(f.startswith(b"data: ") and f.endswith(b"\n\n") for f in frames)
    assert openai_chunks(frames) == [
        c({"role": "assistant", "content": ""}),
        c({"reasoning": "hm", "reasoning_details": [{"type": "reasoning.text", "text": "hm", "index": 0}]}),
        c({"content": "Let me check."}),
        c(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_abc",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        c({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        c({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        # signed state goes out as OpenRouter's reasoning_details, each its own entry
        c(
            {
                "reasoning_details": [
                    {"type": "reasoning.text", "text": "", "signature": "s", "format": "unknown", "index": 1}
                ]
            }
        ),
        c({"reasoning_details": [{"type": "reasoning.encrypted", "data": "d", "format": "unknown", "index": 2}]}),
        c({}, "tool_calls"),
        {
            **HEAD,
            "choices": [],
            "usage": {
                "prompt_tokens": 57,
                "completion_tokens": 17,
                "total_tokens": 74,
                "prompt_tokens_details": {"cached_tokens": 7, "cache_write_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
                "cost": 0.5,
            },
        },
    ]
    final = check_openai_stream(frames, include_usage=True)
    assert final.choices[0].message.tool_calls[0].function.arguments == '{"city":"Paris"}'  # type: ignore[index,union-attr]


def test_encoder_without_include_usage_has_no_usage_field_and_ends_with_done() -> None:
    frames = encode(
        [
            Start(id="x", model="x"),
            TextDelta(text="hi"),
            Finish(stop_reason="end_turn"),
            UsageUpdate(usage=Usage(input_tokens=1)),
        ],
        include_usage=False,
        provider=None,
    )
    assert frames[-1] == b"data: [DONE]\n\n"
    chunks = openai_chunks(frames)
    assert [ch["choices"][0]["delta"] for ch in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "hi"},
        {},
    ]
    assert all("usage" not in ch and "provider" not in ch for ch in chunks)
    check_openai_stream(frames, include_usage=False)


def test_encoder_without_start_or_finish_still_valid() -> None:  # some upstreams send neither
    frames = encode([TextDelta(text="a")])
    chunks = openai_chunks(frames)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["total_tokens"] == 0
    check_openai_stream(frames, include_usage=True)


def test_encoder_parallel_tools_use_indexes_in_order_and_never_repeat_ids() -> None:
    frames = encode(
        [
            ToolCallStart(index=0, id="a", name="f"),
            ToolCallStart(index=1, id="b", name="g"),
            ToolCallStart(index=1, id="b", name="g"),
            ToolCallDelta(index=0, arguments="{}"),
            ToolCallDelta(index=1, arguments='{"k":'),
            ToolCallDelta(index=1, arguments="2}"),
            ToolCallDelta(index=7, arguments="lost"),
            Finish(stop_reason="end_turn"),
        ]
    )
    chunks = openai_chunks(frames)
    ids = [
        t["id"] for ch in chunks if ch["choices"] for t in ch["choices"][0]["delta"].get("tool_calls", []) if "id" in t
    ]
    assert ids == ["a", "b"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    final = check_openai_stream(frames, include_usage=True)
    calls = final.choices[0].message.tool_calls or []
    assert [(t.id, t.function.arguments) for t in calls] == [("a", "{}"), ("b", '{"k":2}')]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "stop,finish",
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("content_filter", "content_filter"),
        ("error", "error"),
    ],
)
def test_encoder_finish_reason_mapping(stop: Any, finish: str) -> None:
    chunks = openai_chunks(encode([TextDelta(text="x"), Finish(stop_reason=stop)]))
    assert chunks[-2]["choices"][0]["finish_reason"] == finish


def test_encoder_error_chunk_is_openrouter_shape() -> None:
    enc = OpenAIStreamEncoder(
        id="gen-abc123", model="openai/gpt-4o", created=1234567890, provider="OpenAI", include_usage=True
    )
    enc.feed(TextDelta(text="x"))
    frames = enc.error(RateLimited("Rate limit exceeded"))
    assert len(frames) == 1
    assert orjson.loads(parse_frames(frames)[0].data) == {
        "id": "gen-abc123",
        "object": "chat.completion.chunk",
        "created": 1234567890,
        "model": "openai/gpt-4o",
        "provider": "OpenAI",
        "error": {
            "code": 429,
            "message": "Rate limit exceeded",
            "metadata": {"error_type": "rate_limit_exceeded"},
        },
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }


def test_a_gemini_call_signature_rides_on_the_call_first_delta() -> None:
    frames = encode(
        [
            ToolCallStart(index=0, id="c0", name="f", signature="SIG", origin="gemini"),
            ToolCallDelta(index=0, arguments="{}"),
            ToolCallStart(index=1, id="c1", name="f", signature="OTHER", origin="anthropic"),  # not Gemini's
            Finish(stop_reason="tool_use"),
        ]
    )
    deltas = [ch["choices"][0]["delta"] for ch in openai_chunks(frames) if ch["choices"]]
    calls = [tc for d in deltas for tc in d.get("tool_calls") or []]
    assert calls[0]["extra_content"] == {"google": {"thought_signature": "SIG"}}
    assert all("extra_content" not in tc for tc in calls[1:])

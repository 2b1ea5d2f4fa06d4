from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from formats.fmt_helpers import check_openai_stream, openai_chunks, parse_frames

from keeprouter.clients.openai_chat.stream import OpenAIStreamEncoder
from keeprouter.errors import RateLimited, UpstreamError
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
from keeprouter.providers.openai.stream import OpenAIStreamDecoder


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


def tc(
    index: int | None = None, id: str | None = None, name: str | None = None, args: str | None = None
) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if index is not None:
        d["index"] = index
    if id is not None:
        d["id"] = id
        d["type"] = "function"
    fn = {}
    if name is not None:
        fn["name"] = name
    if args is not None:
        fn["arguments"] = args
    d["function"] = fn
    return d


def decode(chunks: list[dict[str, Any]]) -> list[StreamEvent]:
    dec = OpenAIStreamDecoder()
    return [ev for c in chunks for ev in dec.feed(c)]


USAGE = {
    "prompt_tokens": 57,
    "completion_tokens": 17,
    "total_tokens": 74,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0},
}


def test_decoder_reference_stream_text_then_tool() -> None:
    evs = decode(
        [
            chunk({"role": "assistant", "content": "", "refusal": None}),
            chunk({"content": "Let me check."}),
            chunk({"tool_calls": [tc(0, "call_abc", "get_weather", "")]}),
            chunk({"tool_calls": [tc(0, args='{"city":')]}),
            chunk({"tool_calls": [tc(0, args='"Paris"}')]}),
            chunk({}, "tool_calls"),
            {**chunk(), "choices": [], "usage": USAGE},
        ]
    )
    assert evs == [
        Start(id="chatcmpl-1", model="gpt-4o"),
        TextDelta(text="Let me check."),
        ToolCallStart(index=0, id="call_abc", name="get_weather"),
        ToolCallDelta(index=0, arguments='{"city":'),
        ToolCallDelta(index=0, arguments='"Paris"}'),
        Finish(stop_reason="tool_use"),
        UsageUpdate(usage=Usage(input_tokens=57, output_tokens=17)),
    ]


def test_decoder_repeated_id_on_every_fragment_is_one_call() -> None:  # litellm#20480
    evs = decode(
        [
            chunk({"tool_calls": [tc(0, "call_1", "f", '{"a"')]}),
            chunk({"tool_calls": [tc(0, "call_1", "f", ":1}")]}),
            chunk(finish="tool_calls"),
        ]
    )
    assert evs[1:] == [
        ToolCallStart(index=0, id="call_1", name="f"),
        ToolCallDelta(index=0, arguments='{"a"'),
        ToolCallDelta(index=0, arguments=":1}"),
        Finish(stop_reason="tool_use"),
    ]


def test_decoder_first_fragment_with_arguments_emits_start_then_delta() -> None:
    assert decode([chunk({"tool_calls": [tc(0, "c", "f", "{}")]})])[1:] == [
        ToolCallStart(index=0, id="c", name="f"),
        ToolCallDelta(index=0, arguments="{}"),
    ]


def test_decoder_parallel_calls_all_sent_with_index_zero_but_distinct_ids() -> None:
    evs = decode(
        [
            chunk({"tool_calls": [tc(0, "a", "f", '{"x":1}')]}),
            chunk({"tool_calls": [tc(0, "b", "g", '{"y":2}')]}),
        ]
    )
    assert evs[1:] == [
        ToolCallStart(index=0, id="a", name="f"),
        ToolCallDelta(index=0, arguments='{"x":1}'),
        ToolCallStart(index=1, id="b", name="g"),
        ToolCallDelta(index=1, arguments='{"y":2}'),
    ]


def test_decoder_missing_index_uses_position_and_id() -> None:  # litellm#5231 / aichat#1495
    evs = decode(
        [
            chunk({"tool_calls": [tc(None, "a", "f", ""), tc(None, "b", "g", "")]}),
            chunk({"tool_calls": [tc(None, args="{}"), tc(None, args="[1]")]}),
            chunk({"tool_calls": [tc(None, "c", "h", "")]}),
            chunk({"tool_calls": [tc(None, args='{"z":0}')]}),
        ]
    )
    assert evs[1:] == [
        ToolCallStart(index=0, id="a", name="f"),
        ToolCallStart(index=1, id="b", name="g"),
        ToolCallDelta(index=0, arguments="{}"),
        ToolCallDelta(index=1, arguments="[1]"),
        ToolCallStart(index=2, id="c", name="h"),
        ToolCallDelta(index=2, arguments='{"z":0}'),
    ]


def test_decoder_missing_id_gets_unique_generated_id() -> None:  # litellm#11407
    evs = decode(
        [
            chunk({"tool_calls": [tc(0, name="f", args="{}")]}),
            chunk({"tool_calls": [tc(0, name="g", args="{}")]}),
        ]
    )
    starts = [e for e in evs if isinstance(e, ToolCallStart)]
    assert [s.name for s in starts] == ["f", "g"] and [s.index for s in starts] == [0, 1]
    assert all(s.id.startswith("call_") and len(s.id) > 10 for s in starts) and starts[0].id != starts[1].id


def test_decoder_empty_tool_calls_list_with_content_is_text() -> None:  # litellm#29286 (vLLM)
    evs = decode(
        [chunk({"content": "hello", "tool_calls": []}), chunk({"content": "", "tool_calls": []}, "stop")]
    )
    assert evs[1:] == [TextDelta(text="hello"), Finish(stop_reason="end_turn")]


def test_decoder_usage_on_chunk_with_non_empty_choices_is_kept() -> None:  # litellm#36168
    evs = decode([chunk({"content": "x"}, "stop", usage=USAGE)])
    assert evs[1:] == [
        TextDelta(text="x"),
        Finish(stop_reason="end_turn"),
        UsageUpdate(usage=Usage(input_tokens=57, output_tokens=17)),
    ]


def test_decoder_duplicate_finish_reason_emits_one_finish() -> None:  # hass_local_openai_llm#92
    evs = decode([chunk({"content": "x"}, "stop"), chunk({}, "stop"), chunk({}, "length", usage=USAGE)])
    assert [e for e in evs if isinstance(e, Finish)] == [Finish(stop_reason="end_turn")]
    assert isinstance(evs[-1], UsageUpdate)


def test_decoder_stop_after_tool_calls_is_tool_use() -> None:  # python-genai#2868
    evs = decode([chunk({"tool_calls": [tc(0, "a", "f", "{}")]}), chunk({}, "stop")])
    assert evs[-1] == Finish(stop_reason="tool_use")


def test_decoder_tool_calls_finish_without_calls_is_end_turn() -> None:
    assert decode([chunk({"content": "x"}, "tool_calls")])[-1] == Finish(stop_reason="end_turn")


def test_decoder_reasoning_fields_and_other_choices() -> None:
    evs = decode(
        [
            chunk({"reasoning": "a"}),
            chunk({"reasoning_content": "b", "content": "c"}),
            {**chunk(), "choices": [{"index": 1, "delta": {"content": "other"}, "finish_reason": None}]},
            chunk({"content": [{"type": "text", "text": "d"}]}),
        ]
    )
    assert evs[1:] == [
        ThinkingDelta(text="a"),
        ThinkingDelta(text="b"),
        TextDelta(text="c"),
        TextDelta(text="d"),
    ]


def test_decoder_error_chunk_raises_with_status() -> None:
    dec = OpenAIStreamDecoder()
    dec.feed(chunk({"content": "x"}))
    with pytest.raises(UpstreamError) as e:
        dec.feed({"error": {"code": 429, "message": "Rate limit exceeded"}, "choices": []})
    assert (e.value.message, e.value.status, e.value.kind) == (
        "Rate limit exceeded",
        429,
        "rate_limit_exceeded",
    )
    with pytest.raises(UpstreamError) as e:
        OpenAIStreamDecoder().feed({"error": "boom"})
    assert e.value.status == 502


# ---- encoder -------------------------------------------------------------------------------

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
        c({"reasoning": "hm"}),
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


def test_encoder_without_start_or_finish_still_valid() -> None:  # Portkey#1399, screenpipe#3616
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
        t["id"]
        for ch in chunks
        if ch["choices"]
        for t in ch["choices"][0]["delta"].get("tool_calls", [])
        if "id" in t
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

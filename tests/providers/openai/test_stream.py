"""The OpenAI Chat Completions upstream stream decoder and the deviations it absorbs."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import (
    Finish,
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


def test_decoder_repeated_id_on_every_fragment_is_one_call() -> None:  # some hosts repeat the id on every fragment
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


def test_decoder_missing_index_uses_position_and_id() -> None:  # some hosts omit `index`
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


def test_decoder_missing_id_gets_unique_generated_id() -> None:  # some hosts send no id at all
    evs = decode(
        [
            chunk({"tool_calls": [tc(0, name="f", args="{}")]}),
            chunk({"tool_calls": [tc(0, name="g", args="{}")]}),
        ]
    )
    starts = [e for e in evs if isinstance(e, ToolCallStart)]
    assert [s.name for s in starts] == ["f", "g"] and [s.index for s in starts] == [0, 1]
    assert all(s.id.startswith("call_") and len(s.id) > 10 for s in starts) and starts[0].id != starts[1].id


def test_decoder_empty_tool_calls_list_with_content_is_text() -> None:  # vLLM sends `tool_calls: []` with text
    evs = decode([chunk({"content": "hello", "tool_calls": []}), chunk({"content": "", "tool_calls": []}, "stop")])
    assert evs[1:] == [TextDelta(text="hello"), Finish(stop_reason="end_turn")]


def test_decoder_usage_on_chunk_with_non_empty_choices_is_kept() -> None:  # some hosts send usage with choices
    evs = decode([chunk({"content": "x"}, "stop", usage=USAGE)])
    assert evs[1:] == [
        TextDelta(text="x"),
        Finish(stop_reason="end_turn"),
        UsageUpdate(usage=Usage(input_tokens=57, output_tokens=17)),
    ]


def test_decoder_duplicate_finish_reason_emits_one_finish() -> None:  # some local servers finish twice
    evs = decode([chunk({"content": "x"}, "stop"), chunk({}, "stop"), chunk({}, "length", usage=USAGE)])
    assert [e for e in evs if isinstance(e, Finish)] == [Finish(stop_reason="end_turn")]
    assert isinstance(evs[-1], UsageUpdate)


def test_decoder_stop_after_tool_calls_is_tool_use() -> None:  # some hosts end tool calls with "stop"
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


HEAD = {
    "id": "gen-1",
    "object": "chat.completion.chunk",
    "created": 9,
    "model": "openai/gpt-4o",
    "provider": "OpenAI",
}


def c(delta: dict[str, Any], finish: str | None = None, usage: bool = True) -> dict[str, Any]:
    d: dict[str, Any] = {
        **HEAD,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage:
        d["usage"] = None
    return d


def decode_bytes(payloads: list[bytes]) -> list[StreamEvent]:
    dec = OpenAIStreamDecoder()
    return [ev for p in payloads for ev in dec.feed_bytes(p)]


TEXTS = ["Hello", " wörld", 'a "quoted" \\ path', "", "日本 🎉", "line\nbreak", "</tag>", "Hello"]


def test_feed_bytes_reads_later_text_chunks_by_their_learned_shape() -> None:
    chunks = [chunk({"role": "assistant", "content": ""}), *(chunk({"content": x}) for x in TEXTS)]
    chunks += [chunk({"content": "bye"}, "stop"), chunk({}, usage=USAGE)]
    payloads = [orjson.dumps(c) for c in chunks]
    dec = OpenAIStreamDecoder()
    assert [ev for p in payloads for ev in dec.feed_bytes(p)] == decode(chunks)
    assert dec._head.endswith(b'"delta":{"content":') and dec._tail == b'},"finish_reason":null}]}'


@pytest.mark.parametrize(
    "middle",
    [
        b'"a","role":"x"',  # more than one string there: the whole chunk is parsed
        b'"a" ',
        b'"a\xffb"',  # invalid UTF-8: replaced, as the full parse does
        b'"\\u00e9\\"\\/"',  # escapes another encoder writes
        b"null",
        b"12",
        b'["a"]',
    ],
)
def test_feed_bytes_equals_feed_for_any_bytes_in_the_text_s_place(middle: bytes) -> None:
    head = orjson.dumps(chunk({"content": "\0"})).split(b'"\\u0000"')
    payloads = [orjson.dumps(chunk({"content": ""})), head[0] + b'"learn"' + head[1], head[0] + middle + head[1]]
    expected = decode([orjson.loads(p.decode("utf-8", "replace")) for p in payloads])
    assert decode_bytes(payloads) == expected


def test_a_chunk_with_more_than_text_teaches_no_shape() -> None:
    for first in (
        chunk({"content": "a", "reasoning": "r"}),
        chunk({"content": "a", "tool_calls": [tc(0, "call_1", "f", "{}")]}),
        {**chunk(), "choices": [{"index": 0, "delta": {"content": "a"}, "logprobs": {"content": []}}]},
        chunk({"content": "a"}, "stop"),
        {**chunk({"content": "a"}), "usage": USAGE},
        {**chunk({"content": "a"}), "choices": [{"index": 1, "delta": {"content": "a"}}]},
    ):
        dec = OpenAIStreamDecoder()
        dec.feed_bytes(orjson.dumps(chunk({"content": ""})))
        dec.feed_bytes(orjson.dumps(first))
        assert dec._head == b""


def test_an_upstream_escaping_unlike_orjson_is_read_whole() -> None:
    payloads = [
        json.dumps(c).encode() for c in (chunk({"content": ""}), chunk({"content": "é"}), chunk({"content": "ü"}))
    ]
    dec = OpenAIStreamDecoder()
    assert [ev for p in payloads for ev in dec.feed_bytes(p)] == [
        Start(id="chatcmpl-1", model="gpt-4o"),
        TextDelta(text="é"),
        TextDelta(text="ü"),
    ]
    assert dec._head == b""


@pytest.mark.parametrize("payload", [b"{nope", b"[1]", b'"text"'])
def test_feed_bytes_refuses_what_is_not_a_json_object(payload: bytes) -> None:
    with pytest.raises(ValueError):
        OpenAIStreamDecoder().feed_bytes(payload)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=8))
def test_feed_bytes_matches_feed_for_any_texts(texts: list[str]) -> None:
    chunks = [chunk({"role": "assistant", "content": ""}), *(chunk({"content": x}) for x in texts), chunk({}, "stop")]
    assert decode_bytes([orjson.dumps(c) for c in chunks]) == decode(chunks)

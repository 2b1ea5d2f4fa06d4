"""Tool calls stream to Messages callers as they arrive, checked chunk by chunk.

Each upstream chunk is fed through the real decoder and the Messages encoder; the test looks at
what is written for THAT chunk: a call's block closes as soon as the next block starts when its
arguments are complete, and later calls are buffered only while an earlier call is incomplete.
"""

from __future__ import annotations

from typing import Any

import orjson
from formats.fmt_helpers import check_anthropic_stream, parse_frames

from keeprouter.clients.anthropic_messages.stream import AnthropicStreamEncoder
from keeprouter.formats.canonical import Finish, StreamEvent, TextDelta, ToolCallDelta, ToolCallStart
from keeprouter.providers.anthropic.stream import AnthropicStreamDecoder
from keeprouter.providers.openai.stream import OpenAIStreamDecoder


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def call(index: int, *, id: str | None = None, name: str | None = None, args: str = "") -> dict[str, Any]:
    tc: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if id is not None:
        tc.update(id=id, type="function")
        tc["function"]["name"] = name
    return chunk({"tool_calls": [tc]})


def summary(frames: list[bytes]) -> list[tuple[Any, ...]]:
    """Each written event as (type, block index[, the delta's partial_json or text])."""
    out: list[tuple[Any, ...]] = []
    for e in parse_frames(frames):
        d = orjson.loads(e.data)
        t = d["type"]
        if t == "content_block_start":
            out.append((t, d["index"], d["content_block"].get("name") or d["content_block"]["type"]))
        elif t == "content_block_delta":
            out.append((t, d["index"], d["delta"].get("partial_json", d["delta"].get("text"))))
        elif t == "content_block_stop":
            out.append((t, d["index"]))
    return out


def through_openai(chunks: list[dict[str, Any]]) -> tuple[list[list[tuple[Any, ...]]], list[bytes]]:
    dec, enc = OpenAIStreamDecoder(), AnthropicStreamEncoder(id="msg_1", model="m")
    per_chunk: list[list[tuple[Any, ...]]] = []
    frames: list[bytes] = []
    for c in chunks:
        written = [f for ev in dec.feed(c) for f in enc.feed(ev)]
        per_chunk.append(summary(written))
        frames += written
    frames += enc.end()
    return per_chunk, frames


def test_sequential_parallel_calls_each_close_when_the_next_starts() -> None:
    per_chunk, frames = through_openai(
        [
            chunk({"role": "assistant", "content": "Reading both."}),
            call(0, id="call_a", name="Read", args=""),
            call(0, args='{"path":'),
            call(0, args='"a.txt"}'),
            call(1, id="call_b", name="Read", args=""),
            call(1, args='{"path":'),
            call(1, args='"b.txt"}'),
            call(2, id="call_c", name="Glob", args='{"p":"*"}'),
            chunk({}, "tool_calls"),
        ]
    )
    assert per_chunk[1] == [("content_block_stop", 0), ("content_block_start", 1, "Read")]
    assert per_chunk[2] == [("content_block_delta", 1, '{"path":')]
    assert per_chunk[3] == [("content_block_delta", 1, '"a.txt"}')]
    # the second call opens at once, closing the first: nothing is held back
    assert per_chunk[4] == [("content_block_stop", 1), ("content_block_start", 2, "Read")]
    assert per_chunk[5] == [("content_block_delta", 2, '{"path":')]
    assert per_chunk[6] == [("content_block_delta", 2, '"b.txt"}')]
    assert per_chunk[7] == [
        ("content_block_stop", 2),
        ("content_block_start", 3, "Glob"),
        ("content_block_delta", 3, '{"p":"*"}'),
    ]
    assert per_chunk[8] == [("content_block_stop", 3)]
    msg = check_anthropic_stream(frames)
    assert [getattr(b, "input", None) for b in msg.content] == [None, {"path": "a.txt"}, {"path": "b.txt"}, {"p": "*"}]


def test_interleaved_calls_buffer_only_while_the_open_call_is_incomplete() -> None:
    per_chunk, frames = through_openai(
        [
            call(0, id="call_a", name="Read", args=""),
            call(1, id="call_b", name="Grep", args=""),  # starts while call 0 has no arguments yet
            call(1, args='{"q":'),
            call(0, args='{"path":'),
            call(0, args='"a.txt"}'),  # call 0 is complete: its block closes, call 1 comes out
            call(1, args='"x"}'),  # call 1 is open now: live
            chunk({}, "tool_calls"),
        ]
    )
    assert per_chunk[0] == [("content_block_start", 0, "Read")]
    assert per_chunk[1] == []  # why: call 0 may still receive fragments, its block must stay open
    assert per_chunk[2] == []
    assert per_chunk[3] == [("content_block_delta", 0, '{"path":')]
    assert per_chunk[4] == [
        ("content_block_delta", 0, '"a.txt"}'),
        ("content_block_stop", 0),
        ("content_block_start", 1, "Grep"),
        ("content_block_delta", 1, '{"q":'),
    ]
    assert per_chunk[5] == [("content_block_delta", 1, '"x"}')]
    assert per_chunk[6] == [("content_block_stop", 1)]
    msg = check_anthropic_stream(frames)
    assert [(b.name, b.input) for b in msg.content] == [  # type: ignore[union-attr]
        ("Read", {"path": "a.txt"}),
        ("Grep", {"q": "x"}),
    ]


def test_text_and_calls_buffered_behind_an_incomplete_call_come_out_in_order() -> None:
    enc = AnthropicStreamEncoder(id="m", model="m")
    feed: list[StreamEvent] = [
        ToolCallStart(index=0, id="a", name="f"),
        ToolCallDelta(index=0, arguments='{"n":'),
        TextDelta(text="note"),  # held: call 0 is incomplete
        ToolCallStart(index=1, id="b", name="g"),
        ToolCallDelta(index=1, arguments='{"m":1}'),
        ToolCallStart(index=2, id="c", name="h"),
        ToolCallDelta(index=2, arguments='{"k":'),
    ]
    for ev in feed:
        enc.feed(ev)
    out = summary(enc.feed(ToolCallDelta(index=0, arguments="1}")))
    # call 0 completes: text and call 1 (complete) are written and closed, call 2 (incomplete) stays open
    assert out == [
        ("content_block_delta", 0, "1}"),
        ("content_block_stop", 0),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "note"),
        ("content_block_stop", 1),
        ("content_block_start", 2, "g"),
        ("content_block_delta", 2, '{"m":1}'),
        ("content_block_stop", 2),
        ("content_block_start", 3, "h"),
        ("content_block_delta", 3, '{"k":'),
    ]
    assert summary(enc.feed(ToolCallDelta(index=2, arguments="2}"))) == [("content_block_delta", 3, "2}")]
    assert summary(enc.feed(TextDelta(text="after"))) == [
        ("content_block_stop", 3),
        ("content_block_start", 4, "text"),
        ("content_block_delta", 4, "after"),
    ]
    enc.feed(Finish(stop_reason="tool_use"))


def test_an_incomplete_call_at_the_finish_still_flushes_everything_in_order() -> None:
    enc = AnthropicStreamEncoder(id="m", model="m")
    frames: list[bytes] = []
    events: list[StreamEvent] = [
        ToolCallStart(index=0, id="a", name="f"),
        ToolCallDelta(index=0, arguments='{"n":'),  # cut by max_tokens: never completes
        ToolCallStart(index=1, id="b", name="g"),
        ToolCallDelta(index=1, arguments='{"m":1}'),
        Finish(stop_reason="max_tokens"),
    ]
    for ev in events:
        frames += enc.feed(ev)
    frames += enc.end()
    names = [s for s in summary(frames) if s[0] != "content_block_delta"]
    assert names == [
        ("content_block_start", 0, "f"),
        ("content_block_stop", 0),
        ("content_block_start", 1, "g"),
        ("content_block_stop", 1),
    ]


ANTHROPIC_TOOLS: list[tuple[str, dict[str, Any]]] = [
    ("message_start", {"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "Two calls."}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1,
                             "content_block": {"type": "tool_use", "id": "toolu_a", "name": "Read", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "input_json_delta", "partial_json": '{"path":"a"}'}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("content_block_start", {"type": "content_block_start", "index": 2,
                             "content_block": {"type": "tool_use", "id": "toolu_b", "name": "LS", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2,
                             "delta": {"type": "input_json_delta", "partial_json": ""}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    ("content_block_start", {"type": "content_block_start", "index": 3,
                             "content_block": {"type": "tool_use", "id": "toolu_c", "name": "Read", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 3,
                             "delta": {"type": "input_json_delta", "partial_json": '{"path":'}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 3,
                             "delta": {"type": "input_json_delta", "partial_json": '"b"}'}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 3}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
]  # fmt: skip


def test_from_an_anthropic_upstream_every_block_streams_live() -> None:
    dec, enc = AnthropicStreamDecoder(), AnthropicStreamEncoder(id="msg_1", model="m")
    per_event = [summary([f for ev in dec.feed(name, data) for f in enc.feed(ev)]) for name, data in ANTHROPIC_TOOLS]
    # every upstream delta is written for the event that carried it; each block closes when the next opens
    assert per_event[4] == [("content_block_stop", 0), ("content_block_start", 1, "Read")]
    assert per_event[5] == [("content_block_delta", 1, '{"path":"a"}')]
    assert per_event[7] == [("content_block_stop", 1), ("content_block_start", 2, "LS")]
    # a call without input gets the empty object at its stop, so it is complete when the next starts
    assert per_event[9] == [("content_block_delta", 2, "{}")]
    assert per_event[10] == [("content_block_stop", 2), ("content_block_start", 3, "Read")]
    assert per_event[11] == [("content_block_delta", 3, '{"path":')]
    assert per_event[12] == [("content_block_delta", 3, '"b"}')]
    assert per_event[14] == [("content_block_stop", 3)]
    msg = check_anthropic_stream(_replay())
    assert [getattr(b, "input", None) for b in msg.content] == [None, {"path": "a"}, {}, {"path": "b"}]


def _replay() -> list[bytes]:
    dec, enc = AnthropicStreamDecoder(), AnthropicStreamEncoder(id="msg_1", model="m")
    frames = [f for name, data in ANTHROPIC_TOOLS for ev in dec.feed(name, data) for f in enc.feed(ev)]
    return frames + enc.end()

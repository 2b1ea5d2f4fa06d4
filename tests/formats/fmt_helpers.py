"""Shared helpers for the formats tests: frame parsing and SDK-based stream validation."""

from __future__ import annotations

from typing import Any

import orjson
import pydantic
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message as AnthropicMessage
from anthropic.types import RawMessageStreamEvent
from openai import omit
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from keeprouter.formats.sse import SSEEvent, SSEParser

_EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)


def parse_frames(frames: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    out: list[SSEEvent] = []
    for f in frames:
        out.extend(parser.feed(f))
    return out


def openai_chunks(frames: list[bytes]) -> list[dict[str, Any]]:
    """Decode `data:` frames; asserts the stream ends with exactly one `[DONE]`."""
    events = parse_frames(frames)
    assert events[-1].data == "[DONE]"
    assert sum(1 for e in events if e.data == "[DONE]") == 1
    return [orjson.loads(e.data) for e in events[:-1]]


def check_openai_stream(frames: list[bytes], *, include_usage: bool) -> ChatCompletion:
    """Validate §3.4's invariants and the SDK's models; return the SDK's reassembled completion."""
    chunks = openai_chunks(frames)
    head = {k: chunks[0][k] for k in ("id", "created", "model", "object")}
    assert head["object"] == "chat.completion.chunk"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finishes = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"] is not None]
    assert len(finishes) == 1
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for i, c in enumerate(chunks):
        assert {k: c[k] for k in head} == head
        if include_usage:
            assert "usage" in c
            if i < len(chunks) - 1:
                assert c["usage"] is None
        else:
            assert "usage" not in c
        state.handle_chunk(ChatCompletionChunk.model_validate(c))
    if include_usage:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] is not None
        assert chunks.index(finishes[0]) == len(chunks) - 2
    else:
        assert chunks.index(finishes[0]) == len(chunks) - 1
    return ChatCompletion.model_validate(state.get_final_completion().model_dump())


def anthropic_events(frames: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for e in parse_frames(frames):
        data = orjson.loads(e.data)
        assert e.event is not None and e.event == data["type"]
        out.append((e.event, data))
    return out


def check_anthropic_stream(frames: list[bytes]) -> AnthropicMessage:
    """Validate §3.5's rules and the SDK's event models; return the SDK's reassembled message."""
    events = anthropic_events(frames)
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names.count("message_start") == 1
    assert names[-1] == "message_stop" and names.count("message_stop") == 1
    assert names[-2] == "message_delta" and names.count("message_delta") == 1
    open_index: int | None = None
    open_type = None
    next_index = 0
    kinds = {
        "text_delta": "text",
        "thinking_delta": "thinking",
        "signature_delta": "thinking",
        "input_json_delta": "tool_use",
        "citations_delta": "text",
    }
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for name, data in events:
        if name == "ping":  # the SDK skips pings; they may appear anywhere
            assert data == {"type": "ping"}
            continue
        _EVENT.validate_python(data)
        if name == "content_block_start":
            assert open_index is None, "a block was opened while another is open"
            assert data["index"] == next_index, "block indexes must be contiguous"
            open_index, open_type = data["index"], data["content_block"]["type"]
            next_index += 1
        elif name == "content_block_delta":
            assert data["index"] == open_index
            assert kinds[data["delta"]["type"]] == open_type, "delta type does not match its block"
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
        elif name in ("message_delta", "message_stop"):
            assert open_index is None
        snapshot = accumulate_event(event=data, current_snapshot=snapshot, json_bufs=json_bufs)  # type: ignore[arg-type]
    assert snapshot is not None
    return AnthropicMessage.model_validate(snapshot.model_dump())


_RESPONSES_EVENT: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)
_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def check_responses_stream(frames: list[bytes], *, same_output: bool = True) -> tuple[list[dict[str, Any]], Response]:
    """Validate a Responses event stream: `event:` names match `type`, sequence numbers count from 0,
    created + in_progress first, exactly one terminal event last, every item added then done once, each
    delta inside its open item and the deltas adding up to the done text; every event validates as the
    SDK's model and the SDK's own accumulator replays it; the final output is the items as done
    (`same_output`). Returns the events and the final response."""
    sse = parse_frames(frames)
    events = [orjson.loads(e.data) for e in sse]
    assert [e.event for e in sse] == [ev["type"] for ev in events]
    assert [ev["sequence_number"] for ev in events] == list(range(len(events)))
    assert [ev["type"] for ev in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1]["type"] in _TERMINAL
    assert sum(ev["type"] in _TERMINAL for ev in events) == 1
    open_items: dict[int, dict[str, Any]] = {}
    done_items: dict[int, dict[str, Any]] = {}
    texts: dict[int, str] = {}
    for ev in events:
        t, i = ev["type"], ev.get("output_index")
        if t == "response.output_item.added":
            assert i not in open_items and i not in done_items, ev
            assert i == len(open_items) + len(done_items), "output indexes are contiguous"
            open_items[i] = ev["item"]
            texts[i] = ""
        elif t == "response.output_item.done":
            assert open_items.pop(i)["id"] == ev["item"]["id"]
            done_items[i] = ev["item"]
        elif i is not None:
            assert i in open_items and ev["item_id"] == open_items[i]["id"], ev
            if t.endswith(".delta"):
                texts[i] += ev["delta"]
            elif t in ("response.output_text.done", "response.reasoning_summary_text.done"):
                assert ev["text"] == texts[i]
            elif t == "response.function_call_arguments.done":
                assert ev["arguments"] == texts[i]
            elif t == "response.custom_tool_call_input.done":
                assert ev["input"] == texts[i]
    assert not open_items, "every item is done before the end"
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=[], text_format=omit)
    for ev in events:
        state.handle_event(_RESPONSES_EVENT.validate_python(ev))
    final = Response.model_validate(events[-1]["response"])
    if same_output:
        assert events[-1]["response"]["output"] == [done_items[k] for k in sorted(done_items)]
    return events, final

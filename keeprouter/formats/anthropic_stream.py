"""Anthropic Messages streams: upstream events -> canonical events, canonical events -> client SSE.

Encoder rules (wire-formats.md §3.5, pitfalls §2.1): exactly one `message_start` (with the real
input counts when known) then a `ping`; blocks opened, filled and closed one at a time with
contiguous indexes; each delta matches its block; a text -> tool transition closes the text block,
opens the tool block AND emits the arguments that came with it (litellm#25321).

Tool calls stream as they arrive: a tool call's block is closed as soon as the next block (another
call, text or reasoning) starts, provided the arguments received so far are complete JSON. Only
while they are incomplete is what follows buffered (per block, in order of first appearance) and
written once they complete or the stream finishes: OpenAI-format providers interleave the fragments
of parallel calls by `index`, so an incomplete call may still receive fragments, and its block must
stay open for them (Messages blocks cannot be reopened). An Anthropic upstream never interleaves
(each tool block's input is complete at its content_block_stop), so everything from it streams live.
"""

from __future__ import annotations

from typing import Any

import orjson

from keeprouter.errors import GatewayError, UpstreamError
from keeprouter.formats.anthropic import STOP_FROM_ANTHROPIC, error_type, stop_reason, usage_dict, write_1h
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

# upstream in-stream error type -> the status our UpstreamError carries
_ERROR_STATUS: dict[Any, int] = {
    "overloaded_error": 503,
    "rate_limit_error": 429,
    "invalid_request_error": 400,
    "request_too_large": 413,
    "timeout_error": 504,
}


def _int(d: dict[str, Any], key: str, default: int) -> int:
    v = d.get(key)
    return v if isinstance(v, int) else default


class AnthropicStreamDecoder:
    """Feed each upstream SSE event (its `event:` name and parsed `data`). Calls of `json_tool` (the
    structured-output tool, see `anthropic.json_tool`) stream as the answer's text."""

    __slots__ = ("_input", "_json_block", "_json_tool", "_no_args", "_tools")

    def __init__(self, json_tool: str | None = None) -> None:
        self._json_tool = json_tool
        self._json_block: Any = None  # block index of the structured-output call
        self._tools: dict[Any, int] = {}  # block index -> canonical tool index
        self._no_args: set[Any] = set()  # tool block indexes that have received no input yet
        self._input = (0, 0, 0, 0)  # input_tokens, cache_read, cache_creation, its 1h share from message_start

    def feed(self, event: str | None, data: dict[str, Any]) -> list[StreamEvent]:
        t = event or data.get("type")
        if t == "content_block_delta":
            d = data.get("delta")
            if not isinstance(d, dict):
                return []
            dt = d.get("type")
            if dt == "text_delta":
                text = d.get("text")
                return [TextDelta(text=text)] if text and isinstance(text, str) else []
            if dt == "input_json_delta":
                bi = data.get("index")
                ti = self._tools.get(bi)
                pj = d.get("partial_json")
                if ti is None or not pj or not isinstance(pj, str):
                    if bi == self._json_block and pj and isinstance(pj, str):
                        self._no_args.discard(bi)
                        return [TextDelta(text=pj)]
                    return []
                self._no_args.discard(bi)
                return [ToolCallDelta(index=ti, arguments=pj)]
            if dt == "thinking_delta":
                text = d.get("thinking")
                return [ThinkingDelta(text=text)] if text and isinstance(text, str) else []
            if dt == "signature_delta":
                sig = d.get("signature")
                return [SignatureDelta(signature=sig)] if sig and isinstance(sig, str) else []
            return []
        if t == "content_block_start":
            return self._block_start(data)
        if t == "message_start":
            msg = data.get("message")
            if not isinstance(msg, dict):
                msg = {}
            u = msg.get("usage")
            usage = None
            if isinstance(u, dict):
                self._input = (
                    _int(u, "input_tokens", 0),
                    _int(u, "cache_read_input_tokens", 0),
                    _int(u, "cache_creation_input_tokens", 0),
                    write_1h(u) or 0,
                )
                usage = self._usage(u, 0)
            return [Start(id=str(msg.get("id") or ""), model=str(msg.get("model") or ""), usage=usage)]
        if t == "message_delta":
            out: list[StreamEvent] = []
            d = data.get("delta")
            if isinstance(d, dict) and isinstance(d.get("stop_reason"), str):
                seq = d.get("stop_sequence")
                stop = STOP_FROM_ANTHROPIC.get(d["stop_reason"], "end_turn")
                if stop == "tool_use" and self._json_block is not None and not self._tools:
                    stop = "end_turn"  # the only call was the answer
                out.append(Finish(stop_reason=stop, stop_sequence=seq if isinstance(seq, str) else None))
            u = data.get("usage")
            if isinstance(u, dict):
                out.append(UsageUpdate(usage=self._usage(u, 0)))
            return out
        if t == "error":
            err = data.get("error")
            if not isinstance(err, dict):
                err = {}
            return self._raise(err)
        if t == "content_block_stop" and self._no_args:
            bi = data.get("index")
            if bi in self._no_args:  # a call without input: its arguments are the empty object
                self._no_args.discard(bi)
                if bi == self._json_block:
                    return [TextDelta(text="{}")]
                return [ToolCallDelta(index=self._tools[bi], arguments="{}")]
        return []  # ping, content_block_stop, message_stop, unknown events

    @staticmethod
    def _raise(err: dict[str, Any]) -> list[StreamEvent]:
        raise UpstreamError(
            str(err.get("message") or "upstream stream error"), status=_ERROR_STATUS.get(err.get("type"), 502)
        )

    def _usage(self, u: dict[str, Any], output: int) -> Usage:
        """Cumulative usage: input side from message_start unless this event carries its own."""
        inp, read, write, hour = self._input
        read = _int(u, "cache_read_input_tokens", read)
        write = _int(u, "cache_creation_input_tokens", write)
        found = write_1h(u)
        hour = hour if found is None else found
        otd = u.get("output_tokens_details")
        return Usage(
            input_tokens=_int(u, "input_tokens", inp) + read + write,
            output_tokens=_int(u, "output_tokens", output),
            cache_read_tokens=read,
            cache_write_tokens=write,
            cache_write_1h_tokens=hour,
            reasoning_tokens=_int(otd, "thinking_tokens", 0) if isinstance(otd, dict) else 0,
        )

    def _block_start(self, data: dict[str, Any]) -> list[StreamEvent]:
        b = data.get("content_block")
        if not isinstance(b, dict):
            return []
        bt = b.get("type")
        if bt == "text":
            text = b.get("text")
            return [TextDelta(text=text)] if text and isinstance(text, str) else []
        if bt == "tool_use" and self._json_tool is not None and b.get("name") == self._json_tool:
            self._json_block = data.get("index")
            inp = b.get("input")
            if inp and isinstance(inp, dict):
                return [TextDelta(text=orjson.dumps(inp).decode())]
            self._no_args.add(self._json_block)
            return []
        if bt == "tool_use":
            ti = self._tools[data.get("index")] = len(self._tools)
            out: list[StreamEvent] = [
                ToolCallStart(index=ti, id=str(b.get("id") or ""), name=str(b.get("name") or ""))
            ]
            inp = b.get("input")
            if inp and isinstance(inp, dict):
                out.append(ToolCallDelta(index=ti, arguments=orjson.dumps(inp).decode()))
            else:
                self._no_args.add(data.get("index"))
            return out
        if bt == "thinking":
            out = []
            if (text := b.get("thinking")) and isinstance(text, str):
                out.append(ThinkingDelta(text=text))
            if (sig := b.get("signature")) and isinstance(sig, str):
                out.append(SignatureDelta(signature=sig))
            return out
        if bt == "redacted_thinking":
            return [RedactedThinking(data=str(b.get("data") or ""))]
        return []


def _ev(name: bytes, payload: bytes) -> bytes:
    return b"event: " + name + b"\ndata: " + payload + b"\n\n"


_PING = _ev(b"ping", b'{"type":"ping"}')
_MESSAGE_STOP = _ev(b"message_stop", b'{"type":"message_stop"}')
_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n'
_START = b'event: content_block_start\ndata: {"type":"content_block_start","index":%d,"content_block":%b}\n\n'
_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
    b'"delta":{"type":"%b","%b":%b}}\n\n'
)
_EMPTY_TEXT = b'{"type":"text","text":""}'
_EMPTY_THINKING = b'{"type":"thinking","thinking":"","signature":""}'


class AnthropicStreamEncoder:
    """Canonical events -> `event: X\\ndata: {...}\\n\\n` frames of a Messages stream."""

    __slots__ = (
        "_finish",
        "_id",
        "_index",
        "_live_args",
        "_live_tool",
        "_model",
        "_open",
        "_pending",
        "_pending_tools",
        "_sealed",
        "_start_usage",
        "_started",
        "_tools_seen",
        "_usage",
    )

    def __init__(self, *, id: str, model: str) -> None:
        self._id = id
        self._model = model
        self._started = False
        self._index = -1  # index of the last opened block
        self._open: str | None = None  # "text" | "thinking" | "tool_use"
        self._sealed = False  # the open thinking block got its signature: new thinking opens a new block
        self._live_tool: int | None = None
        self._live_args: list[str] = []  # the open call's argument fragments so far
        self._pending: list[list[Any]] = []  # buffered blocks: [kind, payload parts...]
        self._pending_tools: dict[int, list[Any]] = {}
        self._tools_seen = False
        self._finish: Finish | None = None
        self._usage: Usage | None = None
        self._start_usage: Usage | None = None

    def _message_start(self, out: list[bytes]) -> None:
        self._started = True
        u = usage_dict(self._start_usage or Usage())
        u["output_tokens"] = 1
        msg: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": u,
        }
        out.append(_ev(b"message_start", orjson.dumps({"type": "message_start", "message": msg})))
        out.append(_PING)

    def _close(self, out: list[bytes]) -> None:
        if self._open is not None:
            out.append(_STOP % self._index)
            self._open = None
            self._live_tool = None

    def _open_block(self, kind: str, block: bytes, out: list[bytes]) -> int:
        self._close(out)
        self._index += 1
        self._open = kind
        self._sealed = False
        out.append(_START % (self._index, block))
        return self._index

    def _delta(self, kind: str, key: bytes, dtype: bytes, value: str, out: list[bytes]) -> None:
        if self._open != kind or (kind == "thinking" and self._sealed):
            self._open_block(kind, _EMPTY_TEXT if kind == "text" else _EMPTY_THINKING, out)
        out.append(_DELTA % (self._index, dtype, key, orjson.dumps(value)))

    def _hold(self, kind: str, value: str) -> None:
        last = self._pending[-1] if self._pending else None
        if last is not None and last[0] == kind and (kind == "text" or not last[2]):
            last[1].append(value)
        else:
            self._pending.append([kind, [value], []] if kind == "thinking" else [kind, [value]])

    def feed(self, ev: StreamEvent) -> list[bytes]:
        out: list[bytes] = []
        if isinstance(ev, Start):
            if not self._started:
                self._start_usage = ev.usage
                self._message_start(out)
            return out
        if isinstance(ev, UsageUpdate):
            self._usage = ev.usage
            return out
        if not self._started:
            self._message_start(out)
        if isinstance(ev, ToolCallDelta):
            if ev.arguments:
                if ev.index == self._live_tool:
                    out.append(
                        _DELTA % (self._index, b"input_json_delta", b"partial_json", orjson.dumps(ev.arguments))
                    )
                    self._live_args.append(ev.arguments)
                    if self._pending and ev.arguments.rstrip().endswith(("}", "]")):
                        self._advance(out)
                elif (pending := self._pending_tools.get(ev.index)) is not None:
                    pending[3].append(ev.arguments)
            return out
        if isinstance(ev, ToolCallStart) and (ev.index == self._live_tool or ev.index in self._pending_tools):
            return out
        if isinstance(ev, Finish):
            self._finish = ev
            self._flush(out)
            return out
        if self._open == "tool_use":
            self._advance(out)  # a new block begins: the open call is closed if it is complete
        holding = self._open == "tool_use"
        if isinstance(ev, TextDelta):
            if ev.text:
                if holding:
                    self._hold("text", ev.text)
                else:
                    self._delta("text", b"text", b"text_delta", ev.text, out)
        elif isinstance(ev, ToolCallStart):
            self._tools_seen = True
            if holding:
                block = ["tool", ev.id, ev.name, [], ev.index]
                self._pending.append(block)
                self._pending_tools[ev.index] = block
            else:
                self._open_tool(ev.index, ev.id, ev.name, [], out)
        elif isinstance(ev, ThinkingDelta):
            if ev.text:
                if holding:
                    self._hold("thinking", ev.text)
                else:
                    self._delta("thinking", b"thinking", b"thinking_delta", ev.text, out)
        elif isinstance(ev, SignatureDelta):
            if holding:
                last = self._pending[-1] if self._pending else None
                if last is None or last[0] != "thinking" or last[2]:
                    last = ["thinking", [], []]
                    self._pending.append(last)
                last[2].append(ev.signature)
            else:
                if self._open != "thinking" or self._sealed:
                    self._open_block("thinking", _EMPTY_THINKING, out)
                out.append(
                    _DELTA % (self._index, b"signature_delta", b"signature", orjson.dumps(ev.signature))
                )
                self._sealed = True
        elif isinstance(ev, RedactedThinking):
            if holding:
                self._pending.append(["redacted", ev.data])
            else:
                self._redacted(ev.data, out)
        return out

    def _open_tool(self, index: int, id: str, name: str, args: list[str], out: list[bytes]) -> None:
        i = self._open_block("tool_use", orjson.dumps({"type": "tool_use", "id": id, "name": name, "input": {}}), out)
        self._live_tool = index
        self._live_args = args
        if args:
            out.append(_DELTA % (i, b"input_json_delta", b"partial_json", orjson.dumps("".join(args))))

    def _complete(self) -> bool:
        """Whether the open call's arguments so far are one whole JSON value (no more can follow)."""
        try:
            orjson.loads("".join(self._live_args))
        except orjson.JSONDecodeError:
            return False
        return True

    def _advance(self, out: list[bytes]) -> None:
        """While the open tool call is complete: close it and write the buffered blocks, up to and
        including the next buffered call (which stays open, and is checked in turn)."""
        while self._open == "tool_use" and self._complete():
            self._close(out)
            while self._pending and self._open != "tool_use":
                self._next_pending(out)

    def _next_pending(self, out: list[bytes]) -> None:
        """Open the first buffered block and write its content; it stays open (later deltas of a call
        keep landing in its block)."""
        if not self._pending:
            return
        block = self._pending.pop(0)
        kind = block[0]
        if kind == "tool":
            del self._pending_tools[block[4]]
            self._open_tool(block[4], block[1], block[2], block[3], out)
        elif kind == "text":
            i = self._open_block("text", _EMPTY_TEXT, out)
            out.append(_DELTA % (i, b"text_delta", b"text", orjson.dumps("".join(block[1]))))
        elif kind == "thinking":
            i = self._open_block("thinking", _EMPTY_THINKING, out)
            if block[1]:
                out.append(_DELTA % (i, b"thinking_delta", b"thinking", orjson.dumps("".join(block[1]))))
            if block[2]:
                out.append(_DELTA % (i, b"signature_delta", b"signature", orjson.dumps("".join(block[2]))))
                self._sealed = True
        else:
            self._redacted(block[1], out)

    def _redacted(self, data: str, out: list[bytes]) -> None:
        self._open_block("redacted_thinking", orjson.dumps({"type": "redacted_thinking", "data": data}), out)
        self._close(out)

    def _flush(self, out: list[bytes]) -> None:
        """Close the open block and write every buffered block, in order (complete or not)."""
        while self._pending:
            self._close(out)
            self._next_pending(out)
        self._close(out)

    def end(self) -> list[bytes]:
        """Close a completed stream: open/buffered blocks, `message_delta` (usage), `message_stop`."""
        out: list[bytes] = []
        if not self._started:
            self._message_start(out)
        self._flush(out)
        fin = self._finish
        reason = stop_reason(fin.stop_reason if fin else None, self._tools_seen)
        if reason == "tool_use" and not self._tools_seen:
            reason = "end_turn"
        u = usage_dict(self._usage or self._start_usage or Usage())
        usage = {
            "output_tokens": u["output_tokens"],
            "input_tokens": u["input_tokens"],
            "cache_creation_input_tokens": u["cache_creation_input_tokens"],
            "cache_read_input_tokens": u["cache_read_input_tokens"],
        }
        delta = {"stop_reason": reason, "stop_sequence": fin.stop_sequence if fin else None}
        out.append(
            _ev(b"message_delta", orjson.dumps({"type": "message_delta", "delta": delta, "usage": usage}))
        )
        out.append(_MESSAGE_STOP)
        return out

    def error(self, err: GatewayError) -> list[bytes]:
        """An in-stream `error` event; the stream must end after it."""
        e = {"type": "error", "error": {"type": error_type(err.status), "message": err.message}}
        return [_ev(b"error", orjson.dumps(e))]

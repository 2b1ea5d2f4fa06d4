"""Canonical events -> an Anthropic Messages client stream (`event: X\ndata: {...}\n\n` frames).

Encoder rules (what the Anthropic SDKs and Claude Code rely on): exactly one `message_start` (with
the real input counts when known) then a `ping`; blocks opened, filled and closed one at a time with
contiguous indexes; each delta matches its block; a text -> tool transition closes the text block,
opens the tool block AND emits the arguments that came with it (a proxy that dropped those
arguments left tool calls with empty input).

Tool calls stream as they arrive: a tool call's block is closed as soon as the next block (another
call, text or reasoning) starts, provided the arguments received so far are complete JSON. Only
while they are incomplete is what follows buffered (per block, in order of first appearance) and
written once they complete or the stream finishes: OpenAI-format providers interleave the fragments
of parallel calls by `index`, so an incomplete call may still receive fragments, and its block must
stay open for them (Messages blocks cannot be reopened). An Anthropic upstream never interleaves
(each tool block's input is complete at its content_block_stop), so everything from it streams live.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from keeprouter.clients.anthropic_messages.response import CARRIED_RAW, stop_reason, usage_dict
from keeprouter.clients.base import Reply, StreamTotals
from keeprouter.clients.sealed import seal
from keeprouter.errors import GatewayError
from keeprouter.formats.canonical import (
    Finish,
    RedactedThinking,
    SignatureDelta,
    Start,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from keeprouter.formats.wire.anthropic import error_type


def _ev(name: bytes, payload: bytes) -> bytes:
    return b"event: " + name + b"\ndata: " + payload + b"\n\n"


_PING = _ev(b"ping", b'{"type":"ping"}')
_MESSAGE_STOP = _ev(b"message_stop", b'{"type":"message_stop"}')
_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n'
_START = b'event: content_block_start\ndata: {"type":"content_block_start","index":%d,"content_block":%b}\n\n'
_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"%b","%b":%b}}\n\n'
)
_TEXT_DELTA = (  # _DELTA of a text delta up to its text: a text block's constant part
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":'
)
_EMPTY_TEXT = b'{"type":"text","text":""}'
_EMPTY_THINKING = b'{"type":"thinking","thinking":"","signature":""}'


class _HeldText:
    """Text that arrived while a tool call's block was open and incomplete."""

    __slots__ = ("pieces",)

    def __init__(self, first: str) -> None:
        self.pieces = [first]


class _HeldThinking:
    """Thinking (and its signature, which seals the block) held the same way."""

    __slots__ = ("pieces", "signature")

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces
        self.signature: list[str] = []


class _HeldRedacted:
    __slots__ = ("data",)

    def __init__(self, data: str) -> None:
        self.data = data


class _HeldCall:
    """A tool call that started while another call's block was open; `args` keeps receiving its
    fragments until its own block opens."""

    __slots__ = ("args", "id", "index", "name")

    def __init__(self, index: int, id: str, name: str) -> None:
        self.index = index
        self.id = id
        self.name = name
        self.args: list[str] = []


_Held = _HeldText | _HeldThinking | _HeldRedacted | _HeldCall


class AnthropicStreamEncoder:
    """Canonical events -> `event: X\\ndata: {...}\\n\\n` frames of a Messages stream."""

    __slots__ = (
        "_estimate",
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
        "_text_head",
        "_tools_seen",
        "_usage",
    )

    def __init__(self, *, id: str, model: str, prompt_estimate: int | None = None) -> None:
        """`prompt_estimate`: the input count message_start shows when the upstream's Start has none."""
        self._id = id
        self._estimate = prompt_estimate
        self._model = model
        self._started = False
        self._index = -1  # index of the last opened block
        self._open: str | None = None  # "text" | "thinking" | "tool_use"
        self._text_head = b""  # a text delta's bytes up to its text, for the open block
        self._sealed = False  # the open thinking block got its signature: new thinking opens a new block
        self._live_tool: int | None = None
        self._live_args: list[str] = []  # the open call's argument fragments so far
        self._pending: list[_Held] = []  # blocks held while the open call is incomplete, in order
        self._pending_tools: dict[int, _HeldCall] = {}
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
        if kind == "text":
            self._text_head = _TEXT_DELTA % self._index
        return self._index

    def _delta(self, kind: str, key: bytes, dtype: bytes, value: str, out: list[bytes]) -> None:
        if self._open != kind or (kind == "thinking" and self._sealed):
            self._open_block(kind, _EMPTY_TEXT if kind == "text" else _EMPTY_THINKING, out)
        out.append(_DELTA % (self._index, dtype, key, orjson.dumps(value)))

    def _hold_text(self, value: str) -> None:
        last = self._pending[-1] if self._pending else None
        if type(last) is _HeldText:
            last.pieces.append(value)
        else:
            self._pending.append(_HeldText(value))

    def _hold_thinking(self, value: str) -> None:
        last = self._pending[-1] if self._pending else None
        if type(last) is _HeldThinking and not last.signature:
            last.pieces.append(value)
        else:
            self._pending.append(_HeldThinking([value]))

    def feed(self, ev: StreamEvent) -> list[bytes]:
        if type(ev) is TextDelta and self._open == "text":  # the common event: more of the open text block
            return [self._text_head + orjson.dumps(ev.text) + b"}}\n\n"] if ev.text else []
        out: list[bytes] = []
        if isinstance(ev, Start):
            if not self._started:
                self._start_usage = ev.usage
                if ev.usage is None and self._estimate is not None:
                    self._start_usage = Usage(input_tokens=self._estimate)
                self._message_start(out)
            return out
        if isinstance(ev, UsageUpdate):
            self._usage = ev.usage
            return out
        if not self._started:
            self._message_start(out)
        if isinstance(ev, SignatureDelta) and ev.origin not in CARRIED_RAW:
            # another provider's signed state goes out sealed with its origin (`request._unsealed`)
            ev = SignatureDelta(signature=seal(ThinkingPart(signature=ev.signature, origin=ev.origin)) or "")
        if isinstance(ev, ToolCallDelta):
            if ev.arguments:
                if ev.index == self._live_tool:
                    out.append(_DELTA % (self._index, b"input_json_delta", b"partial_json", orjson.dumps(ev.arguments)))
                    self._live_args.append(ev.arguments)
                    if self._pending and ev.arguments.rstrip().endswith(("}", "]")):
                        self._advance(out)
                elif (pending := self._pending_tools.get(ev.index)) is not None:
                    pending.args.append(ev.arguments)
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
                    self._hold_text(ev.text)
                else:
                    self._delta("text", b"text", b"text_delta", ev.text, out)
        elif isinstance(ev, ToolCallStart):
            if ev.signature and ev.origin not in CARRIED_RAW:
                # a call's own signed state (Gemini's): sealed, on a thinking block of its own before the call
                sealed = seal(ThinkingPart(signature=ev.signature, origin=ev.origin)) or ""
                self._signature(sealed, holding, out, own_block=True)
            self._tools_seen = True
            if holding:
                block = _HeldCall(ev.index, ev.id, ev.name)
                self._pending.append(block)
                self._pending_tools[ev.index] = block
            else:
                self._open_tool(ev.index, ev.id, ev.name, [], out)
        elif isinstance(ev, ThinkingDelta):
            if ev.text:
                if holding:
                    self._hold_thinking(ev.text)
                else:
                    self._delta("thinking", b"thinking", b"thinking_delta", ev.text, out)
        elif isinstance(ev, SignatureDelta):
            self._signature(ev.signature, holding, out)
        elif isinstance(ev, RedactedThinking):
            if holding:
                self._pending.append(_HeldRedacted(ev.data))
            else:
                self._redacted(ev.data, out)
        return out

    def _signature(self, sig: str, holding: bool, out: list[bytes], own_block: bool = False) -> None:
        """A signature for the thinking block before it, or (`own_block`) for a new empty one."""
        if holding:
            last = self._pending[-1] if self._pending else None
            if type(last) is not _HeldThinking or last.signature or own_block:
                last = _HeldThinking([])
                self._pending.append(last)
            last.signature.append(sig)
        else:
            if self._open != "thinking" or self._sealed or own_block:
                self._open_block("thinking", _EMPTY_THINKING, out)
            out.append(_DELTA % (self._index, b"signature_delta", b"signature", orjson.dumps(sig)))
            self._sealed = True

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
        if type(block) is _HeldCall:
            del self._pending_tools[block.index]
            self._open_tool(block.index, block.id, block.name, block.args, out)
        elif type(block) is _HeldText:
            i = self._open_block("text", _EMPTY_TEXT, out)
            out.append(_DELTA % (i, b"text_delta", b"text", orjson.dumps("".join(block.pieces))))
        elif type(block) is _HeldThinking:
            i = self._open_block("thinking", _EMPTY_THINKING, out)
            if block.pieces:
                out.append(_DELTA % (i, b"thinking_delta", b"thinking", orjson.dumps("".join(block.pieces))))
            if block.signature:
                out.append(_DELTA % (i, b"signature_delta", b"signature", orjson.dumps("".join(block.signature))))
                self._sealed = True
        else:
            assert type(block) is _HeldRedacted
            self._redacted(block.data, out)

    def _redacted(self, data: str, out: list[bytes]) -> None:
        self._open_block("redacted_thinking", orjson.dumps({"type": "redacted_thinking", "data": data}), out)
        self._close(out)

    def _flush(self, out: list[bytes]) -> None:
        """Close the open block and write every buffered block, in order (complete or not)."""
        while self._pending:
            self._close(out)
            self._next_pending(out)
        self._close(out)

    def end(self, cost: Decimal | None = None) -> list[bytes]:
        """Close a completed stream: open/buffered blocks, `message_delta` (usage, with `cost` when
        known), `message_stop`."""
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
        if cost is not None:
            usage["cost"] = float(cost)
        delta = {"stop_reason": reason, "stop_sequence": fin.stop_sequence if fin else None}
        out.append(_ev(b"message_delta", orjson.dumps({"type": "message_delta", "delta": delta, "usage": usage})))
        out.append(_MESSAGE_STOP)
        return out

    def error(self, err: GatewayError) -> list[bytes]:
        """An in-stream `error` event; the stream must end after it."""
        e = {"type": "error", "error": {"type": error_type(err.status), "message": err.message}}
        return [_ev(b"error", orjson.dumps(e))]


def open_stream(reply: Reply) -> AnthropicStreamEncoder:
    """The encoder for `reply`: message_start carries our prompt estimate when the upstream gives
    no input count there (OpenAI-format upstreams report usage only at the end; Claude Code reads
    it at the start)."""
    estimate = reply.prompt_estimate if reply.prompt_estimate is not None else 0
    return AnthropicStreamEncoder(id=reply.id, model=reply.model, prompt_estimate=estimate)


def end_stream(enc: AnthropicStreamEncoder, totals: StreamTotals) -> list[bytes]:
    return enc.end(totals.cost())

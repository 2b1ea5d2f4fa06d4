"""Anthropic Messages upstream streams: each SSE event (its `event:` name and parsed `data`) ->
canonical events. A `feed()` state machine; it never sees bytes. Thinking signatures and redacted
thinking are stamped with their origin (`wire.anthropic.ORIGIN`): they are Anthropic's signed state.
"""

from __future__ import annotations

from typing import Any

import orjson

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
from keeprouter.formats.wire.anthropic import ERROR_STATUS, ORIGIN
from keeprouter.providers.anthropic.response import STOP_FROM_ANTHROPIC, write_1h


def _int(d: dict[str, Any], key: str, default: int) -> int:
    v = d.get(key)
    return v if isinstance(v, int) else default


class AnthropicStreamDecoder:
    """Feed each upstream SSE event (its `event:` name and parsed `data`). Calls of `json_tool` (the
    structured-output tool, see `request.json_tool`) stream as the answer's text."""

    __slots__ = ("_input", "_json_block", "_json_tool", "_no_args", "_tools")

    def __init__(self, json_tool: str | None = None) -> None:
        self._json_tool = json_tool
        self._json_block: Any = None  # block index of the structured-output call
        self._tools: dict[Any, int] = {}  # block index -> canonical tool index
        self._no_args: set[Any] = set()  # tool block indexes that have received no input yet
        # from message_start: input_tokens, cache_read, cache_creation and its 1-hour share
        self._input = (0, 0, 0, 0)

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
                return [SignatureDelta(signature=sig, origin=ORIGIN)] if sig and isinstance(sig, str) else []
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
            str(err.get("message") or "upstream stream error"), status=ERROR_STATUS.get(err.get("type"), 502)
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
            out: list[StreamEvent] = [ToolCallStart(index=ti, id=str(b.get("id") or ""), name=str(b.get("name") or ""))]
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
                out.append(SignatureDelta(signature=sig, origin=ORIGIN))
            return out
        if bt == "redacted_thinking":
            return [RedactedThinking(data=str(b.get("data") or ""), origin=ORIGIN)]
        return []

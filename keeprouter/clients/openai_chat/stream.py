"""OpenAI Chat Completions streams: upstream chunks -> canonical events, canonical events -> client SSE.

The decoder absorbs the deviations seen in the wild (wire-formats.md §3.4, pitfalls §2.1): missing
tool `index` (the fragment's position stands in), the id repeated on every fragment (same id = same
call), every parallel call sent with index 0 but its own id (a new id = a new call), `tool_calls: []`,
usage on a chunk that still has choices, usage after the finish, a second finish_reason, and "stop"
after tool calls. Calls with no id get a fresh unique one (`call_<hex>`), so replayed ids never clash.

The encoder writes frames with precomputed byte prefixes (the per-chunk constant part is serialised
once). It follows §3.4's invariants: same id/created/model/object (and `provider`) on every chunk,
role on the first, `"usage": null` on every chunk when usage was requested, exactly one finish
chunk, then one usage chunk with `"choices": []`, then `[DONE]`. Signed reasoning
(SignatureDelta/RedactedThinking) has no Chat Completions form and is dropped.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

import orjson

from keeprouter.errors import GatewayError, UpstreamError
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
from keeprouter.formats.openai import FINISH_TO_STOP, STOP_TO_FINISH, parse_usage, usage_dict

DONE = b"data: [DONE]\n\n"
_ROLE_DELTA = b'{"role":"assistant","content":""}'


def upstream_error(err: Any) -> UpstreamError:
    """An in-band `error` member (OpenRouter's mid-stream failure chunk) -> UpstreamError."""
    if isinstance(err, dict):
        code = err.get("code")
        status = code if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600 else None
        return UpstreamError(str(err.get("message") or "upstream stream error"), status=status)
    return UpstreamError(str(err))


class OpenAIStreamDecoder:
    """Feed each parsed upstream chunk (a dict; the caller handles `[DONE]`)."""

    __slots__ = ("_by_id", "_by_index", "_finished", "_names", "_started")

    def __init__(self) -> None:
        self._started = False
        self._finished = False
        self._names: list[str] = []  # per canonical tool index
        self._by_id: dict[str, int] = {}
        self._by_index: dict[int, int] = {}  # upstream index (or fragment position) -> canonical index

    def feed(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        if err := chunk.get("error"):
            raise upstream_error(err)
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            out.append(Start(id=str(chunk.get("id") or ""), model=str(chunk.get("model") or "")))
        choices = chunk.get("choices")
        if choices and isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta")
                if isinstance(delta, dict):
                    self._delta(delta, out)
                fr = choice.get("finish_reason")
                if fr and not self._finished:
                    self._finished = True
                    stop = FINISH_TO_STOP.get(fr, "end_turn")
                    if stop == "end_turn" and self._names:
                        stop = "tool_use"
                    elif stop == "tool_use" and not self._names:
                        stop = "end_turn"
                    out.append(Finish(stop_reason=stop))
        usage = chunk.get("usage")
        if usage and isinstance(usage, dict):
            out.append(UsageUpdate(usage=parse_usage(usage)))
        return out

    def _delta(self, delta: dict[str, Any], out: list[StreamEvent]) -> None:
        r = delta.get("reasoning") or delta.get("reasoning_content")
        if r and isinstance(r, str):
            out.append(ThinkingDelta(text=r))
        c = delta.get("content")
        if c:
            if isinstance(c, str):
                out.append(TextDelta(text=c))
            elif isinstance(c, list):  # Mistral-style content parts
                for p in c:
                    if isinstance(p, dict) and p.get("type") == "text" and p.get("text"):
                        out.append(TextDelta(text=str(p["text"])))
        calls = delta.get("tool_calls")
        if calls and isinstance(calls, list):
            for pos, tc in enumerate(calls):
                if isinstance(tc, dict):
                    self._tool(tc, pos, out)

    def _tool(self, tc: dict[str, Any], pos: int, out: list[StreamEvent]) -> None:
        idx = tc.get("index")
        if not isinstance(idx, int):
            idx = pos
        tid = tc.get("id")
        fn = tc.get("function")
        if not isinstance(fn, dict):
            fn = {}
        name = fn.get("name")
        if not isinstance(name, str):
            name = ""
        ci: int | None
        if tid and isinstance(tid, str):
            ci = self._by_id.get(tid)
        else:
            tid = None
            ci = self._by_index.get(idx)
            if ci is not None and name and self._names[ci] and name != self._names[ci]:
                ci = None  # id-less provider reusing the index for its next call
        if ci is None:
            ci = len(self._names)
            self._names.append(name)
            if tid is None:
                tid = "call_" + secrets.token_hex(12)
            self._by_id[tid] = ci
            out.append(ToolCallStart(index=ci, id=tid, name=name))
        self._by_index[idx] = ci
        args = fn.get("arguments")
        if args:
            out.append(
                ToolCallDelta(
                    index=ci, arguments=args if isinstance(args, str) else orjson.dumps(args).decode()
                )
            )


class OpenAIStreamEncoder:
    """Canonical events -> `data: {...}\\n\\n` frames of a `chat.completion.chunk` stream."""

    __slots__ = (
        "_finished",
        "_head",
        "_include_usage",
        "_prefix",
        "_started",
        "_tail",
        "_tools",
        "_usage",
        "_usage_null",
    )

    def __init__(
        self, *, id: str, model: str, created: int, provider: str | None, include_usage: bool
    ) -> None:
        head: dict[str, Any] = {
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        if provider is not None:
            head["provider"] = provider
        self._head = b"data: " + orjson.dumps(head)[:-1]  # without the closing brace
        self._prefix = self._head + b',"choices":[{"index":0,"delta":'
        self._usage_null = b',"usage":null}\n\n' if include_usage else b"}\n\n"
        self._tail = b',"logprobs":null,"finish_reason":null}]' + self._usage_null
        self._include_usage = include_usage
        self._started = False
        self._finished = False
        self._tools: dict[int, int] = {}  # canonical tool index -> emitted index
        self._usage: Usage | None = None

    def _frame(self, delta: bytes) -> bytes:
        return self._prefix + delta + self._tail

    def feed(self, ev: StreamEvent) -> list[bytes]:
        out: list[bytes] = []
        if not self._started:
            self._started = True
            out.append(self._frame(_ROLE_DELTA))
        if isinstance(ev, TextDelta):
            if ev.text:
                out.append(self._frame(b'{"content":' + orjson.dumps(ev.text) + b"}"))
        elif isinstance(ev, ToolCallDelta):
            i = self._tools.get(ev.index)
            if i is not None and ev.arguments:
                out.append(
                    self._frame(
                        b'{"tool_calls":[{"index":%d,"function":{"arguments":%b}}]}'
                        % (i, orjson.dumps(ev.arguments))
                    )
                )
        elif isinstance(ev, ThinkingDelta):
            if ev.text:
                out.append(self._frame(b'{"reasoning":' + orjson.dumps(ev.text) + b"}"))
        elif isinstance(ev, ToolCallStart):
            if ev.index not in self._tools:
                i = self._tools[ev.index] = len(self._tools)
                out.append(
                    self._frame(
                        orjson.dumps(
                            {
                                "tool_calls": [
                                    {
                                        "index": i,
                                        "id": ev.id,
                                        "type": "function",
                                        "function": {"name": ev.name, "arguments": ""},
                                    }
                                ]
                            }
                        )
                    )
                )
        elif isinstance(ev, Finish):
            if not self._finished:
                out.append(self._finish(STOP_TO_FINISH.get(ev.stop_reason, "stop")))
        elif isinstance(ev, UsageUpdate):
            self._usage = ev.usage
        elif isinstance(ev, Start):
            if ev.usage is not None and self._usage is None:
                self._usage = ev.usage
        return out

    def _finish(self, reason: str) -> bytes:
        self._finished = True
        if self._tools and reason == "stop":
            reason = "tool_calls"
        return (
            self._prefix
            + b'{},"logprobs":null,"finish_reason":"'
            + reason.encode()
            + b'"}]'
            + self._usage_null
        )

    def end(self, cost: Decimal | None = None) -> list[bytes]:
        """Close a completed stream: the finish chunk if none came, the usage chunk, `[DONE]`."""
        out: list[bytes] = []
        if not self._started:
            self._started = True
            out.append(self._frame(_ROLE_DELTA))
        if not self._finished:
            out.append(self._finish("stop"))
        if self._include_usage:
            usage = usage_dict(self._usage or Usage(), cost)
            out.append(self._head + b',"choices":[],"usage":' + orjson.dumps(usage) + b"}\n\n")
        out.append(DONE)
        return out

    def error(self, err: GatewayError) -> list[bytes]:
        """OpenRouter's mid-stream failure chunk; the stream must end after it (no `[DONE]`)."""
        meta: dict[str, Any] = {"error_type": err.kind}
        if err.metadata:
            meta.update(err.metadata)
        e = {"code": err.status, "message": err.message, "metadata": meta}
        self._finished = True
        return [
            self._head
            + b',"error":'
            + orjson.dumps(e)
            + b',"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}\n\n'
        ]

"""OpenAI Chat Completions upstream streams: each parsed chunk -> canonical events (a `feed()` state
machine; the adapter handles framing and `[DONE]`).

The decoder absorbs the deviations seen in the wild: missing tool `index` (the fragment's position
stands in), the id repeated on every fragment (same id = same call), every parallel call sent with
index 0 but its own id (a new id = a new call), `tool_calls: []`, usage on a chunk that still has
choices, usage after the finish, a second finish_reason, and "stop" after tool calls. Calls with no
id get a fresh unique one (`call_<hex>`), so replayed ids never clash.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import (
    Finish,
    LogprobsDelta,
    Start,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
    UsageUpdate,
)
from keeprouter.providers.framing import load_json
from keeprouter.providers.openai.response import FINISH_TO_STOP, parse_logprobs, parse_usage


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

    @property
    def finished(self) -> bool:
        """Whether a finish_reason came (its Finish was emitted)."""
        return self._finished

    def feed_bytes(self, data: bytes) -> list[StreamEvent]:
        """`feed` of a chunk's JSON payload; ValueError when it is not a JSON object."""
        chunk = load_json(data)
        if not isinstance(chunk, dict):
            raise ValueError("not a JSON object")
        return self.feed(chunk)

    def feed(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        if err := chunk.get("error"):
            raise upstream_error(err)
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            fp = chunk.get("system_fingerprint")
            out.append(
                Start(
                    id=str(chunk.get("id") or ""),
                    model=str(chunk.get("model") or ""),
                    system_fingerprint=fp if isinstance(fp, str) else None,
                )
            )
        choices = chunk.get("choices")
        if choices and isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                if (lp := parse_logprobs(choice.get("logprobs"))) is not None and lp:
                    out.append(LogprobsDelta(content=lp))  # of the delta that follows
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
                ToolCallDelta(index=ci, arguments=args if isinstance(args, str) else orjson.dumps(args).decode())
            )

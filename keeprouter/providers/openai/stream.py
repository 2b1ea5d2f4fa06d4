"""OpenAI Chat Completions upstream streams: each parsed chunk -> canonical events (a `feed()` state
machine; the adapter handles framing and `[DONE]`).

The decoder absorbs the deviations seen in the wild: missing tool `index` (the fragment's position
stands in), the id repeated on every fragment (same id = same call), every parallel call sent with
index 0 but its own id (a new id = a new call), `tool_calls: []`, usage on a chunk that still has
choices, usage after the finish, a second finish_reason, and "stop" after tool calls. Calls with no
id get a fresh unique one (`call_<hex>`), so replayed ids never clash.

Most chunks of a long stream differ from each other only in their text. `feed_bytes` learns that
shape from the first plain text chunk (the bytes before and after its content string) and reads a
later chunk with the same bytes around one JSON string by parsing just that string.
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

_PROBE = "\u2603probe"  # any text: where it lands in a chunk built from a learned shape tells the shape apart
_LEARN_TRIES = 4  # text chunks tried for a shape (one whose escaping differs from orjson's is skipped)


def upstream_error(err: Any) -> UpstreamError:
    """An in-band `error` member (OpenRouter's mid-stream failure chunk) -> UpstreamError."""
    if isinstance(err, dict):
        code = err.get("code")
        status = code if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600 else None
        return UpstreamError(str(err.get("message") or "upstream stream error"), status=status)
    return UpstreamError(str(err))


class OpenAIStreamDecoder:
    """Feed each parsed upstream chunk (a dict; the caller handles `[DONE]`)."""

    __slots__ = ("_by_id", "_by_index", "_finished", "_head", "_names", "_started", "_tail", "_tries")

    def __init__(self) -> None:
        self._started = False
        self._finished = False
        self._names: list[str] = []  # per canonical tool index
        self._by_id: dict[str, int] = {}
        self._by_index: dict[int, int] = {}  # upstream index (or fragment position) -> canonical index
        self._head = b""  # a plain text chunk's bytes before its content string, once learned
        self._tail = b""  # ... and after it
        self._tries = _LEARN_TRIES

    @property
    def finished(self) -> bool:
        """Whether a finish_reason came (its Finish was emitted)."""
        return self._finished

    def feed_bytes(self, data: bytes) -> list[StreamEvent]:
        """`feed` of a chunk's JSON payload; ValueError when it is not a JSON object."""
        head, tail = self._head, self._tail
        if head and data.startswith(head) and data.endswith(tail):
            try:
                text = orjson.loads(data[len(head) : len(data) - len(tail)])
            except orjson.JSONDecodeError:  # not one string there (or invalid UTF-8): the full parse decides
                text = None
            if type(text) is str:  # the learned chunk with this text: what `feed` gives for it
                return [TextDelta(text=text)] if text else []
        chunk = load_json(data)
        if not isinstance(chunk, dict):
            raise ValueError("not a JSON object")
        out = self.feed(chunk)
        if not head and self._tries and len(out) == 1 and type(out[0]) is TextDelta:
            self._learn(data, chunk, out[0].text)
        return out

    def _learn(self, data: bytes, chunk: dict[str, Any], text: str) -> None:
        """Keep `data`'s bytes around its text as the shape of a plain text chunk, if it is one: a
        chunk whose other members give no event and change no state, whatever its text."""
        self._tries -= 1
        choices = chunk.get("choices")
        if chunk.get("usage") or not isinstance(choices, list) or len(choices) != 1:
            return
        choice = choices[0]
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            return
        if choice.get("finish_reason") or choice.get("logprobs"):
            return
        delta = choice.get("delta")
        if not isinstance(delta, dict) or delta.get("content") != text or delta.get("tool_calls"):
            return
        if delta.get("reasoning") or delta.get("reasoning_content"):
            return
        value = orjson.dumps(text)
        at = data.rfind(value)
        if at < 0:  # the upstream escapes differently: a later chunk may still serve
            return
        head, tail = data[:at], data[at + len(value) :]
        try:  # the text's place, proved: the same bytes around another text parse to this chunk with it
            probe = orjson.loads(head + orjson.dumps(_PROBE) + tail)
            placed = probe["choices"][0]["delta"]["content"] == _PROBE
        except (orjson.JSONDecodeError, LookupError, TypeError):
            return
        delta["content"] = _PROBE
        if placed and probe == chunk:
            self._head, self._tail = head, tail
        delta["content"] = text

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

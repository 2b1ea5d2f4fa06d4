"""Canonical events -> an OpenAI Chat Completions client stream (`data: {...}\n\n` chunks).

The encoder writes frames with precomputed byte prefixes (the per-chunk constant part is serialised
once). Its invariants (what the OpenAI SDKs and OpenRouter clients rely on): same
id/created/model/object (and `provider`) on every chunk, role on the first, `"usage": null` on every
chunk when usage was requested, exactly one finish chunk, then one usage chunk with `"choices": []`,
then `[DONE]`. Reasoning goes out as OpenRouter streams it: `delta.reasoning` (text) and
`delta.reasoning_details` (the same text, then the block's signature, or redacted thinking as
`reasoning.encrypted`), each entry with the `index` of its thinking block; `exclude` leaves it out. The upstream's
`system_fingerprint` (on its Start) is on every chunk; token logprobs (LogprobsDelta) ride on the
content chunk that follows them, as OpenAI sends them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from keeprouter.clients.base import Reply, StreamTotals
from keeprouter.clients.openai_chat.response import STOP_TO_FINISH, excluded, logprobs_dict, usage_dict
from keeprouter.errors import GatewayError
from keeprouter.formats.canonical import (
    Finish,
    LogprobsDelta,
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
from keeprouter.formats.wire.openai import reasoning_format, with_signature

DONE = b"data: [DONE]\n\n"
_ROLE_DELTA = b'{"role":"assistant","content":""}'


class OpenAIStreamEncoder:
    """Canonical events -> `data: {...}\\n\\n` frames of a `chat.completion.chunk` stream."""

    __slots__ = (
        "_exclude",
        "_finished",
        "_head",
        "_include_usage",
        "_logprobs",
        "_meta",
        "_prefix",
        "_rd_index",
        "_rd_open",
        "_started",
        "_tail",
        "_text_head",
        "_text_tail",
        "_tools",
        "_usage",
        "_usage_null",
    )

    def __init__(
        self,
        *,
        id: str,
        model: str,
        created: int,
        provider: str | None,
        include_usage: bool,
        exclude_reasoning: bool = False,
    ) -> None:
        head: dict[str, Any] = {
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        if provider is not None:
            head["provider"] = provider
        self._meta = head
        self._set_head(head)
        self._usage_null = b',"usage":null}\n\n' if include_usage else b"}\n\n"
        self._tail = b',"logprobs":null,"finish_reason":null}]' + self._usage_null
        self._text_tail = b"}" + self._tail
        self._include_usage = include_usage
        self._started = False
        self._finished = False
        self._tools: dict[int, int] = {}  # canonical tool index -> emitted index
        self._usage: Usage | None = None
        self._logprobs: bytes | None = None  # of the next content chunk
        self._exclude = exclude_reasoning
        self._rd_index = 0  # the thinking block `reasoning_details` entries belong to
        self._rd_open = False  # whether that block has had text and no signature yet

    def _set_head(self, head: dict[str, Any]) -> None:
        self._head = b"data: " + orjson.dumps(head)[:-1]  # without the closing brace
        self._prefix = self._head + b',"choices":[{"index":0,"delta":'
        self._text_head = self._prefix + b'{"content":'

    def _detail(self, d: dict[str, Any], *, closes: bool, text: str | None = None) -> bytes:
        """A chunk with one `reasoning_details` entry (and the `reasoning` text it carries)."""
        d["index"] = self._rd_index
        if closes:
            self._rd_index += 1
            self._rd_open = False
        else:
            self._rd_open = True
        head = b'{"reasoning":' + orjson.dumps(text) + b"," if text is not None else b"{"
        return self._frame(head + b'"reasoning_details":' + orjson.dumps([d]) + b"}")

    def _end_block(self) -> None:
        if self._rd_open:  # thinking without a signature ended: the next starts a new entry
            self._rd_index += 1
            self._rd_open = False

    def _frame(self, delta: bytes) -> bytes:
        return self._prefix + delta + self._tail

    def _take_logprobs(self) -> bytes:
        lp, self._logprobs = self._logprobs, None
        return b"null" if lp is None else lp

    def feed(self, ev: StreamEvent) -> list[bytes]:
        if type(ev) is TextDelta and self._started and not self._rd_open and self._logprobs is None:
            # the common event, as the general path below writes it
            return [self._text_head + orjson.dumps(ev.text) + self._text_tail] if ev.text else []
        out: list[bytes] = []
        if not self._started:
            self._started = True
            if isinstance(ev, Start) and ev.system_fingerprint is not None:
                self._set_head({**self._meta, "system_fingerprint": ev.system_fingerprint})
            out.append(self._frame(_ROLE_DELTA))
        if self._rd_open and isinstance(ev, TextDelta | ToolCallStart):
            self._end_block()
        if isinstance(ev, TextDelta):
            if ev.text:
                delta = b'{"content":' + orjson.dumps(ev.text) + b"}"
                if self._logprobs is None:
                    out.append(self._frame(delta))
                else:
                    lp = self._take_logprobs()
                    out.append(
                        self._prefix + delta + b',"logprobs":' + lp + b',"finish_reason":null}]' + self._usage_null
                    )
        elif isinstance(ev, LogprobsDelta):
            self._logprobs = orjson.dumps(logprobs_dict(ev.content))
        elif isinstance(ev, ToolCallDelta):
            i = self._tools.get(ev.index)
            if i is not None and ev.arguments:
                out.append(
                    self._frame(
                        b'{"tool_calls":[{"index":%d,"function":{"arguments":%b}}]}' % (i, orjson.dumps(ev.arguments))
                    )
                )
        elif isinstance(ev, ThinkingDelta):
            if ev.text and not self._exclude:
                out.append(self._detail({"type": "reasoning.text", "text": ev.text}, closes=False, text=ev.text))
        elif isinstance(ev, SignatureDelta):
            if not self._exclude:
                d = {"type": "reasoning.text", "text": "", "signature": ev.signature,
                     "format": reasoning_format(ev.origin)}  # fmt: skip
                out.append(self._detail(d, closes=True))
        elif isinstance(ev, RedactedThinking):
            if not self._exclude:
                self._end_block()
                d = {"type": "reasoning.encrypted", "data": ev.data, "format": reasoning_format(ev.origin)}
                out.append(self._detail(d, closes=True))
        elif isinstance(ev, ToolCallStart):
            if ev.index not in self._tools:
                i = self._tools[ev.index] = len(self._tools)
                call = {"index": i, "id": ev.id, "type": "function", "function": {"name": ev.name, "arguments": ""}}
                # the call's signature rides on its first delta, as Google's OpenAI-compatible API sends it
                call = with_signature(call, ev.signature, ev.origin)
                out.append(self._frame(orjson.dumps({"tool_calls": [call]})))
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
            + b'{},"logprobs":'
            + self._take_logprobs()
            + b',"finish_reason":"'
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


def open_stream(reply: Reply) -> OpenAIStreamEncoder:
    """The encoder for `reply`; the usage chunk only when the caller asked for it."""
    include_usage = reply.request is not None and reply.request.include_usage
    return OpenAIStreamEncoder(
        id=reply.id,
        model=reply.model,
        created=reply.created,
        provider=reply.provider,
        include_usage=include_usage,
        exclude_reasoning=excluded(reply),
    )


def end_stream(enc: OpenAIStreamEncoder, totals: StreamTotals) -> list[bytes]:
    return enc.end(totals.cost())

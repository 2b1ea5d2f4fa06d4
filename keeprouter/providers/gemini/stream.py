"""`streamGenerateContent?alt=sse` -> canonical stream events (pure state machine).

Each SSE `data:` payload is a whole `GenerateContentResponse` carrying the next parts: text and thought
text in pieces, function calls whole (so a call is one ToolCallStart plus one ToolCallDelta with all
its arguments). A `thoughtSignature` may come on any part, also on an empty-text part of its own (often
the last chunk): on a call it rides on the ToolCallStart; elsewhere it is a SignatureDelta. The
`usageMetadata` of each chunk is cumulative; the chunk with `finishReason` ends the answer.
"""

from __future__ import annotations

from typing import Any

from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import (
    Finish,
    SignatureDelta,
    Start,
    StopReason,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
    UsageUpdate,
)
from keeprouter.providers.gemini.response import (
    ORIGIN,
    arguments_of,
    call_id,
    candidate,
    error_of,
    finish_reason,
    parse_usage,
    parts_of,
    response_id,
    signature_of,
)


class GeminiStreamDecoder:
    """Feed each chunk's parsed JSON; get the canonical events it completes."""

    __slots__ = ("_calls", "_finished", "_id", "_model", "_started", "_usage")

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = ""
        self._started = False
        self._calls = 0
        self._usage: Any = None
        self._finished = False

    @property
    def finished(self) -> bool:
        return self._finished

    def feed(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        err = error_of(chunk)
        if err is not None:  # an error in the stream: no more events follow
            raise err
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            self._id = response_id(chunk)
            mv = chunk.get("modelVersion")
            out.append(Start(id=self._id, model=mv if isinstance(mv, str) and mv else self._model))
        cand = candidate(chunk)
        for part in parts_of(cand):
            out.extend(self._part(part))
        usage = chunk.get("usageMetadata")
        if isinstance(usage, dict) and usage != self._usage:
            self._usage = usage
            out.append(UsageUpdate(usage=parse_usage(usage)))
        stop: StopReason | None = finish_reason(cand.get("finishReason"), self._calls > 0)
        if stop is None and not cand and isinstance(fb := chunk.get("promptFeedback"), dict) and fb.get("blockReason"):
            stop = "content_filter"
        if stop is not None and not self._finished:
            self._finished = True
            out.append(Finish(stop_reason=stop))
        return out

    def _part(self, part: dict[str, Any]) -> list[StreamEvent]:
        sig = signature_of(part)
        fc = part.get("functionCall")
        if isinstance(fc, dict):
            i = self._calls
            self._calls += 1
            return [
                ToolCallStart(
                    index=i,
                    id=call_id(self._id, i, fc.get("id")),
                    name=str(fc.get("name") or ""),
                    signature=sig,
                    origin=ORIGIN if sig else None,
                ),
                ToolCallDelta(index=i, arguments=arguments_of(fc)),
            ]
        out: list[StreamEvent] = []
        text = part.get("text")
        if isinstance(text, str) and text:
            out.append(ThinkingDelta(text=text) if part.get("thought") is True else TextDelta(text=text))
        if sig:
            out.append(SignatureDelta(signature=sig, origin=ORIGIN))
        return out


def ended_early(provider: str) -> UpstreamError:
    return UpstreamError(f"provider {provider} ended the stream early")

"""ConverseStream events -> canonical stream events (pure).

The event stream decoder (`eventstream.py`) yields `(event type, JSON payload)`; `feed` maps one to
canonical events:

    messageStart        -> Start
    contentBlockStart   -> ToolCallStart (the toolUseId and name come only here, never in deltas)
    contentBlockDelta   -> TextDelta | ToolCallDelta (input fragments) | ThinkingDelta |
                           SignatureDelta | RedactedThinking
    contentBlockStop    -> nothing
    messageStop         -> Finish (stopReason)
    metadata            -> UsageUpdate (after messageStop: the stream's last event)
    *Exception, :error  -> raises UpstreamError with the status of that type

Tool calls are numbered 0, 1, 2… across the answer, whatever their contentBlockIndex. A call of the
structured-output tool becomes text (its input fragments are the answer's JSON).
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
    UsageUpdate,
)

from .eventstream import ERROR
from .request import ORIGIN
from .response import STOP, error_for, error_message, parse_usage, stop_sequence

EVENTS = frozenset(
    {"messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"}
)


class BedrockStreamDecoder:
    def __init__(self, *, id: str, model: str, provider: str, json_tool: str | None = None) -> None:
        self.id = id
        self.model = model
        self.provider = provider
        self.json_tool = json_tool
        self.started = False
        self.stopped = False  # messageStop seen
        self.done = False  # metadata seen after messageStop: nothing more will come
        self._tools: dict[int, int] = {}  # contentBlockIndex -> tool call index
        self._json_blocks: set[int] = set()  # blocks of the structured-output tool

    def feed(self, event_type: str, payload: bytes) -> list[StreamEvent]:
        if event_type not in EVENTS:
            if event_type == ERROR or event_type.endswith("Exception"):
                raise self._error(event_type, payload)
            return []  # an event type newer than this code: nothing we can map
        try:
            data = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            raise UpstreamError(f"provider {self.provider} sent a malformed stream event") from None
        if not isinstance(data, dict):
            raise UpstreamError(f"provider {self.provider} sent a malformed stream event")
        out: list[StreamEvent] = []
        if not self.started:
            self.started = True
            out.append(Start(id=self.id, model=self.model))
        if event_type == "contentBlockStart":
            out.extend(self._block_start(data))
        elif event_type == "contentBlockDelta":
            out.extend(self._delta(data))
        elif event_type == "messageStop":
            self.stopped = True
            sr = data.get("stopReason")
            stop = STOP.get(sr, "end_turn") if isinstance(sr, str) else "end_turn"
            if stop == "tool_use" and not self._tools:
                stop = "end_turn"  # the only call was the structured answer
            seq = stop_sequence(data.get("additionalModelResponseFields"))
            out.append(Finish(stop_reason=stop, stop_sequence=seq))
        elif event_type == "metadata":
            if self.stopped:
                self.done = True
            if isinstance(data.get("usage"), dict):
                out.append(UsageUpdate(usage=parse_usage(data["usage"])))
        return out

    def _error(self, event_type: str, payload: bytes) -> UpstreamError:
        message = error_message(payload)
        kind = event_type
        if event_type == ERROR:
            try:
                d = orjson.loads(payload)
                kind = str(d.get("code") or "internalServerException") if isinstance(d, dict) else kind
            except orjson.JSONDecodeError:
                kind = "internalServerException"
        return error_for(kind, message or kind, self.provider)

    @staticmethod
    def _index(data: dict[str, Any]) -> int:
        i = data.get("contentBlockIndex")
        return i if isinstance(i, int) else 0

    def _block_start(self, data: dict[str, Any]) -> list[StreamEvent]:
        start = data.get("start")
        use = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(use, dict):
            return []
        block = self._index(data)
        name = str(use.get("name") or "")
        if self.json_tool is not None and name == self.json_tool:
            self._json_blocks.add(block)
            return []
        index = self._tools[block] = len(self._tools)
        return [ToolCallStart(index=index, id=str(use.get("toolUseId") or ""), name=name)]

    def _delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        delta = data.get("delta")
        if not isinstance(delta, dict):
            return []
        block = self._index(data)
        if isinstance(delta.get("text"), str):
            return [TextDelta(text=delta["text"])] if delta["text"] else []
        use = delta.get("toolUse")
        if isinstance(use, dict):
            fragment = use.get("input")
            if not isinstance(fragment, str) or not fragment:
                return []
            if block in self._json_blocks:
                return [TextDelta(text=fragment)]
            if block not in self._tools:
                raise UpstreamError(f"provider {self.provider} sent tool input before its tool call")
            return [ToolCallDelta(index=self._tools[block], arguments=fragment)]
        rc = delta.get("reasoningContent")
        if isinstance(rc, dict):
            if isinstance(rc.get("text"), str) and rc["text"]:
                return [ThinkingDelta(text=rc["text"])]
            if isinstance(rc.get("signature"), str) and rc["signature"]:
                return [SignatureDelta(signature=rc["signature"], origin=ORIGIN)]
            if isinstance(rc.get("redactedContent"), str):
                return [RedactedThinking(data=rc["redactedContent"], origin=ORIGIN)]
        return []

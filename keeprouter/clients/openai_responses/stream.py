"""Canonical stream events -> an OpenAI Responses event stream (`event: X` + `data: {...}` frames).

Event order (OpenAI's): `response.created`, `response.in_progress`, then per output item
`response.output_item.added`, its part/summary-part `.added`, deltas, the `.done` events and
`response.output_item.done`; finally exactly one of `response.completed`, `response.incomplete`
(cut by max_output_tokens or a content filter) or `response.failed`. Every event carries the next
`sequence_number` (0, 1, 2...).

Items: thinking -> a `reasoning` item (summary deltas), text -> a `message` item with one
`output_text` part, each tool call -> a `function_call` item (a `custom_tool_call` for a custom
tool: its bare input is known only once the call's JSON is whole, so it comes as one delta at the
end). A text or reasoning item closes when anything else begins; tool-call items stay open side by
side until text, reasoning or the end comes (parallel calls may interleave their argument
fragments). Each event is written as it comes; only the items' own text is kept, because the
`.done` events and the final response repeat it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from keeprouter.clients.base import Reply, StreamTotals
from keeprouter.clients.openai_responses.response import (
    custom_tool_call_item,
    echo_of,
    error_object,
    function_call_item,
    incomplete_reason,
    item_id,
    message_item,
    output_text,
    reasoning_item,
    response_id,
    response_object,
    tool_names,
    usage_dict,
)
from keeprouter.clients.sealed import seal
from keeprouter.errors import GatewayError
from keeprouter.formats.canonical import (
    Finish,
    RedactedThinking,
    SignatureDelta,
    StopReason,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from keeprouter.formats.sse import sse_event

_NO_LOGPROBS: list[Any] = []


def _summary(text: str) -> dict[str, str]:
    return {"type": "summary_text", "text": text}


class _Item:
    __slots__ = ("call_id", "id", "index", "kind", "name", "ns", "origin", "pieces", "redacted", "signature",
                 "summary")  # fmt: skip

    def __init__(
        self, kind: str, id: str, index: int, call_id: str = "", name: str = "", ns: str | None = None
    ) -> None:
        self.kind = kind  # "message" | "reasoning" | "function_call" | "custom_tool_call"
        self.id = id
        self.index = index
        self.call_id = call_id
        self.name = name  # a tool call: the name the client declared (a namespace member's own name)
        self.ns = ns  # ... and its namespace
        self.pieces: list[str] = []
        self.summary = False  # reasoning: its summary part was opened (the first thinking text came)
        self.signature: list[str] = []
        self.redacted: str | None = None
        self.origin: str | None = None  # who issued the signed state (from its events); None: unsigned


class ResponsesStreamEncoder:
    """One response's stream. `feed` each canonical event; then `end(usage, cost)` for a stream that
    ran to its end, or `error(err)` for one that failed (either exactly once)."""

    __slots__ = ("_block", "_calls", "_created", "_echo", "_id", "_model", "_names", "_open_calls", "_output",
                 "_seq", "_started", "_stop", "_usage", "final")  # fmt: skip

    def __init__(self, *, id: str, model: str, created: int, echo: dict[str, Any]) -> None:
        self._id = id
        self._model = model
        self._created = created
        self._echo = echo
        self._names = tool_names(echo)
        self._seq = 0
        self._started = False
        self._output: list[dict[str, Any] | None] = []  # by output_index; None while the item is open
        self._block: _Item | None = None  # the open message or reasoning item
        self._calls: dict[int, _Item] = {}  # canonical tool index -> its item
        self._open_calls: list[_Item] = []
        self._stop: StopReason | None = None
        self._usage: Usage | None = None
        self.final: dict[str, Any] | None = None  # the response object of a stream that ran to its end

    # ---- frames ---------------------------------------------------------------------------
    def _ev(self, type: str, fields: dict[str, Any]) -> bytes:
        seq = self._seq
        self._seq += 1
        return sse_event(type, orjson.dumps({"type": type, "sequence_number": seq, **fields}))

    def _response(self, status: str, **kw: Any) -> dict[str, Any]:
        output = [i for i in self._output if i is not None]
        return response_object(
            id=self._id,
            model=self._model,
            created=self._created,
            echo=self._echo,
            status=status,
            output=output,
            **kw,
        )

    def _begin(self, out: list[bytes]) -> None:
        if not self._started:
            self._started = True
            head = {"response": self._response("in_progress", usage=None)}
            out.append(self._ev("response.created", head))
            out.append(self._ev("response.in_progress", head))

    # ---- items ----------------------------------------------------------------------------
    def _open(
        self, kind: str, prefix: str, out: list[bytes], call_id: str = "", name: str = "", ns: str | None = None
    ) -> _Item:
        index = len(self._output)
        item = _Item(kind, item_id(self._id, prefix, index), index, call_id, name, ns)
        self._output.append(None)
        where = {"item_id": item.id, "output_index": index}
        if kind == "message":
            added = message_item(item.id, "", "in_progress")
            out.append(self._ev("response.output_item.added", {"output_index": index, "item": added}))
            out.append(self._ev("response.content_part.added", {**where, "content_index": 0, "part": output_text("")}))
        elif kind == "reasoning":
            added = reasoning_item(item.id, None)
            out.append(self._ev("response.output_item.added", {"output_index": index, "item": added}))
        elif kind == "custom_tool_call":
            added = custom_tool_call_item(item.id, call_id, name, "", ns)
            out.append(self._ev("response.output_item.added", {"output_index": index, "item": added}))
        else:
            added = function_call_item(item.id, call_id, name, "", "in_progress", ns)
            out.append(self._ev("response.output_item.added", {"output_index": index, "item": added}))
        return item

    def _close(self, item: _Item, out: list[bytes], status: str = "completed") -> None:
        text = "".join(item.pieces)
        where = {"item_id": item.id, "output_index": item.index}
        if item.kind == "message":
            done = message_item(item.id, text, status)
            fields = {**where, "content_index": 0, "text": text, "logprobs": _NO_LOGPROBS}
            out.append(self._ev("response.output_text.done", fields))
            out.append(self._ev("response.content_part.done", {**where, "content_index": 0, "part": output_text(text)}))
        elif item.kind == "reasoning":
            thinking = ThinkingPart(text=text, signature="".join(item.signature) or None, redacted=item.redacted,
                                    origin=item.origin)  # fmt: skip
            done = reasoning_item(item.id, text if item.summary else None, seal(thinking))
            if item.summary:
                at = {**where, "summary_index": 0}
                out.append(self._ev("response.reasoning_summary_text.done", {**at, "text": text}))
                out.append(self._ev("response.reasoning_summary_part.done", {**at, "part": _summary(text)}))
        elif item.kind == "custom_tool_call":
            done = custom_tool_call_item(item.id, item.call_id, item.name, text, item.ns)
            if done["input"]:
                out.append(self._ev("response.custom_tool_call_input.delta", {**where, "delta": done["input"]}))
            out.append(self._ev("response.custom_tool_call_input.done", {**where, "input": done["input"]}))
        else:
            done = function_call_item(item.id, item.call_id, item.name, text, status, item.ns)
            out.append(self._ev("response.function_call_arguments.done", {**where, "arguments": text}))
        out.append(self._ev("response.output_item.done", {"output_index": item.index, "item": done}))
        self._output[item.index] = done

    def _close_block(self, out: list[bytes]) -> None:
        if self._block is not None:
            self._close(self._block, out)
            self._block = None

    def _close_all(self, out: list[bytes], last: str = "completed", rest: str = "completed") -> None:
        """Close every open item in output order; the response's last item ends with `last`."""
        final = len(self._output) - 1
        items = ([self._block] if self._block is not None else []) + self._open_calls
        for item in sorted(items, key=lambda i: i.index):
            self._close(item, out, last if item.index == final else rest)
        self._block = None
        self._open_calls = []

    def _delta(self, kind: str, prefix: str, text: str, out: list[bytes]) -> None:
        block = self._block
        if block is None or block.kind != kind:
            self._close_all(out)
            block = self._block = self._open(kind, prefix, out)
        block.pieces.append(text)
        where = {"item_id": block.id, "output_index": block.index}
        if kind == "message":
            fields = {**where, "content_index": 0, "delta": text, "logprobs": _NO_LOGPROBS}
            out.append(self._ev("response.output_text.delta", fields))
        else:
            at = {**where, "summary_index": 0}
            if not block.summary:
                block.summary = True
                out.append(self._ev("response.reasoning_summary_part.added", {**at, "part": _summary("")}))
            out.append(self._ev("response.reasoning_summary_text.delta", {**at, "delta": text}))

    # ---- the state machine ----------------------------------------------------------------
    def feed(self, ev: StreamEvent) -> list[bytes]:
        out: list[bytes] = []
        self._begin(out)
        if isinstance(ev, TextDelta):
            if ev.text:
                self._delta("message", "msg", ev.text, out)
        elif isinstance(ev, ToolCallDelta):
            call = self._calls.get(ev.index)
            if call is not None and ev.arguments:
                call.pieces.append(ev.arguments)
                if call.kind == "custom_tool_call":
                    if call not in self._open_calls:
                        self._output[call.index] = custom_tool_call_item(call.id, call.call_id, call.name,
                                                                         "".join(call.pieces), call.ns)  # fmt: skip
                elif call in self._open_calls:
                    where = {"item_id": call.id, "output_index": call.index}
                    out.append(self._ev("response.function_call_arguments.delta", {**where, "delta": ev.arguments}))
                else:  # a fragment after its item closed is not streamed but reaches the final output
                    args = "".join(call.pieces)
                    self._output[call.index] = function_call_item(call.id, call.call_id, call.name, args,
                                                                  namespace=call.ns)  # fmt: skip
        elif isinstance(ev, ThinkingDelta):
            if ev.text:
                self._delta("reasoning", "rs", ev.text, out)
        elif isinstance(ev, ToolCallStart):
            if ev.index not in self._calls:
                self._close_block(out)
                if ev.signature and ev.origin:  # a call's own signed state (Gemini's): a reasoning item before it
                    signed = self._open("reasoning", "rs", out)
                    signed.signature.append(ev.signature)
                    signed.origin = ev.origin
                    self._close(signed, out)
                custom = ev.name in self._names.custom
                kind, prefix = ("custom_tool_call", "ctc") if custom else ("function_call", "fc")
                ns, name = self._names.origin(ev.name)
                call = self._open(kind, prefix, out, ev.id, name, ns)
                self._calls[ev.index] = call
                self._open_calls.append(call)
        elif isinstance(ev, SignatureDelta):
            if self._block is None or self._block.kind != "reasoning":
                self._close_all(out)
                self._block = self._open("reasoning", "rs", out)
            self._block.signature.append(ev.signature)
            self._block.origin = ev.origin
        elif isinstance(ev, RedactedThinking):  # an opaque block of its own: one item, opened and closed
            self._close_all(out)
            item = self._open("reasoning", "rs", out)
            item.redacted = ev.data
            item.origin = ev.origin
            self._close(item, out)
        elif isinstance(ev, Finish):
            self._stop = ev.stop_reason
        elif isinstance(ev, UsageUpdate):
            self._usage = ev.usage
        return out

    def end(self, usage: Usage | None = None, cost: Decimal | None = None) -> list[bytes]:
        """The closing events of a stream that ran to its end: open items done, then the response
        completed (or incomplete) with its usage (`usage` wins over what the stream reported)."""
        out: list[bytes] = []
        self._begin(out)
        reason = incomplete_reason(self._stop)
        self._close_all(out, "incomplete" if reason else "completed")  # the last item is open (or reasoning)
        u = usage_dict(usage or self._usage or Usage(), cost)
        status = "incomplete" if reason else "completed"
        self.final = self._response(status, usage=u, incomplete=reason)
        out.append(self._ev(f"response.{status}", {"response": self.final}))
        return out

    def error(self, err: GatewayError) -> list[bytes]:
        """The stream failed: open items end incomplete, then `response.failed` with the error."""
        out: list[bytes] = []
        self._begin(out)
        self._close_all(out, "incomplete", "incomplete")
        failed = self._response("failed", usage=None, error=error_object(err))
        out.append(self._ev("response.failed", {"response": failed}))
        return out


def open_stream(reply: Reply) -> ResponsesStreamEncoder:
    return ResponsesStreamEncoder(
        id=response_id(reply.id), model=reply.model, created=reply.created, echo=echo_of(reply.request)
    )


def end_stream(enc: ResponsesStreamEncoder, totals: StreamTotals) -> list[bytes]:
    """The response object ends with the final usage (counted when the upstream sent none) and its cost."""
    usage = totals.final_usage()
    return enc.end(usage, totals.cost(usage))

"""A whole answer as stream events, and stream events back into a whole answer: what the response
cache needs to replay an answer stored from a whole request as a stream, and to store an answer
that was streamed. Pure, no I/O.

The two are inverses on what a client API can render: `answer_of(events_of(r))` gives back `r`'s
content, stop reason, usage and log probabilities (the second and later choices of `n` > 1 have no
stream form, so `events_of` leaves them out; callers do not replay those as streams).
"""

from __future__ import annotations

from collections.abc import Iterable

from keeprouter.formats.canonical import (
    ChatResponse,
    Finish,
    LogprobsDelta,
    Part,
    RedactedThinking,
    SignatureDelta,
    Start,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    TokenLogprob,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    Usage,
    UsageUpdate,
)


def events_of(resp: ChatResponse) -> list[StreamEvent]:
    """`resp` as the events an upstream would have streamed: one delta per part, then the finish
    and the usage (in that order, as the Anthropic and OpenAI decoders emit them)."""
    out: list[StreamEvent] = [Start(id=resp.id, model=resp.model, system_fingerprint=resp.system_fingerprint)]
    logprobs = resp.logprobs
    tools = 0
    for part in resp.content:
        if isinstance(part, TextPart):
            if logprobs:  # they belong to the text that follows them
                out.append(LogprobsDelta(content=logprobs))
                logprobs = None
            out.append(TextDelta(text=part.text))
        elif isinstance(part, ThinkingPart):
            if part.redacted is not None:
                out.append(RedactedThinking(data=part.redacted, origin=part.origin))
                continue
            out.append(ThinkingDelta(text=part.text))
            if part.signature is not None:
                out.append(SignatureDelta(signature=part.signature, origin=part.origin))
        elif isinstance(part, ToolCallPart):
            out.append(ToolCallStart(index=tools, id=part.id, name=part.name, signature=part.signature,
                                     origin=part.origin))  # fmt: skip
            out.append(ToolCallDelta(index=tools, arguments=part.arguments))
            tools += 1
    out.append(Finish(stop_reason=resp.stop_reason or "end_turn", stop_sequence=resp.stop_sequence))
    out.append(UsageUpdate(usage=resp.usage))
    return out


def answer_of(events: Iterable[StreamEvent], usage: Usage | None = None) -> ChatResponse:
    """The whole answer `events` streamed. `usage`, when given, replaces what the events reported
    (the gateway's final usage, counted offline when the upstream sent none)."""
    resp = ChatResponse(id="", model="", content=[], stop_reason=None)
    parts = resp.content
    tools: dict[int, ToolCallPart] = {}
    last: StreamEvent | None = None
    for ev in events:
        if isinstance(ev, Start):
            resp.id, resp.model, resp.system_fingerprint = ev.id, ev.model, ev.system_fingerprint
            if ev.usage is not None:
                resp.usage = ev.usage
        elif isinstance(ev, TextDelta):
            tail = parts[-1] if parts else None
            if isinstance(tail, TextPart) and isinstance(last, TextDelta | LogprobsDelta):
                tail.text += ev.text
            else:
                parts.append(TextPart(text=ev.text))
        elif isinstance(ev, ThinkingDelta):
            tail = parts[-1] if parts else None
            if isinstance(tail, ThinkingPart) and isinstance(last, ThinkingDelta):
                tail.text += ev.text
            else:
                parts.append(ThinkingPart(text=ev.text))
        elif isinstance(ev, SignatureDelta):
            tail = _thinking(parts)
            # a signature may arrive in pieces: consecutive ones are one signature
            joined = (tail.signature or "") if isinstance(last, SignatureDelta) else ""
            tail.signature, tail.origin = joined + ev.signature, ev.origin
        elif isinstance(ev, RedactedThinking):
            parts.append(ThinkingPart(redacted=ev.data, origin=ev.origin))
        elif isinstance(ev, ToolCallStart):
            call = tools[ev.index] = ToolCallPart(id=ev.id, name=ev.name, arguments="", signature=ev.signature,
                                                  origin=ev.origin)  # fmt: skip
            parts.append(call)
        elif isinstance(ev, ToolCallDelta):
            if ev.index in tools:
                tools[ev.index].arguments += ev.arguments
        elif isinstance(ev, LogprobsDelta):
            resp.logprobs = _extend(resp.logprobs, ev.content)
        elif isinstance(ev, Finish):
            resp.stop_reason, resp.stop_sequence = ev.stop_reason, ev.stop_sequence
        elif isinstance(ev, UsageUpdate):
            resp.usage = ev.usage
        last = ev
    if usage is not None:
        resp.usage = usage
    return resp


def _thinking(parts: list[Part]) -> ThinkingPart:
    """The thinking block a signature signs: the last one, or a new empty one (a signature alone)."""
    for p in reversed(parts):
        if isinstance(p, ThinkingPart) and p.redacted is None:
            return p
    p = ThinkingPart()
    parts.append(p)
    return p


def _extend(seen: list[TokenLogprob] | None, more: list[TokenLogprob]) -> list[TokenLogprob]:
    return more if seen is None else seen + more

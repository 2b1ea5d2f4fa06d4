"""A stream in flight: the events an upstream produced after its first one, observed on the way
to the client so the generation can be metered, recorded and settled when it ends, however it ends."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from decimal import Decimal
from typing import Protocol

import msgspec

from keeprouter.billing import pricing
from keeprouter.errors import GatewayError
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
from keeprouter.gateway.counting import Counting
from keeprouter.gateway.metering import Attempt, Metering, filled_usage
from keeprouter.gateway.settle import Settler
from keeprouter.routing.fit import SignatureIssuers
from keeprouter.routing.health import HealthTracker
from keeprouter.store.base import GenerationStatus


class StreamOwner(Protocol):
    """What a live stream needs from the gateway that opened it (the gateway is one, structurally;
    this module never imports it)."""

    @property
    def issuers(self) -> SignatureIssuers: ...
    @property
    def health(self) -> HealthTracker: ...
    @property
    def counting(self) -> Counting: ...
    @property
    def settler(self) -> Settler: ...


class LiveStream:
    """An upstream stream that has produced its first event. Iterate `events()` once; then call
    `finish()` (normal end, upstream error, or client gone) exactly once, which settles."""

    def __init__(
        self, owner: StreamOwner, meter: Metering, served: Attempt, first: StreamEvent,
        it: AsyncGenerator[StreamEvent, None],
    ) -> None:  # fmt: skip
        self.owner = owner
        self.meter = meter
        self.served = served
        self.candidate = served.candidate
        self.gen_id = meter.gen_id
        self._first = first
        self._last: StreamEvent | None = None
        self._it = it
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self._out_chars: list[str] = []
        self._signature: list[str] = []
        self._thinking: list[str] = []  # the unsigned thinking block in progress (its issuer is recorded)
        self.prompt_estimate = meter.prompt_estimate

    async def events(self) -> AsyncGenerator[StreamEvent, None]:
        """Every event, observed. (The API layer's relay takes the same path without this extra
        generator step per event: `start()`, then each of `rest` passed through `observe`.)"""
        async with aclosing(self.rest) as it:
            yield self.start()
            async for ev in it:
                yield self.observe(ev)

    def start(self) -> StreamEvent:
        """The first event, observed; the client is about to read it."""
        self.served.first_token_at = time.monotonic()
        return self.observe(self._first)

    @property
    def rest(self) -> AsyncGenerator[StreamEvent, None]:
        """The upstream's events after the first, unobserved: close it when done."""
        return self._it

    def observe(self, ev: StreamEvent) -> StreamEvent:
        if type(ev) is TextDelta and not self._thinking:  # the common event, as below
            self._out_chars.append(ev.text)
            self._last = ev
            return ev
        if self._thinking and not isinstance(ev, ThinkingDelta):
            if not isinstance(ev, SignatureDelta):  # signed thinking is known by its signature
                self.owner.issuers.record("".join(self._thinking), self.candidate.endpoint)
            self._thinking = []
        if isinstance(ev, TextDelta | ThinkingDelta):
            self._out_chars.append(ev.text)
            if isinstance(ev, ThinkingDelta):
                self._thinking.append(ev.text)
        elif isinstance(ev, ToolCallDelta):
            self._out_chars.append(ev.arguments)
        elif isinstance(ev, ToolCallStart):
            self._out_chars.append(ev.name)
        elif isinstance(ev, UsageUpdate):
            self.usage = ev.usage
        elif isinstance(ev, Start) and ev.usage is not None and self.usage is None:
            # Input counts sent early (Anthropic's message_start) bill a stream cut before its final
            # usage; the output count there is a placeholder, so what was produced replaces it.
            self.usage = msgspec.structs.replace(ev.usage, output_tokens=0, reasoning_tokens=0)
        elif isinstance(ev, Finish):
            self.finish_reason = ev.stop_reason
        elif isinstance(ev, SignatureDelta):
            # Remember who issued this signed state, so it is replayed only to them.
            if isinstance(self._last, SignatureDelta):
                self._signature.append(ev.signature)
            else:
                self._signature = [ev.signature]
            self.owner.issuers.record("".join(self._signature), self.candidate.endpoint)
        elif isinstance(ev, RedactedThinking):
            self.owner.issuers.record(ev.data, self.candidate.endpoint)
        self._last = ev
        return ev

    def final_usage(self) -> Usage:
        """The upstream's usage when it sent one, else an offline count of what was produced."""
        u = self.usage
        if u is not None and u.input_tokens and u.output_tokens:
            return u  # the common case: the upstream reported it all, nothing to count
        exact = self.owner.counting.exact_counter(self.candidate.endpoint)  # the model's tokenizer, when loaded
        return filled_usage(u, "".join(self._out_chars), self.meter, exact)

    def cost(self, u: Usage | None = None) -> Decimal:
        u = u or self.final_usage()
        if u.output_tokens == 0 and not self._out_chars:
            return Decimal(0)  # nothing produced: nothing billed
        return pricing.rounded_cost(u, self.candidate.endpoint.pricing)

    async def finish(self, status: GenerationStatus, error: GatewayError | None = None) -> None:
        u = self.final_usage()
        cost = self.cost(u)
        out = u.output_tokens
        key = self.candidate.key
        meter, first_token_at = self.meter, self.served.first_token_at
        gen_time = time.monotonic() - (first_token_at or meter.started)
        if status == "error":
            self.owner.health.failure(key, rate_limited=False)
        else:
            ttft = (first_token_at or time.monotonic()) - meter.started
            total = time.monotonic() - meter.started
            self.owner.health.success(key, ttft, out / gen_time if gen_time > 0 and out else None, total)
        await self.owner.settler.record(
            meter,
            u,
            cost,
            status,
            "error" if status == "error" else self.finish_reason,
            streamed=True,
            error=error.message if error else None,
        )

"""A stream in flight: the events an upstream produced after its first one, observed on the way
to the client so the generation can be metered, recorded and settled when it ends, however it ends."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec

from keeprouter.billing import pricing
from keeprouter.errors import GatewayError
from keeprouter.formats import tokens
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
from keeprouter.routing.select import Candidate
from keeprouter.store.base import GenerationStatus

if TYPE_CHECKING:
    from keeprouter.gateway.gateway import Gateway, Metering


class LiveStream:
    """An upstream stream that has produced its first event. Iterate `events()` once; then call
    `finish()` (normal end, upstream error, or client gone) exactly once, which settles."""

    def __init__(
        self, gw: Gateway, meter: Metering, cand: Candidate, first: StreamEvent, it: AsyncGenerator[StreamEvent, None]
    ) -> None:
        self.gw = gw
        self.meter = meter
        self.candidate = cand
        self.gen_id = meter.gen_id
        self._first = first
        self._last: StreamEvent | None = None
        self._it = it
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self._out_chars: list[str] = []
        self._signature: list[str] = []
        self.prompt_estimate = meter.prompt_estimate

    async def events(self) -> AsyncGenerator[StreamEvent, None]:
        meter = self.meter
        meter.first_token_at = time.monotonic()
        async with aclosing(self._it) as it:
            yield self._observe(self._first)
            async for ev in it:
                yield self._observe(ev)

    def _observe(self, ev: StreamEvent) -> StreamEvent:
        if isinstance(ev, TextDelta | ThinkingDelta):
            self._out_chars.append(ev.text)
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
            self.gw.issuers.record("".join(self._signature), self.candidate.endpoint)
        elif isinstance(ev, RedactedThinking):
            self.gw.issuers.record(ev.data, self.candidate.endpoint)
        self._last = ev
        return ev

    def final_usage(self) -> Usage:
        """The upstream's usage when it sent one, else an offline count of what was produced."""
        u = self.usage
        if u is not None and u.input_tokens and u.output_tokens:
            return u  # the common case: the upstream reported it all, nothing to count
        exact = self.gw.exact_counter(self.candidate.endpoint)  # the model's tokenizer, when loaded
        count = exact or tokens.count_output
        produced = count("".join(self._out_chars)) if self._out_chars else 0
        prompt = tokens.count_request(self.meter.request, exact) if exact else self.prompt_estimate
        if u is None:
            return Usage(input_tokens=prompt, output_tokens=produced)
        if u.input_tokens == 0 or (u.output_tokens == 0 and produced):
            return Usage(
                input_tokens=u.input_tokens or prompt,
                output_tokens=u.output_tokens or produced,
                cache_read_tokens=u.cache_read_tokens,
                cache_write_tokens=u.cache_write_tokens,
                reasoning_tokens=u.reasoning_tokens,
            )
        return u

    def cost(self, u: Usage | None = None) -> Decimal:
        u = u or self.final_usage()
        if u.output_tokens == 0 and not self._out_chars:
            return Decimal(0)  # nothing produced: nothing billed
        return pricing.quantize(pricing.cost(u, self.candidate.endpoint.pricing))

    async def finish(self, status: GenerationStatus, error: GatewayError | None = None) -> None:
        u = self.final_usage()
        cost = self.cost(u)
        out = u.output_tokens
        key = self.candidate.key
        gen_time = time.monotonic() - (self.meter.first_token_at or self.meter.started)
        if status == "error":
            self.gw.health.failure(key, rate_limited=False)
        else:
            ttft = (self.meter.first_token_at or time.monotonic()) - self.meter.started
            total = time.monotonic() - self.meter.started
            self.gw.health.success(key, ttft, out / gen_time if gen_time > 0 and out else None, total)
        await self.gw.record(
            self.meter,
            u,
            cost,
            status,
            "error" if status == "error" else self.finish_reason,
            streamed=True,
            error=error.message if error else None,
        )

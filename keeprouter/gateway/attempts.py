"""What one upstream attempt is, in either answer mode, and what its failure leaves behind.

The gateway's attempt loop (`Gateway._serve`) is written once; a `Mode` says how an attempt
starts, what its first result is (the whole answer, or a stream's first event) and what the caller
gets once one succeeds. Until that first result, every failure may fall back to the next
endpoint; after it, the answer belongs to the caller.

Modes are built once per gateway: an attempt allocates nothing for them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Coroutine, Mapping
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from keeprouter.billing import pricing
from keeprouter.config import EndpointConfig
from keeprouter.errors import GatewayError, NoEndpointAvailable, UpstreamError, UpstreamTimeout
from keeprouter.formats.canonical import ChatRequest, ChatResponse, StreamEvent, ThinkingPart
from keeprouter.gateway.counting import Counting
from keeprouter.gateway.live_stream import LiveStream, StreamOwner
from keeprouter.gateway.metering import Attempt, Completion, Metering, filled_usage, output_text
from keeprouter.providers.base import Adapter
from keeprouter.routing.fit import SignatureIssuers, state_of
from keeprouter.routing.health import HealthTracker

MAX_ATTEMPTS = 5  # endpoints tried per request, across models
MAX_RETRY_SECONDS = 120.0  # no new attempt starts after this long

H = TypeVar("H")  # what an attempt holds open: the adapter's call, or its stream
R = TypeVar("R")  # the attempt's first result
T = TypeVar("T", covariant=True)  # what the caller gets


class Mode(Protocol[H, R, T]):
    def open(self, adapter: Adapter, req: ChatRequest, ep: EndpointConfig, headers: Mapping[str, str]) -> H:
        """Start the attempt (nothing is sent before the first result is awaited)."""
        ...

    def first(self, handle: H) -> Awaitable[R]:
        """The first result; StopAsyncIteration means the upstream answered with nothing."""
        ...

    def close(self, handle: H) -> Awaitable[None] | None:
        """Give up an attempt whose first result failed (None: nothing left to close)."""
        ...

    def served(self, meter: Metering, attempt: Attempt, handle: H, first: R) -> T:
        """What the caller gets from the attempt that succeeded (`meter.served` is set)."""
        ...


class WholeAnswer:
    """`complete`: the first result is the whole answer, metered here."""

    def __init__(self, health: HealthTracker, issuers: SignatureIssuers, counting: Counting) -> None:
        self.health = health
        self.issuers = issuers
        self.counting = counting

    def open(
        self, adapter: Adapter, req: ChatRequest, ep: EndpointConfig, headers: Mapping[str, str]
    ) -> Coroutine[Any, Any, ChatResponse]:
        return adapter.complete(req, ep, headers)

    def first(self, handle: Coroutine[Any, Any, ChatResponse]) -> Awaitable[ChatResponse]:
        return handle

    def close(self, handle: Coroutine[Any, Any, ChatResponse]) -> None:
        return None  # a call that raised is finished

    def served(
        self, meter: Metering, attempt: Attempt, handle: Coroutine[Any, Any, ChatResponse], first: ChatResponse
    ) -> Completion:
        resp, cand = first, attempt.candidate
        now = time.monotonic()
        elapsed = now - attempt.started
        attempt.first_token_at = now
        ep = cand.endpoint
        if not (resp.usage.input_tokens and resp.usage.output_tokens):
            exact = self.counting.exact_counter(ep)
            produced = output_text(resp.content) + "".join(output_text(c.content) for c in resp.more_choices)
            resp.usage = filled_usage(resp.usage, produced, meter, exact)
        for part in resp.content:
            if isinstance(part, ThinkingPart) and (state := state_of(part)):
                self.issuers.record(state, ep)
        out = resp.usage.output_tokens
        self.health.success(cand.key, elapsed, out / elapsed if elapsed > 0 and out else None)
        cost = pricing.rounded_cost(resp.usage, ep.pricing) if out else Decimal(0)
        return Completion(resp, cand, cost, meter)


class FirstEvent:
    """`open_stream`: the first result is the stream's first event; the rest is the LiveStream's."""

    def __init__(self, owner: StreamOwner) -> None:
        self.owner = owner

    def open(
        self, adapter: Adapter, req: ChatRequest, ep: EndpointConfig, headers: Mapping[str, str]
    ) -> AsyncGenerator[StreamEvent, None]:
        return adapter.stream(req, ep, headers)

    def first(self, handle: AsyncGenerator[StreamEvent, None]) -> Awaitable[StreamEvent]:
        return anext(handle)

    def close(self, handle: AsyncGenerator[StreamEvent, None]) -> Awaitable[None]:
        return handle.aclose()

    def served(
        self, meter: Metering, attempt: Attempt, handle: AsyncGenerator[StreamEvent, None], first: StreamEvent
    ) -> LiveStream:
        return LiveStream(self.owner, meter, attempt, first, handle)


def failed(meter: Metering, attempt: Attempt, e: UpstreamError, health: HealthTracker) -> None:
    """Note a failed attempt; a failure no other endpoint could fix (a 4xx) ends the request."""
    attempt.error, attempt.ended = e, time.monotonic()
    meter.failed += (attempt,)
    health.failure(attempt.candidate.key, rate_limited=e.status == 429)
    if not e.retryable:
        raise e


def exhausted(meter: Metering) -> GatewayError:
    """The most meaningful error once every endpoint failed, listing each failure."""
    attempts = meter.failed
    meta: dict[str, object] = {"attempts": meter.provider_responses()}
    if not attempts:
        return NoEndpointAvailable("no endpoint could be tried", metadata=meta)
    last = attempts[-1].error
    if len(attempts) == 1 and last is not None:
        return last
    if all(a.status == 429 for a in attempts):
        retry = last.retry_after if last else None
        return UpstreamError("every provider is rate-limited", status=429, retry_after=retry, metadata=meta)
    summary = "; ".join(f"{a.candidate.endpoint.provider}: {a.error.message if a.error else ''}" for a in attempts)
    if all(a.status == 504 for a in attempts):
        return UpstreamTimeout(f"every provider timed out ({summary})", metadata=meta)
    return UpstreamError(f"every provider failed ({summary})", metadata=meta)

"""Recording and settling a generation, and the tasks that do it after the answer has left.

The API layer settles BEFORE the answer's last byte leaves, waiting at most `SETTLE_WAIT` seconds
(KEEPROUTER_SETTLE_WAIT_SECONDS): a client that received its answer in full is in the ledger even
if the process is killed right after. When the database is slower than that, the answer goes out
anyway and the settle keeps running: recorded late. A settle the database refuses (an outage:
StoreUnavailable, or any other failure) is handed to the settle queue (billing.settle_queue),
spooled to a local file before the answer leaves and retried until the database takes it; shutdown
waits for both (`drain`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from keeprouter.billing import pricing
from keeprouter.billing.ledger import Hold, Ledger
from keeprouter.billing.settle_queue import SettleQueue
from keeprouter.formats.canonical import Usage
from keeprouter.gateway.metering import Metering
from keeprouter.limits.base import RateLimiter
from keeprouter.store.base import GenerationRecord, GenerationStatus

if TYPE_CHECKING:
    from keeprouter.observe.metrics import Metrics

SETTLE_WAIT = 5.0  # seconds an answer's last byte may wait for its ledger write (then it goes anyway)
log = logging.getLogger("keeprouter")
NO_SAVING = pricing.from_nanos(0)  # quantize(cache_saving(...)) of a usage without cache tokens


async def settled_within(task: asyncio.Future[Any], seconds: float) -> None:
    """Wait for `task` for at most `seconds`, never cancelling it: `asyncio.wait((task,), timeout=...)`
    without its sets and bookkeeping, which every non-streamed answer pays before it leaves."""
    if task.done():
        return
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = loop.call_later(seconds, wake)
    task.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        task.remove_done_callback(wake)


class Settler:
    """Owns every settle in flight: `record` builds the generation and settles its hold and rate
    limit ticket; `settle_later` runs a settle that must outlive its request; `drain` waits for all."""

    def __init__(self, ledger: Ledger, limiter: RateLimiter, queue: SettleQueue, metrics: Metrics | None) -> None:
        self.ledger = ledger
        self.limiter = limiter
        self.queue = queue
        self.metrics = metrics  # counted here, where generations settle, whatever the client API
        self.tasks: set[asyncio.Task[None]] = set()

    async def record(
        self,
        meter: Metering,
        usage: Usage,
        cost: Decimal,
        status: GenerationStatus,
        finish: str | None,
        *,
        streamed: bool,
        error: str | None = None,
    ) -> None:
        served = meter.served
        assert served is not None, "only a generation that an endpoint served is recorded"
        cand = served.candidate
        now = time.monotonic()
        served.ended, served.usage = now, usage
        latency = now - meter.started
        ttft = (served.first_token_at or now) - meter.started
        gen_time = now - (served.first_token_at or meter.started)
        # what the prompt cache saved: nothing charged, nothing saved; no cache tokens, nothing saved
        # (the same Decimal `cache_saving` would give, without pricing the zero counts)
        if not cost:
            discount = pricing.ZERO
        elif usage.cache_read_tokens > 0 or usage.cache_write_tokens > 0:
            discount = pricing.quantize(pricing.cache_saving(usage, cand.endpoint.pricing))
        else:
            discount = NO_SAVING
        gen = GenerationRecord(
            id=meter.gen_id,
            key_hash=meter.caller.key.hash,
            model=cand.model.id,
            provider=cand.endpoint.provider,
            upstream_model=cand.endpoint.model,
            api=meter.caller.api,
            streamed=streamed,
            status=status,
            finish_reason=finish,
            tokens_prompt=usage.input_tokens,
            tokens_completion=usage.output_tokens,
            tokens_cached=usage.cache_read_tokens,
            tokens_cache_write=usage.cache_write_tokens,
            tokens_reasoning=usage.reasoning_tokens,
            cost=cost,
            cache_discount=discount,
            latency_ms=int(latency * 1000),
            ttft_ms=int(ttft * 1000),
            throughput=(usage.output_tokens / gen_time) if gen_time > 0 and usage.output_tokens else None,
            app=meter.caller.app,
            app_title=meter.caller.app_title,
            attempts=meter.provider_responses(),
            error=error,
            created_at=time.time(),
            cached=meter.cache is not None and meter.cache.hit,
        )
        if self.metrics is not None:
            self.metrics.settled(gen.model, gen.provider, gen.api, status, latency, ttft, gen.tokens_prompt,
                                 gen.tokens_completion, gen.tokens_cached, gen.tokens_reasoning, cost)  # fmt: skip
        hold, meter.hold = meter.hold, None
        assert hold is not None, "settled twice"
        ticket, meter.ticket = meter.ticket, None
        try:
            if ticket is not None:
                await self.limiter.settle(ticket, usage.input_tokens + usage.output_tokens)
        finally:
            await self._settle(hold, gen)

    async def _settle(self, hold: Hold, gen: GenerationRecord) -> None:
        """Settle, or hand the settle to the queue when the database refuses it (settle is
        idempotent on the generation id, so a retry after a commit whose answer was lost bills
        nothing twice)."""
        try:
            await self.ledger.settle(hold, gen)
        except ValueError:
            raise  # a bug (hold of another key), not the database
        except Exception as e:
            log.warning("settling %s failed (%s): queued until the database takes it", gen.id, e)
            await self.queue.put(hold, gen)

    def settle_later(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a settle that must survive the caller's cancellation; drained at shutdown. The
        task is returned so a caller may wait for it (never cancel it)."""
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    @property
    def settling(self) -> int:
        """Settles not yet committed (the answer may already be out), queued ones included."""
        return len(self.tasks) + self.queue.pending

    async def drain(self, seconds: float = 60.0) -> bool:
        """Wait for every settle to commit or be queued, then for the queue to empty, for up to
        `seconds` in all. True if all committed. The app closes the queue afterwards: what is left
        then stays in its spool file for the next start (billing.settle_queue)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.tasks:
            left = deadline - loop.time()
            if left <= 0:
                break
            await asyncio.wait(list(self.tasks), timeout=left)
        if self.tasks:
            log.error("shutdown: %d settles still running after %.0fs", len(self.tasks), seconds)
        emptied = await self.queue.wait_empty(max(deadline - loop.time(), 0.0))
        return emptied and not self.tasks

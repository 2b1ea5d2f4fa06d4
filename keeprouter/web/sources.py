"""The pages' only I/O: aggregates the store already keeps, and the live health tracker, cached.

Every figure on a page comes from here. Results are cached for `ttl` seconds (one query serves every
page rendered in that time, however many), and concurrent misses share one query, so a burst of page
views costs the database one read per aggregate per `ttl`. Nothing here is on the request path.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from keeprouter.config import EndpointConfig
from keeprouter.routing.health import HealthTracker
from keeprouter.routing.select import endpoint_key
from keeprouter.store.base import ActivityRow, AppRow, CacheUsageRow, EndpointDay, Store

T = TypeVar("T")
DEFAULT_TTL = 5.0  # seconds a page figure may lag the records
WINDOW_DAYS = 90  # how far back the per-day charts and tables go
DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Live:
    """An endpoint's live health, from this instance's tracker (seconds, percent, tokens/s)."""

    circuit: str  # closed | half_open | open
    uptime_1d: float | None
    latency_p50: float | None  # time to first token
    latency_p90: float | None
    throughput_p50: float | None


class PageSources:
    def __init__(
        self,
        store: Store,
        tracker: HealthTracker,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.tracker = tracker
        self.ttl = ttl
        self.clock = clock
        self.wall = wall
        self._cache: dict[Hashable, tuple[float, asyncio.Future[Any]]] = {}

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.wall(), dt.UTC).date()

    def window(self, days: int = WINDOW_DAYS) -> tuple[dt.date, dt.date]:
        end = self.today()
        return end - dt.timedelta(days=days - 1), end

    async def _cached(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now and not (hit[1].done() and (hit[1].cancelled() or hit[1].exception())):
            result: T = await asyncio.shield(hit[1])
            return result
        fut: asyncio.Future[T] = asyncio.ensure_future(load())
        self._cache[key] = (now + self.ttl, fut)
        if len(self._cache) > 256:  # keys are few (days, models); drop the expired ones
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        return await asyncio.shield(fut)

    async def activity(self, days: int = WINDOW_DAYS) -> list[ActivityRow]:
        """Every key's usage per (date, model, provider) over the last `days` UTC days."""
        start, end = self.window(days)
        return await self._cached(("activity", start, end), lambda: self.store.activity(start, end))

    async def endpoint_days(self, days: int = WINDOW_DAYS) -> list[EndpointDay]:
        """Every endpoint's persisted health per UTC day over the last `days` days."""
        start, end = self.window(days)
        return await self._cached(("health", start, end), lambda: self.store.endpoint_daily(None, start, end))

    async def cache_usage(self, *, model: str | None = None) -> list[CacheUsageRow]:
        """This UTC month's prompt-cache figures per (model, key), of one model when given."""
        end = self.today()
        start = end.replace(day=1)
        return await self._cached(("cache", start, end, model), lambda: self.store.cache_usage(start, end, model=model))

    async def apps(self, days: int, *, model: str | None = None, limit: int = 20) -> list[AppRow]:
        start, end = self.window(days)
        return await self._cached(
            ("apps", start, end, model, limit), lambda: self.store.app_rankings(start, end, limit=limit, model=model)
        )

    def live(self, model_id: str, ep: EndpointConfig) -> Live:
        key = endpoint_key(model_id, ep)
        t = self.tracker
        latency = t.percentiles(key, "latency", 1800.0)
        return Live(
            circuit=t.state(key),
            uptime_1d=t.uptime(key, DAY),
            latency_p50=latency.get("p50"),
            latency_p90=latency.get("p90"),
            throughput_p50=t.throughput(key),
        )

"""Endpoint health over days: persisted per minute, served per UTC day.

`HealthFlusher` turns the in-memory HealthTracker's completed minutes (routing.rollup) into
`endpoint_minutes` rows, every KEEPROUTER_HEALTH_FLUSH_SECONDS (60 s) and once more at shutdown.
Each instance writes each minute once and the store ADDS to a minute already written, so several
instances sharing one PostgreSQL database each contribute their own share of a minute.

`GET /api/v1/models/{id}/uptime?days=N` (public, like the catalogue) charts them: for each of the
last N UTC days (default 30, at most 365), oldest first, each endpoint with data that day.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from keeprouter.api.http import STATE, json_response, with_errors
from keeprouter.config import Config
from keeprouter.errors import InvalidRequest
from keeprouter.routing.health import HealthTracker
from keeprouter.routing.lookup import require_model
from keeprouter.routing.rollup import MinuteRollup, MinuteRow
from keeprouter.routing.select import endpoint_key
from keeprouter.store.base import EndpointDay, EndpointMinute, Store

log = logging.getLogger("keeprouter")
HEALTH_FLUSH_SECONDS = 60.0
MAX_PENDING = 100_000  # rows kept for retry while the database is away; the oldest go first
STOP_TIMEOUT = 10.0  # seconds a write in progress may take to finish at shutdown
DEFAULT_DAYS, MAX_DAYS = 30, 365


class HealthFlusher:
    """Owns the rollup cursor and the periodic task that persists it. `flush()` may also be called
    directly (tests); flushes never overlap, so no minute is written twice by one instance."""

    def __init__(
        self, tracker: HealthTracker, store: Store, config: Config, wall: Callable[[], float] = time.time
    ) -> None:
        self.rollup = MinuteRollup(tracker, wall)
        self.store = store
        self._names = {
            endpoint_key(m.id, ep): (m.id, ep.provider, ep.model) for m in config.models.values() for ep in m.endpoints
        }
        self._pending: list[EndpointMinute] = []
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._task: asyncio.Future[None] | None = None

    async def flush(self, *, final: bool = False) -> int:
        """Write the minutes completed since the last flush (with `final`, the current one too) and
        any rows a failed write left behind; returns how many rows were written. Raises when the
        write fails, keeping its rows for the next flush."""
        async with self._lock:
            self._pending += [self._row(r) for r in self.rollup.collect(final=final)]
            if len(self._pending) > MAX_PENDING:
                log.warning("dropping %d unwritten health minutes", len(self._pending) - MAX_PENDING)
                del self._pending[: len(self._pending) - MAX_PENDING]
            rows, n = self._pending, len(self._pending)
            if n:
                await self.store.write_endpoint_minutes(rows)
                self._pending = []
            return n

    def _row(self, r: MinuteRow) -> EndpointMinute:
        names = self._names.get(r.endpoint)
        if names is None:  # not configured (cannot happen today): split the key
            model, provider, upstream = [*r.endpoint.split("|", 2), "", ""][:3]
        else:
            model, provider, upstream = names
        return EndpointMinute(
            model=model, provider=provider, upstream_model=upstream, minute=r.minute, requests=r.requests,
            successes=r.successes, rate_limited=r.rate_limited, latency_sum=r.latency_sum,
            latency_count=r.latency_count, throughput_sum=r.throughput_sum, throughput_count=r.throughput_count,
            latency_p50=r.latency_p50, latency_p90=r.latency_p90,
        )  # fmt: skip

    def start(self, every: float) -> None:
        self._task = asyncio.ensure_future(self._run(every))

    async def _run(self, every: float) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), every)
            if self._stop.is_set():
                return
            try:
                await self.flush()
            except Exception:  # the database may be briefly away: the rows wait for the next round
                log.exception("writing endpoint health minutes failed")

    async def close(self) -> None:
        """Stop the periodic task (letting a write in progress finish), then flush everything left,
        the unfinished minute included. Call after in-flight requests have drained."""
        self._stop.set()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=STOP_TIMEOUT)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.flush(final=True)
        except Exception:
            log.exception("writing endpoint health minutes at shutdown failed")


FLUSHER: web.AppKey[HealthFlusher] = web.AppKey("keeprouter_health_flusher", HealthFlusher)


def _days(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_DAYS
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_DAYS:
        raise InvalidRequest(f"days must be a whole number from 1 to {MAX_DAYS}")
    return days


def _endpoint_json(d: EndpointDay) -> dict[str, Any]:
    return {
        "provider_name": d.provider,
        "upstream_model": d.upstream_model,
        "requests": d.requests,
        "uptime": d.uptime,
        "latency_ms": None if d.latency is None else round(d.latency * 1000, 1),
        "throughput": None if d.throughput is None else round(d.throughput, 2),
    }


@with_errors("openai")
async def model_uptime(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    model_id = require_model(state.config.models, request.match_info["id"]).model.id
    days = _days(request.query.get("days"))
    today = dt.datetime.fromtimestamp(time.time(), dt.UTC).date()
    start = today - dt.timedelta(days=days - 1)
    by_date: dict[str, list[dict[str, Any]]] = {}
    for d in await state.store.endpoint_daily(model_id, start, today):
        by_date.setdefault(d.date, []).append(_endpoint_json(d))
    dates = [(start + dt.timedelta(days=i)).isoformat() for i in range(days)]
    return json_response(
        {"data": {"id": model_id, "days": [{"date": s, "endpoints": by_date.get(s, [])} for s in dates]}}
    )

"""Endpoint health per minute (`endpoint_minutes`, migration 0002) on both backends.

Writes ADD to a stored (endpoint, minute): every gateway instance sharing the database writes its
own share of each minute, once. The minute's percentiles cannot be added; on conflict they become
the latency-count-weighted mean of the stored and the new value (an approximation, and exact when
one instance serves the endpoint). Reads fold minutes into UTC days; uptime and means are derived
from the summed counts, never averaged from averages.

Every SQL fragment is built at import from constants; values always travel as bind parameters.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from typing import Any

from keeprouter.store._pg_pool import GuardedPool
from keeprouter.store.base import SECONDS_PER_DAY, EndpointDay, EndpointMinute, day_date, epoch_day

COLUMNS = (
    "model", "provider", "upstream_model", "minute", "requests", "successes", "rate_limited",
    "latency_sum", "latency_count", "throughput_sum", "throughput_count", "latency_p50", "latency_p90",
)  # fmt: skip
_ADDED = ("requests", "successes", "rate_limited", "latency_sum", "latency_count", "throughput_sum", "throughput_count")


def _upsert(placeholders: list[str], table: str) -> str:
    """INSERT ... ON CONFLICT adding counts; `table` qualifies the stored row's columns."""

    def merged(p: str) -> str:
        old, new, n_old, n_new = f"{table}.{p}", f"excluded.{p}", f"{table}.latency_count", "excluded.latency_count"
        return (
            f"{p} = CASE WHEN {old} IS NULL THEN {new} WHEN {new} IS NULL THEN {old}"
            f" ELSE ({old} * {n_old} + {new} * {n_new}) / NULLIF({n_old} + {n_new}, 0) END"
        )

    sets = [f"{c} = {table}.{c} + excluded.{c}" for c in _ADDED]
    # SET expressions all read the stored row as it was, so the weights are the old counts.
    sets += [merged("latency_p50"), merged("latency_p90")]
    return (
        f"INSERT INTO endpoint_minutes ({', '.join(COLUMNS)}) VALUES ({', '.join(placeholders)})"
        f" ON CONFLICT (model, provider, upstream_model, minute) DO UPDATE SET {', '.join(sets)}"
    )


def _daily(lo: str, hi: str, model_filter: str) -> str:
    return (
        f"SELECT minute / {SECONDS_PER_DAY} AS day, model, provider, upstream_model, SUM(requests),"
        " SUM(successes), SUM(rate_limited), SUM(latency_sum), SUM(latency_count), SUM(throughput_sum),"
        f" SUM(throughput_count) FROM endpoint_minutes WHERE minute >= {lo} AND minute < {hi}{model_filter}"
        " GROUP BY day, model, provider, upstream_model ORDER BY day, model, provider, upstream_model"
    )


SQLITE_UPSERT = _upsert(["?"] * len(COLUMNS), "endpoint_minutes")
PG_UPSERT = _upsert([f"${i}" for i in range(1, len(COLUMNS) + 1)], "endpoint_minutes")
SQLITE_DAILY_ALL = _daily("?", "?", "")
SQLITE_DAILY_MODEL = _daily("?", "?", " AND model = ?")
PG_DAILY = _daily("$1", "$2", " AND ($3::text IS NULL OR model = $3)")


def values(r: EndpointMinute) -> tuple[Any, ...]:
    """Bind values in COLUMNS order."""
    return (
        r.model, r.provider, r.upstream_model, int(r.minute), r.requests, r.successes, r.rate_limited,
        float(r.latency_sum), r.latency_count, float(r.throughput_sum), r.throughput_count,
        r.latency_p50, r.latency_p90,
    )  # fmt: skip


def bounds(start: dt.date, end: dt.date) -> tuple[int, int]:
    """[first second of `start`, first second after `end`) as epoch seconds."""
    return epoch_day(start) * SECONDS_PER_DAY, (epoch_day(end) + 1) * SECONDS_PER_DAY


def day_from_row(r: Sequence[Any]) -> EndpointDay:
    """(day, model, provider, upstream_model, requests, successes, rate_limited, latency_sum,
    latency_count, throughput_sum, throughput_count) -> EndpointDay."""
    day, model, provider, upstream, requests, successes, limited, lat_sum, lat_n, tput_sum, tput_n = r
    counted = int(requests) - int(limited)
    return EndpointDay(
        date=day_date(int(day)).isoformat(),
        model=model,
        provider=provider,
        upstream_model=upstream,
        requests=int(requests),
        successes=int(successes),
        rate_limited=int(limited),
        uptime=round(100.0 * int(successes) / counted, 2) if counted > 0 else None,
        latency=float(lat_sum) / int(lat_n) if lat_n else None,
        throughput=float(tput_sum) / int(tput_n) if tput_n else None,
    )


# ---- SQLite: run on the store's worker thread ------------------------------------------------


def sqlite_write(c: sqlite3.Connection, rows: Sequence[EndpointMinute]) -> None:
    """Inside the caller's transaction."""
    c.executemany(SQLITE_UPSERT, [values(r) for r in rows])


def sqlite_daily(c: sqlite3.Connection, model_id: str | None, start: dt.date, end: dt.date) -> list[EndpointDay]:
    lo, hi = bounds(start, end)
    if model_id is None:
        rows = c.execute(SQLITE_DAILY_ALL, (lo, hi)).fetchall()
    else:
        rows = c.execute(SQLITE_DAILY_MODEL, (lo, hi, model_id)).fetchall()
    return [day_from_row(r) for r in rows]


# ---- PostgreSQL ------------------------------------------------------------------------------


async def pg_write(pool: GuardedPool, rows: Sequence[EndpointMinute]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(PG_UPSERT, [values(r) for r in rows])


async def pg_daily(pool: GuardedPool, model_id: str | None, start: dt.date, end: dt.date) -> list[EndpointDay]:
    lo, hi = bounds(start, end)
    return [day_from_row(r) for r in await pool.fetch(PG_DAILY, lo, hi, model_id)]

"""Per-minute endpoint health on both backends: writes add up, reads fold minutes into UTC days."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3

import asyncpg
import pytest

from keeprouter.store import Store, open_store
from keeprouter.store.base import EndpointDay, EndpointMinute
from store.backends import DAY

D0 = 1_717_977_600  # 2024-06-10 00:00:00 UTC
DATE0 = dt.date(2024, 6, 10)


def row(
    minute: int,
    requests: int = 4,
    successes: int = 3,
    rate_limited: int = 0,
    *,
    model: str = "m/one",
    provider: str = "p1",
    upstream: str = "up-1",
    latency: tuple[float, int] = (2.0, 3),
    tput: tuple[float, int] = (30.0, 3),
    p50: float | None = 0.5,
    p90: float | None = 0.9,
) -> EndpointMinute:
    return EndpointMinute(
        model=model, provider=provider, upstream_model=upstream, minute=minute, requests=requests,
        successes=successes, rate_limited=rate_limited, latency_sum=latency[0], latency_count=latency[1],
        throughput_sum=tput[0], throughput_count=tput[1], latency_p50=p50, latency_p90=p90,
    )  # fmt: skip


async def test_empty_store_has_no_days(store: Store) -> None:
    assert await store.endpoint_daily("m/one", DATE0, DATE0) == []
    assert await store.endpoint_daily(None, DATE0, DATE0 + dt.timedelta(days=30)) == []
    await store.write_endpoint_minutes([])  # nothing to write is fine
    assert await store.endpoint_daily(None, DATE0, DATE0) == []


async def test_writing_a_minute_twice_adds(store: Store) -> None:
    """Two instances sharing the database each write their share of the same minute."""
    await store.write_endpoint_minutes([row(D0 + 60, 4, 3, 1, latency=(2.0, 3), tput=(30.0, 3))])
    await store.write_endpoint_minutes([row(D0 + 60, 6, 6, 0, latency=(6.0, 6), tput=(60.0, 6))])
    (day,) = await store.endpoint_daily("m/one", DATE0, DATE0)
    assert day == EndpointDay(
        date="2024-06-10", model="m/one", provider="p1", upstream_model="up-1", requests=10, successes=9,
        rate_limited=1, uptime=100.0, latency=8.0 / 9, throughput=90.0 / 9,
    )  # fmt: skip


async def test_daily_folds_minutes_per_endpoint_per_utc_day(store: Store) -> None:
    await store.write_endpoint_minutes(
        [
            row(D0, 4, 4, latency=(4.0, 4), tput=(40.0, 4)),
            row(D0 + 3600, 6, 2, latency=(2.0, 2), tput=(40.0, 2)),
            row(D0 + 86_340, 1, 1, latency=(1.0, 1), tput=(10.0, 1)),  # 23:59, still day 0
            row(D0 + 86_400, 2, 1, latency=(3.0, 1), tput=(0.0, 0)),  # 00:00 the next day
            row(D0, 5, 0, provider="p2", upstream="up-2", latency=(0.0, 0), tput=(0.0, 0), p50=None, p90=None),
            row(D0 + 120, 3, 3, model="m/two"),
        ]
    )
    days = await store.endpoint_daily("m/one", DATE0, DATE0 + dt.timedelta(days=1))
    assert [(d.date, d.provider, d.requests, d.successes, d.uptime) for d in days] == [
        ("2024-06-10", "p1", 11, 7, round(100 * 7 / 11, 2)),
        ("2024-06-10", "p2", 5, 0, 0.0),
        ("2024-06-11", "p1", 2, 1, 50.0),
    ]
    p1_day0, p2_day0, p1_day1 = days
    assert p1_day0.latency == 7.0 / 7 and p1_day0.throughput == 90.0 / 7
    assert (p2_day0.latency, p2_day0.throughput) == (None, None)  # no successes: nothing measured
    assert (p1_day1.latency, p1_day1.throughput) == (3.0, None)

    # Inclusive date range, other models left out unless model_id is None.
    only_day1 = await store.endpoint_daily("m/one", DATE0 + dt.timedelta(days=1), DATE0 + dt.timedelta(days=1))
    assert [(d.date, d.requests) for d in only_day1] == [("2024-06-11", 2)]
    everything = await store.endpoint_daily(None, DATE0, DATE0)
    assert [(d.model, d.provider) for d in everything] == [("m/one", "p1"), ("m/one", "p2"), ("m/two", "p1")]
    assert await store.endpoint_daily("m/none", DATE0, DATE0 + dt.timedelta(days=1)) == []
    assert await store.endpoint_daily("m/one", DATE0 - dt.timedelta(days=3), DATE0 - dt.timedelta(days=1)) == []


async def test_uptime_excludes_rate_limited_and_is_none_without_counted_requests(store: Store) -> None:
    await store.write_endpoint_minutes(
        [
            row(D0, 10, 3, 5, latency=(3.0, 3)),  # 5 rate-limited, 3 of the other 5 succeeded
            row(D0 + int(DAY), 4, 0, 4, latency=(0.0, 0), tput=(0.0, 0)),  # only 429s: no uptime
        ]
    )
    first, second = await store.endpoint_daily("m/one", DATE0, DATE0 + dt.timedelta(days=1))
    assert (first.requests, first.rate_limited, first.uptime) == (10, 5, 60.0)
    assert (second.requests, second.rate_limited, second.uptime) == (4, 4, None)
    assert (second.latency, second.throughput) == (None, None)


async def test_concurrent_writers_of_the_same_minutes_lose_nothing(store_url: str) -> None:
    """Several gateway processes flushing the same minutes at once: every count is kept."""
    stores = [await open_store(store_url) for _ in range(3)]
    try:
        batch = [row(D0 + 60 * i, 2, 1, latency=(1.0, 1), tput=(5.0, 1)) for i in range(50)]
        await asyncio.wait_for(asyncio.gather(*(s.write_endpoint_minutes(batch) for s in stores)), timeout=30)
        (day,) = await stores[0].endpoint_daily("m/one", DATE0, DATE0)
        assert (day.requests, day.successes, day.latency, day.throughput) == (300, 150, 1.0, 5.0)
    finally:
        for s in stores:
            await s.close()


async def test_a_failed_batch_writes_nothing(store: Store) -> None:
    """One transaction: a bad row rolls back the rows before it."""
    bad = row(D0 + 30)  # not a minute boundary: refused by the CHECK
    with pytest.raises((sqlite3.IntegrityError, asyncpg.CheckViolationError)):
        await store.write_endpoint_minutes([row(D0), bad])
    assert await store.endpoint_daily("m/one", DATE0, DATE0) == []

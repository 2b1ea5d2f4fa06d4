"""Per-minute health aggregates: pure bucketing, daily folding, and the once-per-minute cursor."""

from __future__ import annotations

from keeprouter.routing.health import HealthTracker, Sample
from keeprouter.routing.rollup import DayRow, MinuteRollup, MinuteRow, daily, minute_rows

T0 = 1_700_000_040.0  # a minute boundary (UTC)
K = "m|p|up"


def ok(at: float, latency: float = 1.0, tput: float | None = 10.0) -> Sample:
    return Sample(at, True, False, latency, tput)


def bad(at: float, limited: bool = False) -> Sample:
    return Sample(at, False, limited, None, None)


def test_minute_rows_bucket_and_sum() -> None:
    samples = [
        ok(T0 + 1, 1.0, 10.0),
        ok(T0 + 59.9, 3.0, None),
        bad(T0 + 30),
        bad(T0 + 31, limited=True),
        ok(T0 + 60, 2.0, 20.0),  # next minute
    ]
    rows = minute_rows(K, samples, T0, T0 + 120)
    assert [r.minute for r in rows] == [int(T0), int(T0) + 60]
    first, second = rows
    assert (first.requests, first.successes, first.rate_limited, first.failures) == (4, 2, 1, 1)
    assert first.uptime == round(100 * 2 / 3, 2)  # the 429 is not counted
    assert (first.latency_sum, first.latency_count) == (4.0, 2)
    assert (first.throughput_sum, first.throughput_count) == (10.0, 1)
    assert (first.latency_p50, first.latency_p90) == (1.0, 3.0)
    assert (second.requests, second.uptime, second.latency_p50) == (1, 100.0, 2.0)


def test_minute_rows_window_and_offset() -> None:
    samples = [ok(10.0), ok(70.0), ok(130.0)]  # monotonic times
    offset = T0 - 10.0  # monotonic 10 == wall T0
    rows = minute_rows(K, samples, T0, T0 + 120, offset)
    assert [(r.minute, r.requests) for r in rows] == [(int(T0), 1), (int(T0) + 60, 1)]  # 130 -> T0+120, excluded


def test_minute_rows_empty_and_only_rate_limited() -> None:
    assert minute_rows(K, [], T0, T0 + 60) == []
    [row] = minute_rows(K, [bad(T0, limited=True)], T0, T0 + 60)
    assert row.uptime is None
    assert row.latency_p50 is None


def test_daily_folds_minutes_per_endpoint_and_utc_day() -> None:
    day = int(T0) // 86400 * 86400

    def row(endpoint: str, minute: int, req: int, succ: int, limited: int, lat: float, n: int) -> MinuteRow:
        return MinuteRow(endpoint, minute, req, succ, limited, lat, n, 0.0, 0, None, None)

    rows = [
        row("a", day + 60, 10, 9, 0, 9.0, 9),
        row("a", day + 3600, 10, 5, 5, 10.0, 5),
        row("a", day + 86400, 2, 0, 0, 0.0, 0),  # next day
        row("b", day + 60, 1, 1, 0, 0.5, 1),
    ]
    assert daily(rows) == [
        DayRow("a", day, 20, 14, 5, round(100 * 14 / 15, 2), 19.0 / 14, None),
        DayRow("a", day + 86400, 2, 0, 0, 0.0, None, None),
        DayRow("b", day, 1, 1, 0, 100.0, 0.5, None),
    ]


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_rollup_emits_each_completed_minute_once() -> None:
    mono, wall = Clock(500.0), Clock(T0 + 10)
    h = HealthTracker(mono, min_requests=10**6)
    roll = MinuteRollup(h, wall)
    h.success(K, 0.5, 40.0)
    h.failure("other")
    assert roll.collect() == []  # the minute is not over

    mono.t += 55  # wall T0+65: minute T0 is complete
    wall.t += 55
    h.failure(K, rate_limited=True)  # in minute T0+60
    rows = roll.collect()
    assert sorted((r.endpoint, r.minute, r.requests) for r in rows) == [(K, int(T0), 1), ("other", int(T0), 1)]
    assert roll.collect() == []  # nothing twice

    mono.t += 200  # wall T0+265: minutes T0+60 .. T0+180 complete
    wall.t += 200
    rows = roll.collect()
    assert [(r.endpoint, r.minute, r.rate_limited) for r in rows] == [(K, int(T0) + 60, 1)]
    assert roll.collect() == []


def test_final_collect_includes_the_current_minute_once() -> None:
    mono, wall = Clock(500.0), Clock(T0 + 10)
    h = HealthTracker(mono, min_requests=10**6)
    roll = MinuteRollup(h, wall)
    h.success(K, 0.5, 40.0)
    mono.t += 20  # wall T0+30: the minute is still running at shutdown
    wall.t += 20
    h.failure(K)
    assert roll.collect() == []
    [row] = roll.collect(final=True)
    assert (row.minute, row.requests, row.successes) == (int(T0), 2, 1)
    assert roll.collect() == [] and roll.collect(final=True) == []  # never twice

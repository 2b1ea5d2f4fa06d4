"""Per-minute health aggregates, so uptime and speed can be charted per day.

`minute_rows` is pure: samples in, one `MinuteRow` per endpoint per minute out. Rows hold counts and
sums (which add up across minutes) plus the minute's own latency percentiles. `daily` folds rows
into one `DayRow` per endpoint per UTC day. `MinuteRollup` is the cursor a periodic task uses:
each call returns the rows of the minutes completed since the previous call, each minute once.

Times in rows are wall-clock epoch seconds; HealthTracker samples carry its own (monotonic) clock,
converted with a fixed offset taken when the rollup starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from keeprouter.routing.health import HealthTracker, Sample

MINUTE = 60
DAY = 86400


@dataclass(frozen=True, slots=True)
class MinuteRow:
    endpoint: str  # routing.select.endpoint_key: "model|provider|upstream_model"
    minute: int  # epoch seconds at the start of the minute (a multiple of 60)
    requests: int
    successes: int
    rate_limited: int  # 429s: neither success nor failure for uptime
    latency_sum: float  # seconds to first token, over the samples that measured it
    latency_count: int
    throughput_sum: float  # output tokens per second, over the samples that measured it
    throughput_count: int
    latency_p50: float | None
    latency_p90: float | None

    @property
    def failures(self) -> int:
        return self.requests - self.successes - self.rate_limited

    @property
    def uptime(self) -> float | None:
        """Percent of non-rate-limited requests that succeeded; None when there were none."""
        counted = self.requests - self.rate_limited
        return round(100.0 * self.successes / counted, 2) if counted else None


@dataclass(frozen=True, slots=True)
class DayRow:
    endpoint: str
    day: int  # epoch seconds at 00:00 UTC
    requests: int
    successes: int
    rate_limited: int
    uptime: float | None
    latency_avg: float | None
    throughput_avg: float | None


def minute_rows(
    endpoint: str, samples: Iterable[Sample], start: float, end: float, offset: float = 0.0
) -> list[MinuteRow]:
    """Rows for the minutes in [start, end) (wall seconds) that have samples, oldest first.
    A sample's wall time is `sample.at + offset`."""
    buckets: dict[int, list[Sample]] = {}
    for s in samples:
        wall = s.at + offset
        if start <= wall < end:
            buckets.setdefault(int(wall // MINUTE) * MINUTE, []).append(s)
    return [_row(endpoint, minute, buckets[minute]) for minute in sorted(buckets)]


def _row(endpoint: str, minute: int, samples: list[Sample]) -> MinuteRow:
    lat = sorted(s.latency for s in samples if s.ok and s.latency is not None)
    tput = [s.throughput for s in samples if s.ok and s.throughput is not None]
    return MinuteRow(
        endpoint=endpoint,
        minute=minute,
        requests=len(samples),
        successes=sum(1 for s in samples if s.ok),
        rate_limited=sum(1 for s in samples if s.rate_limited),
        latency_sum=sum(lat),
        latency_count=len(lat),
        throughput_sum=sum(tput),
        throughput_count=len(tput),
        latency_p50=_nearest_rank(lat, 50),
        latency_p90=_nearest_rank(lat, 90),
    )


def _nearest_rank(sorted_values: list[float], q: int) -> float | None:
    n = len(sorted_values)
    return sorted_values[max(0, (n * q + 99) // 100 - 1)] if n else None


def daily(rows: Iterable[MinuteRow]) -> list[DayRow]:
    """One row per endpoint per UTC day, ordered by endpoint then day."""
    acc: dict[tuple[str, int], list[MinuteRow]] = {}
    for r in rows:
        acc.setdefault((r.endpoint, r.minute // DAY * DAY), []).append(r)
    out = []
    for (endpoint, day), rs in sorted(acc.items()):
        requests = sum(r.requests for r in rs)
        successes = sum(r.successes for r in rs)
        limited = sum(r.rate_limited for r in rs)
        lat_n = sum(r.latency_count for r in rs)
        tput_n = sum(r.throughput_count for r in rs)
        counted = requests - limited
        out.append(
            DayRow(
                endpoint=endpoint,
                day=day,
                requests=requests,
                successes=successes,
                rate_limited=limited,
                uptime=round(100.0 * successes / counted, 2) if counted else None,
                latency_avg=sum(r.latency_sum for r in rs) / lat_n if lat_n else None,
                throughput_avg=sum(r.throughput_sum for r in rs) / tput_n if tput_n else None,
            )
        )
    return out


class MinuteRollup:
    """Emits each completed minute once. Call `collect()` about once a minute and
    `collect(final=True)` at shutdown; minutes older than the tracker's retention are not found."""

    def __init__(self, tracker: HealthTracker, wall: Callable[[], float] = time.time) -> None:
        self.tracker = tracker
        self.wall = wall
        self.offset = wall() - tracker.clock()
        now = wall()
        self.done_until = float(int(now // MINUTE) * MINUTE)  # the current minute is emitted when it ends

    def collect(self, *, final: bool = False) -> list[MinuteRow]:
        """Rows of the minutes completed since the last call. `final=True` (at shutdown, the last
        call) also emits the current, unfinished minute, so a graceful stop loses nothing."""
        end = float(int(self.wall() // MINUTE) * MINUTE) + (MINUTE if final else 0)
        if end <= self.done_until:
            return []
        start, self.done_until = self.done_until, end
        since = start - self.offset
        rows: list[MinuteRow] = []
        for key in self.tracker.keys():
            rows += minute_rows(key, self.tracker.samples(key, since), start, end, self.offset)
        return rows

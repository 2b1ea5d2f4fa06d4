"""HealthTracker with a controllable clock: uptime windows, percentiles, and the circuit breaker
(closed -> open -> half-open with exactly one probe -> closed / re-opened). No sleeps."""

from __future__ import annotations

import pytest

from keeprouter.routing.health import MAX_SAMPLES, HealthTracker

K = "m|p|up"


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def tracker(**kw: float) -> tuple[HealthTracker, Clock]:
    clock = Clock()
    return HealthTracker(clock, **kw), clock  # type: ignore[arg-type]


# ---- uptime ------------------------------------------------------------------------------------


def test_uptime_is_none_without_data() -> None:
    h, _ = tracker()
    assert h.uptime(K, 300) is None
    assert h.percentiles(K, "latency", 1800) == {}
    assert h.state(K) == "closed"
    assert not h.is_open(K)
    assert not h.recently_failed(K)


def test_uptime_windows_5m_30m_1d() -> None:
    h, clock = tracker(min_requests=10_000)  # keep the circuit out of this test
    # 20 hours ago: 4 failures
    for _ in range(4):
        h.failure(K)
    clock.advance(20 * 3600)
    # 20 minutes ago: 1 success, 1 failure
    h.success(K, 0.1, 10)
    h.failure(K)
    clock.advance(20 * 60)
    # now: 3 successes
    for _ in range(3):
        h.success(K, 0.1, 10)
    assert h.uptime(K, 300) == 100.0
    assert h.uptime(K, 1800) == 80.0  # 4 of 5
    assert h.uptime(K, 86400) == round(100 * 4 / 9, 2)
    clock.advance(301)
    assert h.uptime(K, 300) is None  # nothing in the last 5 minutes
    clock.advance(86400)
    assert h.uptime(K, 86400) is None  # everything aged out


def test_rate_limited_requests_do_not_count_against_uptime() -> None:
    h, _ = tracker()
    h.success(K, 0.1, 10)
    for _ in range(10):
        h.failure(K, rate_limited=True)
    assert h.uptime(K, 300) == 100.0
    assert h.state(K) == "closed"
    # ...but they do make the endpoint "recently failed" so the next request prefers another one
    assert h.recently_failed(K)


def test_only_rate_limited_means_no_uptime_data() -> None:
    h, _ = tracker()
    h.failure(K, rate_limited=True)
    assert h.uptime(K, 300) is None


def test_recently_failed_expires() -> None:
    h, clock = tracker(recent=30)
    h.failure(K)
    assert h.recently_failed(K)
    clock.advance(29.9)
    assert h.recently_failed(K)
    clock.advance(0.2)
    assert not h.recently_failed(K)


def test_endpoints_are_independent() -> None:
    h, _ = tracker(min_requests=2)
    for _ in range(3):
        h.failure("a")
    h.success("b", 0.1, 1)
    assert h.state("a") == "open"
    assert h.state("b") == "closed"
    assert h.uptime("b", 300) == 100.0


def test_samples_are_bounded() -> None:
    h, clock = tracker(min_requests=10**9)
    for _ in range(MAX_SAMPLES + 50):
        h.success(K, 0.1, 1)
        clock.advance(0.001)
    assert len(h._eps[K].samples) == MAX_SAMPLES


# ---- percentiles --------------------------------------------------------------------------------


def test_percentiles_nearest_rank() -> None:
    h, _ = tracker()
    for i in range(1, 101):  # latencies 0.01 .. 1.00, throughputs 1 .. 100
        h.success(K, i / 100, float(i))
    assert h.percentiles(K, "latency", 1800) == {"p50": 0.5, "p75": 0.75, "p90": 0.9, "p99": 0.99}
    assert h.percentiles(K, "throughput", 1800) == {"p50": 50.0, "p75": 75.0, "p90": 90.0, "p99": 99.0}
    assert h.latency(K) == 0.5
    assert h.throughput(K) == 50.0


def test_percentiles_small_samples() -> None:
    h, _ = tracker()
    h.success(K, 2.0, None)
    assert h.percentiles(K, "latency", 1800) == {"p50": 2.0, "p75": 2.0, "p90": 2.0, "p99": 2.0}
    assert h.percentiles(K, "throughput", 1800) == {}  # no throughput measured
    h.success(K, 1.0, None)
    h.success(K, 4.0, None)
    h.success(K, 3.0, None)
    assert h.percentiles(K, "latency", 1800) == {"p50": 2.0, "p75": 3.0, "p90": 4.0, "p99": 4.0}


def test_percentiles_ignore_failures_and_old_samples() -> None:
    h, clock = tracker(min_requests=10**9)
    h.success(K, 9.0, 1.0)
    clock.advance(1801)
    h.failure(K)
    h.success(K, 1.0, 50.0)
    assert h.percentiles(K, "latency", 1800) == {"p50": 1.0, "p75": 1.0, "p90": 1.0, "p99": 1.0}
    assert h.throughput(K) == 50.0


# ---- circuit breaker ----------------------------------------------------------------------------


def test_circuit_needs_min_requests() -> None:
    h, _ = tracker(min_requests=5)
    for _ in range(4):
        h.failure(K)
    assert h.state(K) == "closed"
    assert not h.is_open(K)
    h.failure(K)
    assert h.state(K) == "open"
    assert h.is_open(K)


def test_circuit_needs_most_requests_failing() -> None:
    h, _ = tracker(min_requests=4)
    for _ in range(3):
        h.success(K, 0.1, 1)
    for _ in range(3):
        h.failure(K)  # 3 of 6: not more than half
    assert h.state(K) == "closed"
    h.failure(K)  # 4 of 7
    assert h.state(K) == "open"


def test_circuit_counts_only_the_last_window() -> None:
    h, clock = tracker(min_requests=5, window=30)
    for _ in range(4):
        h.failure(K)
    clock.advance(31)  # those four are out of the window
    for _ in range(4):
        h.failure(K)
    assert h.state(K) == "closed"
    h.failure(K)
    assert h.state(K) == "open"


def test_rate_limits_never_open_the_circuit() -> None:
    h, _ = tracker(min_requests=2)
    for _ in range(50):
        h.failure(K, rate_limited=True)
    assert h.state(K) == "closed"
    # nor do they dilute real failures
    h.failure(K)
    h.failure(K)
    assert h.state(K) == "open"


def open_circuit(h: HealthTracker, n: int = 5) -> None:
    for _ in range(n):
        h.failure(K)
    assert h.state(K) == "open"


def test_half_open_after_cooldown_lets_exactly_one_probe_through() -> None:
    h, clock = tracker(cooldown=30)
    open_circuit(h)
    clock.advance(29.9)
    assert h.is_open(K)
    clock.advance(0.2)
    assert not h.is_open(K)  # this caller is the probe
    assert h.state(K) == "half_open"
    for _ in range(5):  # everyone else keeps skipping it while the probe is in flight
        assert h.is_open(K)


def test_probe_success_closes_the_circuit() -> None:
    h, clock = tracker(cooldown=30)
    open_circuit(h)
    clock.advance(30)
    assert not h.is_open(K)
    h.success(K, 0.2, 30)
    assert h.state(K) == "closed"
    assert not h.is_open(K)
    assert not h.is_open(K)


def test_probe_failure_reopens_for_a_full_cooldown() -> None:
    h, clock = tracker(cooldown=30)
    open_circuit(h)
    clock.advance(30)
    assert not h.is_open(K)
    h.failure(K)
    assert h.state(K) == "open"
    clock.advance(29)
    assert h.is_open(K)
    clock.advance(1)
    assert not h.is_open(K)  # the next probe
    assert h.is_open(K)


def test_a_probe_that_never_reports_does_not_leave_the_circuit_stuck() -> None:
    """The prober may never try the endpoint (another endpoint answered first): after another
    cooldown a new probe is let through instead of the endpoint staying out forever."""
    h, clock = tracker(cooldown=30)
    open_circuit(h)
    clock.advance(30)
    assert not h.is_open(K)  # probe granted, but nobody reports back
    clock.advance(29)
    assert h.is_open(K)
    clock.advance(1)
    assert not h.is_open(K)  # a fresh probe
    assert h.is_open(K)
    h.success(K, 0.1, 1)
    assert h.state(K) == "closed"


def test_a_rate_limited_probe_is_inconclusive() -> None:
    h, clock = tracker(cooldown=30)
    open_circuit(h)
    clock.advance(30)
    assert not h.is_open(K)
    h.failure(K, rate_limited=True)
    assert not h.is_open(K)  # probe again right away: a 429 says nothing about the outage
    h.success(K, 0.1, 1)
    assert h.state(K) == "closed"


def test_closed_again_needs_fresh_failures_to_reopen() -> None:
    h, clock = tracker(cooldown=30, min_requests=5, window=30)
    open_circuit(h)
    clock.advance(30)
    assert not h.is_open(K)
    h.success(K, 0.1, 1)
    assert h.state(K) == "closed"
    clock.advance(31)  # the failures that opened it are out of the window
    h.failure(K)
    assert h.state(K) == "closed"


@pytest.mark.parametrize("cycles", [3])
def test_full_cycle_repeats(cycles: int) -> None:
    h, clock = tracker(cooldown=10, min_requests=3, window=5)
    for _ in range(cycles):
        for _ in range(3):
            h.failure(K)
        assert h.state(K) == "open"
        clock.advance(10)
        assert not h.is_open(K)
        h.success(K, 0.1, 1)
        assert h.state(K) == "closed"
        clock.advance(6)


def test_time_to_first_token_and_end_to_end_latency_are_tracked_apart() -> None:
    from keeprouter.routing.health import HealthTracker

    now = [1000.0]
    h = HealthTracker(clock=lambda: now[0])
    for i in range(10):
        h.success("ep", latency=0.1 * (i + 1), throughput=50.0, total=2.0 + i)
    assert h.percentiles("ep", "latency", 1800)["p50"] == 0.5
    assert h.percentiles("ep", "total", 1800)["p50"] == 6.0
    h.success("ep", latency=0.3, throughput=None)  # not streamed: the whole answer is the first token
    assert h.percentiles("ep", "total", 1800)["p99"] == 11.0

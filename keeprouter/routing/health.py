"""Live endpoint health: outcomes, latency and throughput per endpoint, and a circuit breaker.

In-process and O(1) per request. Samples are kept for the last day in a bounded deque per endpoint.
Rate-limited requests (429) are not failures of the endpoint (OpenRouter's uptime rule), but they
do count as "recently failed" so the next request prefers another endpoint.

Circuit: closed -> open when, over the last `window` seconds, at least `min_requests` requests
were made and more than `failure_ratio` of them failed; open -> half-open after `cooldown`
seconds, when one probe request is let through; a success closes it, a failure re-opens it.
A probe that never reports back (the prober was served by another endpoint first) expires after
another `cooldown`, when a new probe is let through; a rate-limited probe is inconclusive and the
next caller probes again. Percentiles are nearest-rank.

`local_circuit` False hands the closed -> open decision to someone else (routing.shared_health,
which counts outcomes across instances in Redis and mirrors the circuits it opens).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_SAMPLES = 20_000  # per endpoint; bounds memory whatever the traffic


@dataclass(slots=True)
class Sample:
    at: float
    ok: bool
    rate_limited: bool
    latency: float | None  # seconds to first token (or to the whole answer when not streamed)
    throughput: float | None  # output tokens per second
    total: float | None = None  # seconds to the last token


@dataclass(slots=True)
class _Endpoint:
    samples: deque[Sample] = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    opened_at: float | None = None
    probing: bool = False
    probe_at: float = 0.0
    last_failure: float | None = None


class HealthTracker:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        window: float = 30.0,
        min_requests: int = 5,
        failure_ratio: float = 0.5,
        cooldown: float = 30.0,
        recent: float = 30.0,
    ) -> None:
        self.clock = clock
        self.window = window
        self.min_requests = min_requests
        self.failure_ratio = failure_ratio
        self.cooldown = cooldown
        self.recent = recent
        self.local_circuit = True
        self._eps: dict[str, _Endpoint] = {}

    async def start(self) -> None:
        """Start background work (none here; routing.shared_health has some). create_app owns it."""

    async def close(self) -> None:
        """Stop what `start` started."""

    def _ep(self, key: str) -> _Endpoint:
        ep = self._eps.get(key)
        if ep is None:
            ep = self._eps[key] = _Endpoint()
        return ep

    # ---- recording ----
    def success(self, key: str, latency: float | None, throughput: float | None, total: float | None = None) -> None:
        """`latency`: time to first token; `total`: to the last (the same when not streamed)."""
        ep = self._ep(key)
        end = total if total is not None else latency
        ep.samples.append(Sample(self.clock(), True, False, latency, throughput, end))
        ep.opened_at = None
        ep.probing = False

    def failure(self, key: str, *, rate_limited: bool = False) -> None:
        now = self.clock()
        ep = self._ep(key)
        ep.samples.append(Sample(now, False, rate_limited, None, None))
        ep.last_failure = now
        if rate_limited:
            ep.probing = False  # a rate-limited probe says nothing about the outage: probe again
            return
        if ep.probing:  # the half-open probe failed
            ep.opened_at = now
            ep.probing = False
            return
        if self.local_circuit and ep.opened_at is None and self._failing(ep, now):
            ep.opened_at = now

    def _failing(self, ep: _Endpoint, now: float) -> bool:
        total = failed = 0
        for s in reversed(ep.samples):
            if now - s.at > self.window:
                break
            if s.rate_limited:
                continue
            total += 1
            failed += not s.ok
        return total >= self.min_requests and failed > total * self.failure_ratio

    # ---- routing.select.Stats ----
    def is_open(self, key: str) -> bool:
        ep = self._eps.get(key)
        if ep is None or ep.opened_at is None:
            return False
        now = self.clock()
        if ep.probing and now - ep.probe_at < self.cooldown:
            return True  # a probe is in flight
        if now - ep.opened_at >= self.cooldown:
            ep.probing = True  # half-open: this caller is the probe
            ep.probe_at = now
            return False
        return True

    def recently_failed(self, key: str) -> bool:
        ep = self._eps.get(key)
        return ep is not None and ep.last_failure is not None and self.clock() - ep.last_failure < self.recent

    def throughput(self, key: str) -> float | None:
        return self.percentiles(key, "throughput", 1800.0).get("p50")

    def latency(self, key: str) -> float | None:
        return self.percentiles(key, "latency", 1800.0).get("p50")

    # ---- reporting ----
    def keys(self) -> list[str]:
        """Every endpoint with samples (for routing.rollup)."""
        return list(self._eps)

    def samples(self, key: str, since: float) -> list[Sample]:
        """Samples recorded at or after `since` (tracker clock), oldest first."""
        ep = self._eps.get(key)
        if ep is None:
            return []
        out: list[Sample] = []
        for s in reversed(ep.samples):
            if s.at < since:
                break
            out.append(s)
        out.reverse()
        return out

    def uptime(self, key: str, seconds: float) -> float | None:
        """Percent of non-rate-limited requests that succeeded; None without data."""
        ep = self._eps.get(key)
        if ep is None:
            return None
        now = self.clock()
        total = ok = 0
        for s in reversed(ep.samples):
            if now - s.at > seconds:
                break
            if s.rate_limited:
                continue
            total += 1
            ok += s.ok
        return round(100.0 * ok / total, 2) if total else None

    def percentiles(self, key: str, metric: str, seconds: float) -> dict[str, float]:
        ep = self._eps.get(key)
        if ep is None:
            return {}
        now = self.clock()
        values: list[float] = []
        for s in reversed(ep.samples):
            if now - s.at > seconds:
                break
            v = s.latency if metric == "latency" else s.total if metric == "total" else s.throughput
            if v is not None:
                values.append(v)
        if not values:
            return {}
        values.sort()
        n = len(values)
        return {f"p{q}": values[max(0, (n * q + 99) // 100 - 1)] for q in (50, 75, 90, 99)}

    def state(self, key: str) -> str:
        ep = self._eps.get(key)
        if ep is None or ep.opened_at is None:
            return "closed"
        return "half_open" if ep.probing else "open"

"""Prometheus metrics (`GET /metrics`), one registry per app.

Labels are bounded by construction: `model` is a configured model id (a requested name the config
does not know becomes "other"), `provider` a configured provider id (or "none" when no endpoint
served), `api` one of the client APIs, `status` the generation's outcome (`ok`, `cancelled`,
`error`) or the HTTP status of a refused or failed request. Never a key, a key name or a prompt.

With several workers (PROMETHEUS_MULTIPROC_DIR set by the supervisor, before this module's first
import) each process writes its values to files there and a scrape of any worker adds them up.

Hot path: the labelled children are cached per label tuple, so a settled generation costs a dict
lookup and a few float additions (measured in tests/observe/test_metrics.py's micro-benchmark).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# OpenTelemetry GenAI semantic conventions' explicit bucket boundaries (seconds):
# gen_ai.server.request.duration and gen_ai.server.time_to_first_token.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
OTHER = "other"
NONE = "none"
CIRCUIT = {"closed": 0, "half_open": 1, "open": 2}


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    """Every metric KeepRouter exports. `models` bounds the model label (anything else is "other")."""

    def __init__(self, models: Collection[str], public: bool = False, token: str | None = None) -> None:
        self.public = public  # readable without the admin key (KEEPROUTER_METRICS_PUBLIC=1)
        # `metrics_token` in the config: a scrape-only secret, so a Prometheus config never holds
        # the admin key (which can mint keys). It opens /metrics and nothing else: only this
        # class knows it, and KeyService never sees it.
        self._token = token.encode() if token else None
        self.registry = CollectorRegistry(auto_describe=True)
        self.models = frozenset(models)
        r = self.registry
        self.requests = Counter("keeprouter_requests", "Requests to the client APIs, by outcome",
                                ["model", "provider", "api", "status"], registry=r)  # fmt: skip
        self.duration = Histogram("keeprouter_request_duration_seconds", "Request duration, to its last byte",
                                  ["model", "provider", "api"], buckets=DURATION_BUCKETS, registry=r)  # fmt: skip
        self.ttft = Histogram("keeprouter_time_to_first_token_seconds", "Time to the first token",
                              ["model", "provider", "api"], buckets=TTFT_BUCKETS, registry=r)  # fmt: skip
        self.tokens = Counter("keeprouter_tokens", "Tokens by type (prompt, completion, cached, reasoning)",
                              ["model", "provider", "type"], registry=r)  # fmt: skip
        self.cost = Counter("keeprouter_cost_usd", "Cost charged to keys, USD", ["model", "provider"], registry=r)
        # Gauges of several workers: up if any worker can reach the endpoint; the worst circuit state.
        self.endpoint_up = Gauge("keeprouter_endpoint_up", "1 while the endpoint's circuit is not open",
                                 ["model", "provider"], multiprocess_mode="livemax", registry=r)  # fmt: skip
        self.circuit = Gauge("keeprouter_endpoint_circuit_state", "Circuit breaker: 0 closed, 1 half-open, 2 open",
                             ["model", "provider"], multiprocess_mode="livemax", registry=r)  # fmt: skip
        self.streams = Gauge("keeprouter_streams_in_flight", "Streams being relayed now",
                             multiprocess_mode="livesum", registry=r)  # fmt: skip
        self._served: dict[tuple[str, str, str, str], _Served] = {}
        self._refused: dict[tuple[str, str, str], Any] = {}

    def scrape_token_ok(self, headers: Mapping[str, str]) -> bool:
        """True when `Authorization: Bearer TOKEN` carries the configured metrics token (compared in
        constant time; never logged)."""
        if self._token is None:
            return False
        scheme, _, presented = (headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(presented.strip().encode(), self._token)

    def model_label(self, model: str) -> str:
        return model if model in self.models else OTHER

    def settled(self, model: str, provider: str, api: str, status: str, latency: float, ttft: float,
                prompt: int, completion: int, cached: int, reasoning: int, cost: Decimal) -> None:  # fmt: skip
        """One generation an endpoint served, however it ended."""
        key = (model, provider, api, status)
        s = self._served.get(key)
        if s is None:
            s = self._served[key] = _Served(self, self.model_label(model), provider, api, status)
        s.requests.inc()
        s.duration.observe(latency)
        s.ttft.observe(ttft)
        if prompt:
            s.prompt.inc(prompt)
        if completion:
            s.completion.inc(completion)
        if cached:
            s.cached.inc(cached)
        if reasoning:
            s.reasoning.inc(reasoning)
        if cost:
            s.cost.inc(float(cost))

    def refused(self, model: str, api: str, status: int) -> None:
        """A request no endpoint served: refused (4xx) or failed on every endpoint (5xx)."""
        key = (self.model_label(model), api, str(status))  # keyed by the label: a bounded cache
        c = self._refused.get(key)
        if c is None:
            c = self._refused[key] = self.requests.labels(key[0], NONE, api, key[2])
        c.inc()

    def endpoint(self, model: str, provider: str, state: str) -> None:
        self.endpoint_up.labels(model, provider).set(0 if state == "open" else 1)
        self.circuit.labels(model, provider).set(CIRCUIT.get(state, 0))

    def render(self) -> bytes:
        """The text exposition: this process's registry, or every worker's files when there are several."""
        if multiprocess():
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


class _Served:
    """The labelled children one (model, provider, api, status) touches, looked up once."""

    __slots__ = ("cached", "completion", "cost", "duration", "prompt", "reasoning", "requests", "ttft")

    def __init__(self, m: Metrics, model: str, provider: str, api: str, status: str) -> None:
        self.requests = m.requests.labels(model, provider, api, status)
        self.duration = m.duration.labels(model, provider, api)
        self.ttft = m.ttft.labels(model, provider, api)
        self.prompt = m.tokens.labels(model, provider, "prompt")
        self.completion = m.tokens.labels(model, provider, "completion")
        self.cached = m.tokens.labels(model, provider, "cached")
        self.reasoning = m.tokens.labels(model, provider, "reasoning")
        self.cost = m.cost.labels(model, provider)

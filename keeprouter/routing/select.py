"""Endpoint selection, pure: which endpoints can serve a request, and in which order to try them.

Filters (an endpoint is dropped when): the prompt alone leaves less than `fit.MIN_OUTPUT` of its
context (prompt + requested output that does not fit is served with a lower output budget, after the
endpoints where it fits whole; when only the prompt's size excluded endpoints, the answer is a 400
`ContextLengthExceeded`, never a 404 for a model that exists); tools are asked for and it lacks
`tools`; the caller's `only`/`ignore`/`max_price` exclude it; the caller set
`require_parameters` and it lacks a capability the request uses; its circuit is open.
Order: caller's `order` first; then `sort` (price | throughput | latency) when given; otherwise a
load-balanced shuffle weighted by 1/price² (OpenRouter's rule) with recently failed endpoints last.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from keeprouter.config import EndpointConfig, ModelConfig
from keeprouter.errors import ContextLengthExceeded, InvalidRequest, NotFound
from keeprouter.formats.canonical import ChatRequest
from keeprouter.routing.fit import max_prompt, prompt_bound

SORTS = ("price", "throughput", "latency")


@dataclass(frozen=True, slots=True)
class Candidate:
    model: ModelConfig
    endpoint: EndpointConfig
    # endpoint_key, made once: routing, health, affinity and metrics read it several times a request
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", endpoint_key(self.model.id, self.endpoint))


def endpoint_key(model_id: str, ep: EndpointConfig) -> str:
    return f"{model_id}|{ep.provider}|{ep.model}"


_CANDIDATES: dict[tuple[int, int], Candidate] = {}  # by ids; an entry holds its objects, so no id is reused
_CANDIDATES_MAX = 4096  # a safety bound: a deployment has far fewer endpoints


def _candidate(model: ModelConfig, ep: EndpointConfig) -> Candidate:
    """`Candidate(model, ep)`, made once per endpoint (it is immutable) rather than per request."""
    ids = (id(model), id(ep))
    c = _CANDIDATES.get(ids)
    if c is None or c.model is not model or c.endpoint is not ep:
        if len(_CANDIDATES) >= _CANDIDATES_MAX:
            _CANDIDATES.clear()
        c = _CANDIDATES[ids] = Candidate(model, ep)
    return c


@dataclass(slots=True)
class ProviderPrefs:
    """OpenRouter's `provider` object. Prices are USD per 1M tokens, latency in seconds."""

    order: list[str] = field(default_factory=list)
    only: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    allow_fallbacks: bool = True
    require_parameters: bool = False
    sort: str | None = None
    max_prompt_price: Decimal | None = None
    max_completion_price: Decimal | None = None
    min_throughput: float | None = None
    max_latency: float | None = None


class Stats(Protocol):
    """Live endpoint health, as routing sees it (see routing.health)."""

    def is_open(self, key: str) -> bool:
        """Circuit open: the endpoint fails most requests right now; skip it."""
        ...

    def recently_failed(self, key: str) -> bool: ...

    def throughput(self, key: str) -> float | None:
        """Median output tokens per second over the recent window."""
        ...

    def latency(self, key: str) -> float | None:
        """Median time to first token, in seconds, over the recent window."""
        ...


def parse_prefs(raw: Any) -> ProviderPrefs:
    if raw is None:
        return ProviderPrefs()
    if not isinstance(raw, dict):
        raise InvalidRequest("provider: must be an object")
    p = ProviderPrefs()
    p.order = _names(raw.get("order"), "provider.order") or []
    only = raw.get("only")
    p.only = _names(only, "provider.only") if only is not None else None
    p.ignore = _names(raw.get("ignore"), "provider.ignore") or []
    p.allow_fallbacks = _bool(raw.get("allow_fallbacks", True), "provider.allow_fallbacks")
    p.require_parameters = _bool(raw.get("require_parameters", False), "provider.require_parameters")
    sort = raw.get("sort")
    if isinstance(sort, dict):
        sort = sort.get("by")
    if sort is not None and sort not in SORTS:
        raise InvalidRequest(f"provider.sort: must be one of {', '.join(SORTS)}")
    p.sort = sort
    max_price = raw.get("max_price")
    if max_price is not None:
        if not isinstance(max_price, dict):
            raise InvalidRequest("provider.max_price: must be an object")
        p.max_prompt_price = _price(max_price.get("prompt"), "provider.max_price.prompt")
        p.max_completion_price = _price(max_price.get("completion"), "provider.max_price.completion")
    p.min_throughput = _percentile(raw.get("preferred_min_throughput"), "provider.preferred_min_throughput")
    p.max_latency = _percentile(raw.get("preferred_max_latency"), "provider.preferred_max_latency")
    return p


def plan(
    models: list[ModelConfig],
    req: ChatRequest,
    prefs: ProviderPrefs,
    prompt_tokens: int,
    stats: Stats,
    rng: random.Random | None = None,
) -> list[Candidate]:
    """Every endpoint able to serve `req`, in the order to try them: models in the caller's order,
    each model's endpoints ordered by the rules in the module docstring."""
    result: list[Candidate] = []
    reasons: set[str] = set()
    too_long: list[int] = []  # the prompt limits of the endpoints the prompt alone overflows
    for model in models:
        eligible = [
            _candidate(model, ep)
            for ep in model.endpoints
            if _eligible(ep, req, prefs, prompt_tokens, reasons, too_long)
        ]
        usable = [c for c in eligible if not stats.is_open(c.key)]
        if not usable and eligible:
            # Every endpoint's circuit is open: try them anyway rather than refuse outright.
            usable = eligible
        ordered = _order(usable, prefs, stats, rng or random)
        if (
            req.max_tokens is not None
            and len(ordered) > 1  # one endpoint has nothing to move after
            and any(_cut(c.endpoint, req.max_tokens, prompt_tokens) for c in ordered)
        ):
            # endpoints that must lower the output budget come after those where it fits whole
            ordered = [c for c in ordered if not _cut(c.endpoint, req.max_tokens, prompt_tokens)] + [
                c for c in ordered if _cut(c.endpoint, req.max_tokens, prompt_tokens)
            ]
        result.extend(ordered)
    if not result:
        if too_long:
            raise ContextLengthExceeded(prompt_tokens, max(too_long))
        why = "; ".join(sorted(reasons)) or "no endpoint is configured for this model"
        if reasons and all(r.endswith(_REQUIRED) for r in reasons):
            # the caller's own demand refused it: a request error, not a missing model
            raise InvalidRequest(f"No endpoints found that can serve this request: {why}")
        raise NotFound(f"No endpoints found that can serve this request: {why}")
    if not prefs.allow_fallbacks:
        return result[:1]
    return result


_REQUIRED = " (provider.require_parameters is true)"


def _cut(ep: EndpointConfig, max_tokens: int, prompt: int) -> bool:
    """Whether `ep` can serve only with fewer output tokens than requested."""
    return bool(ep.context_length) and prompt_bound(prompt) + max_tokens > ep.context_length


def _eligible(
    ep: EndpointConfig, req: ChatRequest, p: ProviderPrefs, prompt: int, reasons: set[str], too_long: list[int]
) -> bool:
    caps = ep.capabilities
    if p.only is not None and ep.provider not in p.only:
        reasons.add("excluded by provider.only")
        return False
    if ep.provider in p.ignore:
        reasons.add("excluded by provider.ignore")
        return False
    if p.order and not p.allow_fallbacks and ep.provider not in p.order:
        reasons.add("not in provider.order and allow_fallbacks is false")
        return False
    limit = max_prompt(ep)
    if limit is not None and prompt > limit:
        too_long.append(limit)
        return False
    if req.tools and "tools" not in caps:
        reasons.add("no endpoint supports tool use")
        return False
    if req.stream and "streaming" not in caps:
        reasons.add("no endpoint supports streaming")
        return False
    if p.require_parameters:
        if req.response_format is not None and "response_format" not in caps:
            reasons.add("no endpoint supports response_format" + _REQUIRED)
            return False
        if req.reasoning is not None and req.reasoning.on and "reasoning" not in caps:
            reasons.add("no endpoint supports reasoning" + _REQUIRED)
            return False
    if p.max_prompt_price is not None and ep.pricing.input > p.max_prompt_price:
        reasons.add("every endpoint is above provider.max_price")
        return False
    if p.max_completion_price is not None and ep.pricing.output > p.max_completion_price:
        reasons.add("every endpoint is above provider.max_price")
        return False
    return True


def _order(cands: list[Candidate], p: ProviderPrefs, stats: Stats, rng: Any) -> list[Candidate]:
    if len(cands) <= 1:
        return cands
    head: list[Candidate] = []
    if p.order:
        rank = {name: i for i, name in enumerate(p.order)}
        head = sorted((c for c in cands if c.endpoint.provider in rank), key=lambda c: rank[c.endpoint.provider])
        cands = [c for c in cands if c.endpoint.provider not in rank]
    if p.sort == "price":
        tail = sorted(cands, key=_price_of)
    elif p.sort == "throughput":
        tail = sorted(cands, key=lambda c: -(stats.throughput(c.key) or 0.0))
    elif p.sort == "latency":
        tail = sorted(cands, key=lambda c: stats.latency(c.key) or float("inf"))
    else:
        tail = _weighted_shuffle(cands, rng)
    tail = _deprioritise(tail, p, stats)
    return head + tail


def _weighted_shuffle(cands: list[Candidate], rng: Any) -> list[Candidate]:
    """Order by weighted sampling without replacement, weight 1/price² (free endpoints weigh most)."""
    weights = []
    for c in cands:
        price = float(_price_of(c))
        weights.append(1.0 / (price * price) if price > 0 else 1e12)
    out: list[Candidate] = []
    pool = list(zip(cands, weights, strict=True))
    while pool:
        total = sum(w for _, w in pool)
        r = rng.random() * total
        for i, (c, w) in enumerate(pool):
            r -= w
            if r <= 0 or i == len(pool) - 1:
                out.append(c)
                pool.pop(i)
                break
    return out


def _deprioritise(cands: list[Candidate], p: ProviderPrefs, stats: Stats) -> list[Candidate]:
    """Stable partition: endpoints that failed recently or miss the caller's speed wishes go last."""

    def slow(c: Candidate) -> bool:
        if p.min_throughput is not None:
            t = stats.throughput(c.key)
            if t is not None and t < p.min_throughput:
                return True
        if p.max_latency is not None:
            lat = stats.latency(c.key)
            if lat is not None and lat > p.max_latency:
                return True
        return False

    good = [c for c in cands if not stats.recently_failed(c.key) and not slow(c)]
    bad = [c for c in cands if stats.recently_failed(c.key) or slow(c)]
    return good + bad


def _price_of(c: Candidate) -> Decimal:
    return c.endpoint.pricing.input + c.endpoint.pricing.output


def _names(v: Any, where: str) -> list[str] | None:
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise InvalidRequest(f"{where}: must be a list of provider names")
    return list(v)


def _bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise InvalidRequest(f"{where}: must be a boolean")
    return v


def _price(v: Any, where: str) -> Decimal | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise InvalidRequest(f"{where}: must be a number (USD per 1M tokens)")
    try:
        return Decimal(str(v))
    except ArithmeticError:
        raise InvalidRequest(f"{where}: must be a number (USD per 1M tokens)") from None


def _percentile(v: Any, where: str) -> float | None:
    """A number, or OpenRouter's {p50, p75, p90, p99} object (we use p50)."""
    if v is None:
        return None
    if isinstance(v, dict):
        v = v.get("p50")
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise InvalidRequest(f"{where}: must be a number or an object with p50")
    return float(v)

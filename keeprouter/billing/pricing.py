"""Exact money: what a request costs, billed at cost, and how money is stored.

Pure functions, no I/O. Prices come from `config.Pricing` (USD per 1M tokens, Decimal); token counts
from `canonical.Usage`, whose `input_tokens` INCLUDES cache reads and writes and whose `output_tokens`
INCLUDES reasoning tokens. Every provider goes through the one `cost` function, so a cached token is
billed exactly once, at its own price (double billing comes from adding cache tokens on top of an
input count that already contains them). A 1-hour cache write is a cache write with its own price.

Storage unit: integer nano-dollars (1e-9 USD). Integers because SQLite has no exact decimal type
(its NUMERIC affinity silently turns 0.1 into a binary float) and integer sums are exact in every
database; nano rather than micro because a micro-dollar cannot represent a cheap request
(7 tokens x $0.10/1M = $0.0000007 = 700 nano-dollars). A BIGINT of nano-dollars still holds
$9.2 billion. A request's exact Decimal cost is rounded ONCE, half-even, to a whole nano-dollar
before it is stored; a key's usage is the sum of those stored integers, so the sum of the records
equals the key's usage exactly. Reservations round UP, so a hold never covers less than its
estimate.
"""

from __future__ import annotations

from decimal import Decimal

from keeprouter.config import Pricing
from keeprouter.formats.canonical import Usage

# The storage unit is the store's to define (billing depends on store, never the reverse);
# re-exported here so money code has one import.
from keeprouter.store.base import from_nanos, to_nanos, to_nanos_ceil

__all__ = [
    "NANOS_PER_USD", "ZERO", "cache_discount", "cache_saving", "charge", "cost", "from_nanos", "insured",
    "quantize", "rounded_cost", "to_float", "to_nanos", "to_nanos_ceil", "worst_case",
]  # fmt: skip

ZERO = Decimal(0)
NANOS_PER_USD = 1_000_000_000


class _Prices:
    """The per-1M prices that apply to one request, after tier selection and fallbacks."""

    __slots__ = ("cache_read", "cache_write", "cache_write_1h", "input", "output")

    def __init__(
        self, input: Decimal, output: Decimal, cache_read: Decimal, cache_write: Decimal, cache_write_1h: Decimal
    ) -> None:
        self.input = input
        self.output = output
        self.cache_read = cache_read
        self.cache_write = cache_write
        self.cache_write_1h = cache_write_1h


def _prices(pricing: Pricing, prompt_tokens: int) -> _Prices:
    """The highest tier whose `min_prompt_tokens <= prompt_tokens` replaces the base prices.

    A tier without its own cache prices falls back to the tier's `input` (not the base cache
    price): long-context tiers raise every input-side price, so the base one would under-bill.
    A 1-hour write without its own price costs what a 5-minute write costs.
    """
    inp, out = pricing.input, pricing.output
    cr, cw, cw1h = pricing.cache_read, pricing.cache_write, pricing.cache_write_1h
    best = -1
    # No reliance on the config loader's sort: a hand-built Pricing must price the same.
    for tier in pricing.tiers:
        if best < tier.min_prompt_tokens <= prompt_tokens:
            best = tier.min_prompt_tokens
            inp, out, cr, cw, cw1h = tier.input, tier.output, tier.cache_read, tier.cache_write, tier.cache_write_1h
    write = inp if cw is None else cw
    return _Prices(inp, out, inp if cr is None else cr, write, write if cw1h is None else cw1h)


class _Exact:
    """One tierless `Pricing`, prepared once for the per-request arithmetic: every per-1M price as an
    integer count of 10**exp (one `exp` for all), so a cost is summed in integers and rounded to
    nano-dollars once, exactly as `quantize(cost(...))` rounds; and the prices `worst_case` uses."""

    __slots__ = (
        "in_price", "input", "out_price", "output", "read", "reasoning", "request", "scale", "unit", "write",
        "write_1h",
    )  # fmt: skip

    def __init__(self, pricing: Pricing) -> None:
        p = _prices(pricing, 0)
        self.in_price = max(p.input, p.cache_write, p.cache_write_1h, p.cache_read)
        self.out_price = p.output if pricing.reasoning is None else max(p.output, pricing.reasoning)
        reasoning = p.output if pricing.reasoning is None else pricing.reasoning  # the same sum when unset
        request = ZERO if pricing.request is None else pricing.request.scaleb(6)  # per-1M scale, as in `cost`
        values = (p.input, p.cache_read, p.cache_write, p.cache_write_1h, p.output, reasoning, request)
        exp = min(int(v.as_tuple().exponent) for v in values)
        # a sum of 10**exp per-1M-token units is a sum x 10**(exp + 3) nano-dollars: multiplied by
        # `scale`, or divided by `unit` (then rounded)
        self.scale = 10 ** max(exp + 3, 0)
        self.unit = 10 ** max(-(exp + 3), 0)
        self.input, self.read, self.write, self.write_1h, self.output, self.reasoning, self.request = (
            int(v.scaleb(-exp)) for v in values
        )


_EXACT: dict[int, tuple[Pricing, _Exact | None]] = {}  # by id; the entry holds its Pricing, so no id is reused
_EXACT_MAX = 4096  # configured endpoints' prices: a bound that is never reached, only a safety


def _exact(pricing: Pricing) -> _Exact | None:
    """`pricing` prepared (`_Exact`), or None when the Decimal path must price it: tiers (chosen per
    request), or a price that is negative or not finite (no config loads one; a hand-built one may)."""
    hit = _EXACT.get(id(pricing))
    if hit is not None and hit[0] is pricing:
        return hit[1]
    prices = (pricing.input, pricing.output, pricing.cache_read, pricing.cache_write, pricing.cache_write_1h,
              pricing.reasoning, pricing.request)  # fmt: skip
    ok = not pricing.tiers and all(v is None or (v.is_finite() and v >= 0) for v in prices)
    exact = _Exact(pricing) if ok else None
    if len(_EXACT) >= _EXACT_MAX:
        _EXACT.clear()
    _EXACT[id(pricing)] = (pricing, exact)
    return exact


class _Split:
    """A usage's input side split by price: uncached, cache reads, 5-minute and 1-hour writes."""

    __slots__ = ("read", "uncached", "write_1h", "write_5m")

    def __init__(self, usage: Usage) -> None:
        self.read = max(usage.cache_read_tokens, 0)
        write = max(usage.cache_write_tokens, 0)
        self.write_1h = min(max(usage.cache_write_1h_tokens, 0), write)
        self.write_5m = write - self.write_1h
        self.uncached = max(usage.input_tokens - self.read - write, 0)


def cost(usage: Usage, pricing: Pricing) -> Decimal:
    """The exact USD cost of `usage` at `pricing`: no markup, no rounding, no float.

    uncached input = input - cache_read - cache_write (never negative: inconsistent upstream
    counts are clamped rather than producing a credit); the 1-hour share of the writes
    (`cache_write_1h_tokens`, at most `cache_write_tokens`) is billed at `cache_write_1h`;
    reasoning tokens are part of `output_tokens` and only re-priced when `pricing.reasoning` is set.
    `pricing.request`, when set, is added once per call (a rerank search).
    """
    p = _prices(pricing, usage.input_tokens)
    s = _Split(usage)
    output = max(usage.output_tokens, 0)
    reasoning = min(max(usage.reasoning_tokens, 0), output)
    total = s.uncached * p.input + s.read * p.cache_read + s.write_5m * p.cache_write + s.write_1h * p.cache_write_1h
    if pricing.reasoning is not None and reasoning:
        total += (output - reasoning) * p.output + reasoning * pricing.reasoning
    else:
        total += output * p.output
    if pricing.request is not None:
        total += pricing.request.scaleb(6)  # USD per call, in the per-1M-tokens scale of `total`
    # scaleb shifts the exponent: an exact division by 1e6 whatever the context precision.
    return total.scaleb(-6)


def cache_saving(usage: Usage, pricing: Pricing) -> Decimal:
    """What the prompt cache saved, exactly (OpenRouter's `cache_discount`): the cached tokens priced
    as plain input minus what they cost. Reads save; writes cost more than input at Anthropic, so a
    generation that mostly writes has a negative saving."""
    p = _prices(pricing, usage.input_tokens)
    s = _Split(usage)
    total = (
        s.read * (p.input - p.cache_read)
        + s.write_5m * (p.input - p.cache_write)
        + s.write_1h * (p.input - p.cache_write_1h)
    )
    return total.scaleb(-6)


def worst_case(prompt_tokens: int, max_output_tokens: int, pricing: Pricing) -> Decimal:
    """An upper bound on a request's cost, for its credit reservation.

    Every prompt token at the highest applicable input-side price (a cache write can cost more
    than plain input) and every possible output token at the highest output-side price.
    `prompt_tokens` should itself be an upper-bound estimate; tiers are chosen from it.
    """
    exact = _exact(pricing)
    if exact is not None:  # tierless: the same two prices for every request, found once
        in_price, out_price = exact.in_price, exact.out_price
    else:
        p = _prices(pricing, prompt_tokens)
        in_price = max(p.input, p.cache_write, p.cache_write_1h, p.cache_read)
        out_price = p.output if pricing.reasoning is None else max(p.output, pricing.reasoning)
    total = max(prompt_tokens, 0) * in_price + max(max_output_tokens, 0) * out_price
    if pricing.request is not None:
        total += pricing.request.scaleb(6)
    return total.scaleb(-6)


def insured(finish_reason: str | None, completion_tokens: int) -> bool:
    """OpenRouter's zero-completion insurance: nothing is charged for a generation that ended in
    error, or that produced no completion tokens and no finish reason (it never really ran)."""
    return finish_reason == "error" or (completion_tokens == 0 and not finish_reason)


def charge(usage: Usage, pricing: Pricing, finish_reason: str | None) -> Decimal:
    """What the caller pays for a finished generation: `cost` rounded to the storage unit, or 0 when
    the generation is insured. This is the number to put in `GenerationRecord.cost`."""
    if insured(finish_reason, usage.output_tokens):
        return ZERO
    return rounded_cost(usage, pricing)


# Below this many units of 10**exp, the Decimal sums of `cost` are exact too (the default context
# keeps 28 digits): the integer path then gives exactly their result; above it, they are the rule.
_EXACT_BOUND = 10**27


def rounded_cost(usage: Usage, pricing: Pricing) -> Decimal:
    """`quantize(cost(usage, pricing))`, the same Decimal, summed in integers: what every generation
    pays per request. The Decimal path prices what `_exact` does not prepare."""
    e = _exact(pricing)
    if e is None:
        return quantize(cost(usage, pricing))
    # `_Split` and `cost`'s clamps, in integers
    output = usage.output_tokens if usage.output_tokens > 0 else 0
    reasoning = usage.reasoning_tokens
    reasoning = output if reasoning > output else reasoning if reasoning > 0 else 0
    read, write = usage.cache_read_tokens, usage.cache_write_tokens
    if read > 0 or write > 0:
        read, write = max(read, 0), max(write, 0)
        write_1h = min(max(usage.cache_write_1h_tokens, 0), write)
        total = read * e.read + (write - write_1h) * e.write + write_1h * e.write_1h
        uncached = usage.input_tokens - read - write
    else:
        total, uncached = 0, usage.input_tokens
    if uncached > 0:
        total += uncached * e.input
    total += (output - reasoning) * e.output + reasoning * e.reasoning + e.request
    if total >= _EXACT_BOUND:
        return quantize(cost(usage, pricing))
    # total x 10**exp USD per 1M tokens = total x 10**(exp + 3) nano-dollars, rounded half-even
    unit = e.unit
    if unit == 1:
        return from_nanos(total * e.scale)
    nanos, rest = divmod(total, unit)
    rest *= 2
    if rest > unit or (rest == unit and nanos & 1):
        nanos += 1
    return from_nanos(nanos)


def cache_discount(usage: Usage, pricing: Pricing, finish_reason: str | None) -> Decimal:
    """The `cache_discount` recorded on a finished generation: `cache_saving` rounded to the storage
    unit, or 0 when the generation is insured (nothing was charged, so nothing was saved)."""
    if insured(finish_reason, usage.output_tokens):
        return ZERO
    return quantize(cache_saving(usage, pricing))


def quantize(usd: Decimal) -> Decimal:
    """`usd` rounded half-even to a whole nano-dollar: exactly what the ledger will store."""
    return from_nanos(to_nanos(usd))


def to_float(usd: Decimal) -> float:
    """USD for JSON bodies (OpenRouter sends numbers): the nearest double. Display only; never sum
    these."""
    return float(usd)

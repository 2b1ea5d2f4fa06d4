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
    "quantize", "to_float", "to_nanos", "to_nanos_ceil", "worst_case",
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
    p = _prices(pricing, prompt_tokens)
    in_price = max(p.input, p.cache_write, p.cache_write_1h, p.cache_read)
    out_price = p.output if pricing.reasoning is None else max(p.output, pricing.reasoning)
    total = max(prompt_tokens, 0) * in_price + max(max_output_tokens, 0) * out_price
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
    return quantize(cost(usage, pricing))


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

"""billing.pricing: exact, at-cost prices for every provider, from the canonical Usage only."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keeprouter.billing import pricing
from keeprouter.billing.pricing import (
    charge,
    cost,
    from_nanos,
    insured,
    quantize,
    to_nanos,
    to_nanos_ceil,
    worst_case,
)
from keeprouter.config import PriceTier, Pricing
from keeprouter.formats.canonical import Usage

D = Decimal
SONNET = Pricing(input=D("3"), output=D("15"), cache_read=D("0.30"), cache_write=D("3.75"))
FLAT = Pricing(input=D("0.20"), output=D("0.20"))
GEMINI_PRO = Pricing(
    input=D("1.25"),
    output=D("10"),
    cache_read=D("0.31"),
    tiers=(PriceTier(min_prompt_tokens=200_001, input=D("2.50"), output=D("15"), cache_read=D("0.625")),),
)


def test_plain_request_is_tokens_times_price_per_million() -> None:
    assert cost(Usage(input_tokens=1000, output_tokens=500), FLAT) == D("0.0003")


def test_cheap_request_is_exact_below_a_micro_dollar() -> None:
    c = cost(Usage(input_tokens=7), Pricing(input=D("0.10"), output=D("0.10")))
    assert c == D("0.0000007")
    assert to_nanos(c) == 700


def test_cache_reads_are_inside_input_and_billed_once_at_their_own_price() -> None:
    # Anthropic reports input 200 + cache_read 800; canonical input_tokens is 1000 (pitfalls §2.2).
    usage = Usage(input_tokens=1000, cache_read_tokens=800, output_tokens=100)
    assert cost(usage, SONNET) == (200 * D("3") + 800 * D("0.30") + 100 * D("15")) / 1_000_000


def test_cache_writes_are_inside_input_and_billed_once_at_their_own_price() -> None:
    usage = Usage(input_tokens=1000, cache_write_tokens=600, cache_read_tokens=300, output_tokens=0)
    expected = (100 * D("3") + 600 * D("3.75") + 300 * D("0.30")) / 1_000_000
    assert cost(usage, SONNET) == expected


def test_cached_tokens_never_cost_more_than_uncached_when_cache_is_cheaper() -> None:
    """The LiteLLM double-billing class: a cache hit must make a request cheaper, never dearer."""
    full = cost(Usage(input_tokens=10_000, output_tokens=10), SONNET)
    hit = cost(Usage(input_tokens=10_000, cache_read_tokens=9_000, output_tokens=10), SONNET)
    assert hit < full


def test_cache_prices_fall_back_to_input() -> None:
    usage = Usage(input_tokens=1000, cache_read_tokens=400, cache_write_tokens=100)
    assert cost(usage, FLAT) == cost(Usage(input_tokens=1000), FLAT)


def test_inconsistent_cache_counts_never_produce_a_credit() -> None:
    usage = Usage(input_tokens=100, cache_read_tokens=500)  # upstream bug: more cached than input
    assert cost(usage, SONNET) == 500 * D("0.30") / 1_000_000


def test_reasoning_is_inside_output_and_repriced_only_when_priced() -> None:
    usage = Usage(input_tokens=0, output_tokens=1000, reasoning_tokens=700)
    assert cost(usage, FLAT) == 1000 * D("0.20") / 1_000_000
    priced = Pricing(input=D("1"), output=D("2"), reasoning=D("5"))
    assert cost(usage, priced) == (300 * D("2") + 700 * D("5")) / 1_000_000


def test_tier_applies_from_its_min_prompt_tokens_inclusive() -> None:
    below = Usage(input_tokens=200_000, output_tokens=1000)
    at = Usage(input_tokens=200_001, output_tokens=1000)
    assert cost(below, GEMINI_PRO) == (200_000 * D("1.25") + 1000 * D("10")) / 1_000_000
    assert cost(at, GEMINI_PRO) == (200_001 * D("2.50") + 1000 * D("15")) / 1_000_000


def test_tier_replaces_cache_price_and_falls_back_to_the_tiers_input() -> None:
    cached = Usage(input_tokens=300_000, cache_read_tokens=100_000)
    assert cost(cached, GEMINI_PRO) == (200_000 * D("2.50") + 100_000 * D("0.625")) / 1_000_000
    no_cache_price = Pricing(
        input=D("1"),
        output=D("1"),
        cache_read=D("0.1"),
        tiers=(PriceTier(min_prompt_tokens=10, input=D("2"), output=D("2")),),
    )
    assert cost(Usage(input_tokens=20, cache_read_tokens=20), no_cache_price) == 20 * D("2") / 1_000_000


def test_highest_applicable_tier_wins_whatever_the_order() -> None:
    tiers = (
        PriceTier(min_prompt_tokens=1000, input=D("3"), output=D("3")),
        PriceTier(min_prompt_tokens=100, input=D("2"), output=D("2")),
    )
    p = Pricing(input=D("1"), output=D("1"), tiers=tiers)
    assert cost(Usage(input_tokens=50), p) == 50 * D("1") / 1_000_000
    assert cost(Usage(input_tokens=500), p) == 500 * D("2") / 1_000_000
    assert cost(Usage(input_tokens=5000), p) == 5000 * D("3") / 1_000_000


def test_tiny_costs_sum_exactly_where_floats_drift() -> None:
    p = Pricing(input=D("0.10"), output=D("0.30"))
    one = charge(Usage(input_tokens=7, output_tokens=3), p, "end_turn")  # 0.0000007 + 0.0000009
    total = sum((one for _ in range(1_000_000)), D(0))
    assert total == D("1.6")
    assert sum(to_nanos(one) for _ in range(1000)) == 1_600_000
    assert sum(float(one) for _ in range(1000)) != 0.0016  # what a float ledger would get


def test_storage_rounding_is_half_even_and_holds_round_up() -> None:
    assert to_nanos(D("0.0000000005")) == 0  # half a nano-dollar, to even
    assert to_nanos(D("0.0000000015")) == 2
    assert to_nanos(D("0.00000000149")) == 1
    assert to_nanos_ceil(D("0.0000000001")) == 1
    assert from_nanos(to_nanos(D("12.345678901"))) == D("12.345678901")
    assert quantize(D("0.01875") * 3 / 1_000_000) == D("5.6E-8")  # 56.25 nano -> 56


def test_zero_completion_insurance() -> None:
    usage = Usage(input_tokens=1000, output_tokens=0)
    assert insured(None, 0) and insured("", 0) and insured("error", 50)
    assert not insured("end_turn", 0) and not insured(None, 1)
    assert charge(usage, FLAT, None) == 0
    assert charge(Usage(input_tokens=1000, output_tokens=40), FLAT, "error") == 0
    assert charge(usage, FLAT, "max_tokens") == D("0.0002")


def test_worst_case_uses_the_dearest_input_side_price() -> None:
    # A cache write costs more than input: the reservation must assume every token is one.
    assert worst_case(1000, 100, SONNET) == (1000 * D("3.75") + 100 * D("15")) / 1_000_000
    assert worst_case(300_000, 0, GEMINI_PRO) == 300_000 * D("2.50") / 1_000_000
    assert worst_case(10, 10, Pricing(input=D("1"), output=D("2"), reasoning=D("9"))) == (10 + 90) * D(1) / 1_000_000


def test_helpers_are_exported() -> None:
    assert pricing.to_float(D("0.1")) == 0.1
    assert pricing.NANOS_PER_USD == 1_000_000_000


prices = st.decimals(min_value=0, max_value=100, places=5, allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=0, max_value=2_000_000)


@st.composite
def pricing_and_usage(draw: st.DrawFn) -> tuple[Pricing, Usage]:
    p = Pricing(
        input=draw(prices),
        output=draw(prices),
        cache_read=draw(st.none() | prices),
        cache_write=draw(st.none() | prices),
        reasoning=draw(st.none() | prices),
    )
    cr, cw, extra = draw(counts), draw(counts), draw(counts)
    out = draw(counts)
    u = Usage(
        input_tokens=cr + cw + extra,
        cache_read_tokens=cr,
        cache_write_tokens=cw,
        output_tokens=out,
        reasoning_tokens=draw(st.integers(0, out)),
    )
    return p, u


@given(pricing_and_usage())
def test_cost_equals_the_exact_rational_formula(case: tuple[Pricing, Usage]) -> None:
    p, u = case

    def q(d: Decimal | None, default: Decimal) -> Fraction:
        return Fraction(default if d is None else d)

    uncached = u.input_tokens - u.cache_read_tokens - u.cache_write_tokens
    expected = (
        uncached * Fraction(p.input)
        + u.cache_read_tokens * q(p.cache_read, p.input)
        + u.cache_write_tokens * q(p.cache_write, p.input)
        + (u.output_tokens - u.reasoning_tokens) * Fraction(p.output)
        + u.reasoning_tokens * q(p.reasoning, p.output)
    ) / 1_000_000
    assert Fraction(cost(u, p)) == expected


@given(pricing_and_usage(), counts)
def test_worst_case_covers_any_usage_within_its_bounds(case: tuple[Pricing, Usage], slack: int) -> None:
    p, u = case
    assert worst_case(u.input_tokens + slack, u.output_tokens, p) >= cost(u, p)
    assert to_nanos_ceil(worst_case(u.input_tokens, u.output_tokens, p)) >= to_nanos(cost(u, p))


@pytest.mark.parametrize("finish", [None, "end_turn", "error"])
def test_charge_is_storable_exactly(finish: str | None) -> None:
    c = charge(Usage(input_tokens=123_457, output_tokens=89, cache_read_tokens=3), SONNET, finish)
    assert from_nanos(to_nanos(c)) == c


# ---- the integer path (`rounded_cost`) and the shortcuts give the Decimal path's results, exactly ----

wide_prices = st.one_of(
    st.decimals(min_value=0, max_value=10**6, places=9, allow_nan=False, allow_infinity=False),
    st.decimals(min_value=0, max_value=10**30, allow_nan=False, allow_infinity=False),
    st.decimals(min_value=-5, max_value=5, places=3, allow_nan=False, allow_infinity=False),  # only a hand-built one
    st.sampled_from([D("1E+5"), D("0.0000000001"), D("1.5E-12"), D("2.50"), D("0E-20")]),
)
token_counts = st.integers(min_value=-5, max_value=10**8) | st.integers(min_value=0, max_value=10**40)


@st.composite
def any_pricing_and_usage(draw: st.DrawFn) -> tuple[Pricing, Usage]:
    maybe = st.none() | wide_prices
    p = Pricing(
        input=draw(wide_prices),
        output=draw(wide_prices),
        cache_read=draw(maybe),
        cache_write=draw(maybe),
        cache_write_1h=draw(maybe),
        reasoning=draw(maybe),
        request=draw(maybe),
        tiers=draw(st.sampled_from([(), (PriceTier(min_prompt_tokens=100, input=D("2"), output=D("4")),)])),
    )
    u = Usage(
        input_tokens=draw(token_counts),
        output_tokens=draw(token_counts),
        cache_read_tokens=draw(st.just(0) | token_counts),
        cache_write_tokens=draw(st.just(0) | token_counts),
        cache_write_1h_tokens=draw(st.just(0) | token_counts),
        reasoning_tokens=draw(st.just(0) | token_counts),
    )
    return p, u


@given(any_pricing_and_usage())
def test_rounded_cost_is_quantize_of_cost_to_the_digit(case: tuple[Pricing, Usage]) -> None:
    p, u = case
    assert str(pricing.rounded_cost(u, p)) == str(pricing.quantize(cost(u, p)))


def _old_worst_case(prompt_tokens: int, max_output_tokens: int, p: Pricing) -> Decimal:
    """worst_case before it kept a tierless Pricing's two prices (the reference)."""
    pr = pricing._prices(p, prompt_tokens)
    in_price = max(pr.input, pr.cache_write, pr.cache_write_1h, pr.cache_read)
    out_price = pr.output if p.reasoning is None else max(pr.output, p.reasoning)
    total = max(prompt_tokens, 0) * in_price + max(max_output_tokens, 0) * out_price
    if p.request is not None:
        total += p.request.scaleb(6)
    return total.scaleb(-6)


@given(any_pricing_and_usage())
def test_worst_case_is_the_decimal_formula_to_the_digit(case: tuple[Pricing, Usage]) -> None:
    p, u = case
    prompt, output = u.input_tokens, u.output_tokens
    assert str(worst_case(prompt, output, p)) == str(_old_worst_case(prompt, output, p))


exact_usd = st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**12), max_value=10**12) | st.decimals(
    min_value=-(10**6), max_value=10**6, places=9, allow_nan=False, allow_infinity=False
)


@given(exact_usd)
def test_to_nanos_shortcut_rounds_as_to_integral_value(usd: Decimal) -> None:
    from decimal import ROUND_CEILING, ROUND_HALF_EVEN

    assert to_nanos(usd) == int(usd.scaleb(9).to_integral_value(rounding=ROUND_HALF_EVEN))
    assert to_nanos_ceil(usd) == int(usd.scaleb(9).to_integral_value(rounding=ROUND_CEILING))


def test_a_hand_built_pricing_is_prepared_once_and_never_confused_with_another() -> None:
    u = Usage(input_tokens=1000, output_tokens=10)
    for i in range(3):  # new Pricing objects may reuse a freed one's id: the memo checks identity
        p = Pricing(input=D(i + 1), output=D(1))
        assert pricing.rounded_cost(u, p) == pricing.quantize(cost(u, p))

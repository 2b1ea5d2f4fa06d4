"""Exact cache prices: `pricing.cache_write_1h` (config), 1-hour writes billed at it, and the
`cache_discount` a generation records -- to the nano-dollar, in Decimal."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from keeprouter.billing.pricing import cache_discount, cache_saving, charge, cost, to_nanos, worst_case
from keeprouter.config import ConfigError, PriceTier, Pricing, parse_config
from keeprouter.formats.canonical import Usage

D = Decimal
# Anthropic's Sonnet prices: 5-minute writes at 1.25x input, 1-hour writes at 2x, reads at 0.1x.
SONNET = Pricing(input=D("3"), output=D("15"), cache_read=D("0.30"), cache_write=D("3.75"), cache_write_1h=D("6"))


def _config(pricing: dict[str, Any]) -> Pricing:
    raw = {
        "providers": {"p": {"api": "anthropic", "base_url": "http://127.0.0.1:9", "api_key": "k"}},
        "models": {"m": {"endpoints": [{"provider": "p", "model": "m", "pricing": pricing}]}},
    }
    return parse_config(raw, env={}).models["m"].endpoints[0].pricing


def test_cache_write_1h_is_a_price_key_beside_the_others() -> None:
    p = _config({"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75, "cache_write_1h": 6})
    assert (p.cache_read, p.cache_write, p.cache_write_1h) == (D("0.3"), D("3.75"), D("6"))
    tiered = _config(
        {
            "input": 3,
            "output": 15,
            "tiers": [{"min_prompt_tokens": 200001, "input": 6, "output": 22.5, "cache_write_1h": 12}],
        }
    )
    assert tiered.tiers[0].cache_write_1h == D("12")


@pytest.mark.parametrize(
    ("value", "fault"),
    [
        (-1, "models.m.endpoints[0].pricing.cache_write_1h: must be >= 0"),
        ("lots", "models.m.endpoints[0].pricing.cache_write_1h: must be a number"),
        (True, "models.m.endpoints[0].pricing.cache_write_1h: must be a number"),
    ],
)
def test_a_bad_cache_write_1h_is_refused_like_the_other_prices(value: object, fault: str) -> None:
    with pytest.raises(ConfigError) as e:
        _config({"input": 3, "output": 15, "cache_write_1h": value})
    assert str(e.value).startswith(fault)


def test_the_catalogue_prices_anthropic_1h_writes_at_twice_the_input() -> None:
    """Anthropic's own API publishes the 1-hour write price; other hosts of Claude (Bedrock) state
    theirs apart, and the catalogue leaves out what it has no published figure for."""
    models = parse_config({}, env={}).models
    checked = 0
    for mid in ("claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"):
        for ep in (*models[mid].endpoints, *models[mid].unconfigured):
            if ep.provider != "anthropic":
                continue
            checked += 1
            assert ep.pricing.cache_write_1h == 2 * ep.pricing.input
            for tier in ep.pricing.tiers:
                assert tier.cache_write_1h == 2 * tier.input
    assert checked == 3


def test_1h_writes_are_billed_at_their_own_price_and_5m_writes_at_theirs() -> None:
    # 10,000 prompt tokens: 1,000 uncached, 2,000 read, 7,000 written of which 4,000 for one hour.
    usage = Usage(
        input_tokens=10_000, cache_read_tokens=2_000, cache_write_tokens=7_000, cache_write_1h_tokens=4_000,
        output_tokens=500,
    )  # fmt: skip
    expected = (1_000 * D("3") + 2_000 * D("0.30") + 3_000 * D("3.75") + 4_000 * D("6") + 500 * D("15")) / 10**6
    assert cost(usage, SONNET) == expected == D("0.04635")
    assert to_nanos(charge(usage, SONNET, "end_turn")) == 46_350_000


def test_without_a_1h_price_a_1h_write_costs_a_5m_write_as_before() -> None:
    five = Pricing(input=D("3"), output=D("15"), cache_read=D("0.30"), cache_write=D("3.75"))
    split = Usage(input_tokens=5_000, cache_write_tokens=5_000, cache_write_1h_tokens=5_000)
    assert cost(split, five) == cost(Usage(input_tokens=5_000, cache_write_tokens=5_000), five)


def test_a_1h_share_larger_than_the_writes_is_clamped_to_them() -> None:
    usage = Usage(input_tokens=1_000, cache_write_tokens=100, cache_write_1h_tokens=900)
    assert cost(usage, SONNET) == (900 * D("3") + 100 * D("6")) / 10**6


def test_a_tier_without_its_own_1h_price_falls_back_to_its_write_price_then_its_input() -> None:
    tiered = Pricing(
        input=D("3"), output=D("15"), cache_write=D("3.75"), cache_write_1h=D("6"),
        tiers=(PriceTier(min_prompt_tokens=100, input=D("6"), output=D("22.5"), cache_write=D("7.5")),),
    )  # fmt: skip
    usage = Usage(input_tokens=200, cache_write_tokens=200, cache_write_1h_tokens=200)
    assert cost(usage, tiered) == 200 * D("7.5") / 10**6
    bare = Pricing(
        input=D("3"), output=D("15"), tiers=(PriceTier(min_prompt_tokens=100, input=D("6"), output=D("22.5")),)
    )
    assert cost(usage, bare) == 200 * D("6") / 10**6


def test_worst_case_covers_an_all_1h_write_prompt() -> None:
    assert worst_case(1_000, 0, SONNET) == 1_000 * D("6") / 10**6


def test_cache_discount_is_the_saving_against_plain_input_exactly() -> None:
    reads = Usage(input_tokens=10_000, cache_read_tokens=9_000, output_tokens=10)
    assert cache_saving(reads, SONNET) == 9_000 * (D("3") - D("0.30")) / 10**6 == D("0.0243")
    assert cache_saving(reads, SONNET) == cost(Usage(input_tokens=10_000, output_tokens=10), SONNET) - cost(
        reads, SONNET
    )
    # Writes cost more than input: a negative discount, the 1-hour ones twice as negative per token.
    writes = Usage(input_tokens=3_000, cache_write_tokens=3_000, cache_write_1h_tokens=1_000, output_tokens=1)
    assert cache_saving(writes, SONNET) == (2_000 * D("-0.75") + 1_000 * D("-3")) / 10**6 == D("-0.0045")


def test_cache_discount_is_rounded_once_to_the_nano_and_zero_when_insured() -> None:
    tiny = Usage(input_tokens=7, cache_read_tokens=7, output_tokens=1)
    cheap = Pricing(input=D("0.15"), output=D("0.6"), cache_read=D("0.075"))
    assert cache_saving(tiny, cheap) == D("0.000000525")
    assert cache_discount(tiny, cheap, "stop") == D("0.000000525")
    # 1.5 nano-dollars saved: half-even to 2, once.
    odd = Pricing(input=D("0.0025"), output=D("1"), cache_read=D("0.001"))
    assert cache_saving(Usage(input_tokens=1, cache_read_tokens=1, output_tokens=1), odd) == D("1.5E-9")
    assert to_nanos(cache_discount(Usage(input_tokens=1, cache_read_tokens=1, output_tokens=1), odd, "stop")) == 2
    assert cache_discount(Usage(input_tokens=9_000, cache_read_tokens=9_000), SONNET, None) == 0
    assert cache_discount(Usage(input_tokens=9_000, cache_read_tokens=9_000, output_tokens=5), SONNET, "error") == 0


def test_no_cache_no_discount() -> None:
    assert cache_discount(Usage(input_tokens=1_000, output_tokens=10), SONNET, "end_turn") == 0

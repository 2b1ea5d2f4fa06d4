"""Figures as the pages print them: prices, the typical request's cost at awkward prices, rates."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from keeprouter.config import Pricing
from keeprouter.web import format as f


@pytest.mark.parametrize(
    ("price", "text"),
    [("0.20", "$0.20"), ("0.2", "$0.20"), ("1.25", "$1.25"), ("10", "$10.00"), ("0.075", "$0.075"),
     ("0.0375", "$0.0375"), ("0", "$0"), ("1500", "$1,500.00")],
)  # fmt: skip
def test_price_keeps_every_significant_digit(price: str, text: str) -> None:
    assert f.price(D(price)) == text


@pytest.mark.parametrize(
    ("inp", "out", "exact", "text"),
    [
        ("0.20", "0.20", "0.0003", "about $0.0003"),  # the seed page: Ministral 14B
        ("0.15", "0.60", "0.00045", "about $0.00045"),
        ("3", "15", "0.0105", "about $0.011"),  # rounds half up at two significant figures
        ("1.25", "10", "0.00625", "about $0.0063"),
        ("15", "75", "0.0525", "about $0.053"),
        ("0.039", "0.19", "0.000134", "about $0.00013"),
        ("200", "600", "0.5", "about $0.50"),
        ("0", "0", "0", "$0"),  # a local model
    ],
)
def test_typical_request_cost_is_exact_then_rounded_for_reading(inp: str, out: str, exact: str, text: str) -> None:
    cost = f.example_cost(Pricing(D(inp), D(out)))
    assert cost == D(exact)
    assert f.about_usd(cost) == text


def test_rates_and_missing_figures() -> None:
    assert (f.percent(99.456), f.percent(None)) == ("99.5%", "—")
    assert (f.ms(0.4214), f.ms(None)) == ("421 ms", "—")
    assert (f.throughput(85.26), f.throughput(None)) == ("85.3 tok/s", "—")
    assert (f.count(1234567), f.tokens(131072)) == ("1,234,567", "131,072 tokens")
    assert f.date(0) == "—" and f.date(1754524800) == "2025-08-07"

"""Settler.record's shortcut: a usage without cache tokens records what `cache_saving` would give."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from keeprouter.billing import pricing
from keeprouter.config import Pricing
from keeprouter.formats.canonical import Usage
from keeprouter.gateway.settle import NO_SAVING

prices = st.decimals(min_value=0, max_value=100, places=6, allow_nan=False, allow_infinity=False)


@given(prices, prices, st.none() | prices, st.none() | prices, st.integers(-3, 10**6), st.integers(-3, 0))
def test_no_cache_tokens_saves_exactly_nothing(
    inp: Decimal, out: Decimal, read: Decimal | None, write: Decimal | None, tokens: int, cached: int
) -> None:
    p = Pricing(input=inp, output=out, cache_read=read, cache_write=write)
    u = Usage(input_tokens=tokens, output_tokens=5, cache_read_tokens=cached, cache_write_tokens=cached)
    assert str(pricing.quantize(pricing.cache_saving(u, p))) == str(NO_SAVING)

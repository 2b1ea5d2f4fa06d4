"""How figures read on the pages. Every figure is formatted here, once, so HTML and Markdown agree."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from keeprouter.config import Pricing

DASH = "—"  # no data
_MILLION = Decimal(1_000_000)
EXAMPLE_PROMPT, EXAMPLE_REPLY = 1_000, 500  # the "typical request" every model page prices


def price(per_million: Decimal) -> str:
    """USD per 1M tokens: "$0.20", "$1.25", "$0.075", "$0" (cents always shown, more digits kept)."""
    if per_million == 0:
        return "$0"
    exact = per_million.normalize()
    if exact.as_tuple().exponent >= -2:  # type: ignore[operator]
        return f"${per_million:,.2f}"
    return f"${exact:,f}"


def per_million(per_million_usd: Decimal) -> str:
    return f"{price(per_million_usd)} per 1M tokens"


def example_cost(p: Pricing, prompt: int = EXAMPLE_PROMPT, reply: int = EXAMPLE_REPLY) -> Decimal:
    """The exact cost of a `prompt`-token request with a `reply`-token answer (no cache, base tier)."""
    return (p.input * prompt + p.output * reply) / _MILLION


def about_usd(amount: Decimal) -> str:
    """A small cost at two significant figures: "about $0.0003", "about $0.011"; "$0" when free."""
    if amount == 0:
        return "$0"
    digits = amount.adjusted()  # exponent of the leading digit
    rounded = amount.quantize(Decimal(1).scaleb(digits - 1), rounding=ROUND_HALF_UP)
    text = format(rounded.normalize(), "f")
    if "." in text and len(text.split(".")[1]) == 1 and rounded >= Decimal("0.1"):
        text += "0"  # "$0.50", not "$0.5"
    return f"about ${text}"


def usd(amount: Decimal) -> str:
    """Money spent: "$12.34", "$0.0042" (small amounts keep two significant figures)."""
    if amount == 0:
        return "$0"
    if abs(amount) >= Decimal("0.01"):
        return f"${amount:,.2f}"
    return about_usd(amount).removeprefix("about ")


def count(n: int) -> str:
    return f"{n:,}"


def tokens(n: int) -> str:
    return f"{n:,} tokens"


def percent(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}%"


def ms(seconds: float | None) -> str:
    return DASH if seconds is None else f"{seconds * 1000:,.0f} ms"


def throughput(tps: float | None) -> str:
    return DASH if tps is None else f"{tps:,.1f} tok/s"


def date(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).date().isoformat() if epoch else DASH

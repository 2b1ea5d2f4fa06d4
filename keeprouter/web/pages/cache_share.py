"""What the prompt cache did this month, per model and per key: the share of prompt tokens read from
the provider's cache, and what it saved (the sum of each generation's `cache_discount`).

Pure builders over `CacheUsageRow`s (store.cache_usage, fetched by web.sources or the console
handler); the model page and the console render these, HTML and Markdown from the same strings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from keeprouter.store.base import CacheUsageRow
from keeprouter.web import format as f
from keeprouter.web.charts import Table

HEADINGS = ("Requests", "Prompt tokens", "Read from cache", "Cache-read share", "Saved")


@dataclass(frozen=True, slots=True)
class CacheSummary:
    """One total, formatted: `share` is a percent of prompt tokens, `saved` USD (negative when cache
    writes cost more than they saved)."""

    since: str  # the first day of the month, YYYY-MM-DD
    requests: str
    prompt_tokens: str
    cached_tokens: str
    share: str
    saved: str


def month_start(today: dt.date) -> dt.date:
    """The first UTC day of `today`'s month: "this month" on every page."""
    return today.replace(day=1)


def share(prompt: int, cached: int) -> float | None:
    """The percentage of `prompt` tokens read from cache; None when there were none."""
    return None if prompt <= 0 else 100.0 * cached / prompt


def _totals(rows: Sequence[CacheUsageRow]) -> tuple[int, int, int, Decimal]:
    return (
        sum(r.requests for r in rows),
        sum(r.prompt_tokens for r in rows),
        sum(r.cached_tokens for r in rows),
        sum((r.cache_discount for r in rows), Decimal(0)),
    )


def _cells(rows: Sequence[CacheUsageRow]) -> tuple[str, ...]:
    requests, prompt, cached, saved = _totals(rows)
    return f.count(requests), f.count(prompt), f.count(cached), f.percent(share(prompt, cached)), saved_usd(saved)


def saved_usd(amount: Decimal) -> str:
    """What the cache saved, as money; a loss (writes that were never read back) as "-$0.0045"."""
    return "-" + f.usd(-amount) if amount < 0 else f.usd(amount)


def summary(rows: Sequence[CacheUsageRow], since: dt.date) -> CacheSummary:
    """Every row added up (one model's page: all keys of that model)."""
    return CacheSummary(since.isoformat(), *_cells(rows))


def by_model(rows: Sequence[CacheUsageRow]) -> Table:
    """One line per model, all the given keys together."""
    grouped: dict[str, list[CacheUsageRow]] = {}
    for r in rows:
        grouped.setdefault(r.model, []).append(r)
    return Table(("Model", *HEADINGS), tuple((m, *_cells(grouped[m])) for m in sorted(grouped)))


def by_key(rows: Sequence[CacheUsageRow], names: Mapping[str, str]) -> Table:
    """One line per key (named by `names`, else by the start of its hash), all models together."""
    grouped: dict[str, list[CacheUsageRow]] = {}
    for r in rows:
        grouped.setdefault(r.key_hash, []).append(r)
    label = {k: names.get(k) or k[:12] for k in grouped}
    return Table(
        ("Key", *HEADINGS), tuple((label[k], *_cells(grouped[k])) for k in sorted(grouped, key=lambda k: label[k]))
    )

"""The prompt cache's figures this month (web.pages.cache_share) on the model page and the console,
from fabricated store rows: the cache-read share of prompt tokens and what it saved."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from keeprouter.store.base import CacheUsageRow, KeyRecord
from keeprouter.web.pages import cache_share
from keeprouter.web.pages import console as console_pages
from keeprouter.web.pages.common import Site

SITE = Site("KeepRouter", "https://router.example", dt.date(2026, 12, 17))


def row(model: str, key: str, prompt: int, cached: int, saved: str, n: int = 1) -> CacheUsageRow:
    return CacheUsageRow(model=model, key_hash=key, requests=n, prompt_tokens=prompt, cached_tokens=cached,
                         cache_discount=D(saved))  # fmt: skip


ROWS = [
    row("claude", "hash-a", 10_000, 9_000, "0.0243", 2),
    row("claude", "hash-b", 30_000, 3_000, "-0.0045", 3),
    row("gpt", "hash-a", 1_000, 0, "0"),
]


def test_the_share_is_of_prompt_tokens_and_none_without_any() -> None:
    assert cache_share.share(40_000, 12_000) == 30.0
    assert cache_share.share(0, 0) is None
    assert cache_share.month_start(dt.date(2026, 12, 17)) == dt.date(2026, 12, 1)


def test_per_model_adds_up_every_key_and_the_saving_can_be_negative() -> None:
    table = cache_share.by_model(ROWS)
    assert table.head == ("Model", "Requests", "Prompt tokens", "Read from cache", "Cache-read share", "Saved")
    assert table.rows == (
        ("claude", "5", "40,000", "12,000", "30.0%", "$0.02"),
        ("gpt", "1", "1,000", "0", "0.0%", "$0"),
    )


def test_per_key_names_each_key_and_adds_up_every_model() -> None:
    table = cache_share.by_key(ROWS, {"hash-a": "alice"})
    assert table.rows == (
        ("alice", "3", "11,000", "9,000", "81.8%", "$0.02"),
        ("hash-b", "3", "30,000", "3,000", "10.0%", "-$0.0045"),
    )


def test_the_summary_of_one_model() -> None:
    s = cache_share.summary(ROWS[:2], dt.date(2026, 12, 1))
    assert (s.since, s.requests, s.share, s.saved) == ("2026-12-01", "5", "30.0%", "$0.02")


def test_the_console_shows_a_keys_models_and_the_admin_every_key() -> None:
    alice = KeyRecord(hash="hash-a", name="alice", label="sk-kr-v1-ali...aaaa", created_at=0.0)
    mine = [r for r in ROWS if r.key_hash == "hash-a"]
    page = console_pages.overview(SITE, alice, [], "t", False, mine)
    assert page.cache_since == "2026-12-01"
    assert [r[0] for r in page.cache_by_model.rows] == ["claude", "gpt"]
    assert page.cache_by_key.rows == ()  # a key sees no per-key table: it is the only key
    admin = KeyRecord(hash="admin", name="admin", label="admin", created_at=0.0, is_admin=True)
    every = console_pages.overview(SITE, admin, [], "t", True, ROWS, {"hash-a": "alice", "hash-b": "bob"})
    assert [r[0] for r in every.cache_by_key.rows] == ["alice", "bob"]

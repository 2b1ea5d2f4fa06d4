"""The console's page data (keeprouter.web.pages.console) over the real store, on SQLite and
PostgreSQL: what a customer may see (only their own rows), what the admin sees (everyone's, or one
key's), the credit figures, and the request log paged by keyset with LIMIT on the index, as fast
for a key with 20,000 generations as for one with 10."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest
import pytest_asyncio
from store.backends import backend_of, store_url_fixture  # noqa: F401  (SQLite file / PostgreSQL schema)

from keeprouter.api.activity import key_activity
from keeprouter.errors import PermissionDenied
from keeprouter.store import Store, _rows, open_store
from keeprouter.store.base import GenerationRecord, KeyRecord
from keeprouter.web.pages import console as pages
from keeprouter.web.pages.common import Link, Site

SITE = Site("KeepRouter", "http://127.0.0.1:1", dt.date(2026, 12, 2))
NOON = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC).timestamp()
ADMIN = KeyRecord(hash="admin", name="admin", label="admin", created_at=0.0, is_admin=True)
# The store's own query (keeprouter.store.sqlite / postgres list_generations), to read its plan.
LIST_SQL = "SELECT id FROM generations WHERE key_hash = {0} AND created_at < {1} ORDER BY created_at DESC LIMIT {2}"
ALL_SQL = "SELECT id FROM generations WHERE created_at < {0} ORDER BY created_at DESC LIMIT {1}"  # the operator's


FAILED_ATTEMPT = {"provider": "an", "model": "up-claude", "status": 503, "error": "busy"}


def _gen(i: int, key_hash: str, model: str = "gpt-test", at: float = NOON) -> GenerationRecord:
    return GenerationRecord(id=f"gen-{key_hash}-{i:06d}", key_hash=key_hash, model=model, provider="oa",
                            upstream_model="up-" + model, api="openai", created_at=at - i, tokens_prompt=100,
                            tokens_completion=20, cost=Decimal("0.0015"), latency_ms=900, ttft_ms=300,
                            attempts=[FAILED_ATTEMPT])  # fmt: skip


async def _bulk(store: Store, url: str, gens: list[GenerationRecord]) -> None:
    """The keys through the store, then their rows straight into the generations table (the ledger
    path would take minutes for 20,000), with the store's own column list and value conversion."""
    for h in sorted({g.key_hash for g in gens}):
        await store.insert_key(KeyRecord(hash=h, name=h, label=h, created_at=0.0))
    cols, n = _rows.GEN_COLUMN_LIST, len(_rows.GEN_COLUMNS)
    values = [_rows.gen_values(g) for g in gens]
    if backend_of(url) == "sqlite":
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.executemany(f"INSERT INTO generations ({cols}) VALUES ({', '.join('?' * n)})", values)
        return
    base, _, schema = url.partition("?search_path=")
    conn = await asyncpg.connect(base, server_settings={"search_path": schema})
    try:
        await conn.executemany(
            f"INSERT INTO generations ({cols}) VALUES ({', '.join(f'${i}' for i in range(1, n + 1))})", values
        )
        await conn.execute("ANALYZE generations")
    finally:
        await conn.close()


async def _plan(url: str, sql: str, *args: object) -> str:
    """The plan of `sql` (placeholders `{0}`, `{1}`...) for `args`."""
    if backend_of(url) == "sqlite":
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            rows = db.execute("EXPLAIN QUERY PLAN " + sql.format(*("?" for _ in args)), args).fetchall()
        return "\n".join(str(r[-1]) for r in rows)
    base, _, schema = url.partition("?search_path=")
    conn = await asyncpg.connect(base, server_settings={"search_path": schema})
    try:
        rows = await conn.fetch("EXPLAIN " + sql.format(*(f"${i}" for i in range(1, len(args) + 1))), *args)
    finally:
        await conn.close()
    return "\n".join(r[0] for r in rows)


@pytest_asyncio.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    s = await open_store(store_url)
    try:
        yield s
    finally:
        await s.close()


async def test_a_customer_sees_only_their_own_rows_the_admin_everyones(store: Store, store_url: str) -> None:
    await _bulk(store, store_url, [*(_gen(i, "alice", "gpt-test") for i in range(3)),
                            *(_gen(i, "bob", "claude-test") for i in range(2))])  # fmt: skip
    alice = KeyRecord(hash="alice", name="alice", label="sk-kr-v1-ali...aaaa", created_at=0.0)
    day = dt.date(2026, 12, 1)
    mine = await key_activity(store, alice, None, day, day)
    assert {(r.model, r.requests) for r in mine} == {("gpt-test", 3)}
    assert await key_activity(store, alice, "alice", day, day) == mine
    with pytest.raises(PermissionDenied):
        await key_activity(store, alice, "bob", day, day)  # never another key's, even by asking
    page = pages.overview(SITE, alice, mine, "t", False)
    assert [row[1] for row in page.by_model.rows] == ["gpt-test"]
    assert page.by_model.rows[0][3:] == ("3", "300", "60", "$0.0045")
    everyone = await key_activity(store, ADMIN, None, day, day)
    assert {(r.model, r.requests) for r in everyone} == {("gpt-test", 3), ("claude-test", 2)}
    assert {r.model for r in await key_activity(store, ADMIN, "bob", day, day)} == {"claude-test"}
    admin_page = pages.overview(SITE, ADMIN, everyone, "t", True)
    assert sorted(row[1] for row in admin_page.by_model.rows) == ["claude-test", "gpt-test"]
    assert admin_page.is_admin and not page.is_admin

    logs = pages.logs(SITE, await store.list_generations("alice"), 50, "t", False)
    linked = {c.href for row in logs.table.rows for c in row if isinstance(c, Link)}
    assert linked == {f"/console/logs/gen-alice-{i:06d}" for i in range(3)} and logs.older == ""


def test_credit_used_remaining_and_renewal() -> None:
    unlimited = KeyRecord(hash="h", name="n", label="l", created_at=0.0, usage=Decimal("1.5"))
    assert pages.credit(unlimited) == pages.Credit("$1.50", "none", "unlimited", "")
    limited = KeyRecord(hash="h", name="n", label="l", created_at=0.0, limit=Decimal(5), limit_reset="weekly",
                        usage=Decimal(9), limit_usage=Decimal("1.25"))  # fmt: skip
    assert pages.credit(limited) == pages.Credit("$1.25", "$5.00", "$3.75", "every Monday (UTC)")
    spent = KeyRecord(hash="h", name="n", label="l", created_at=0.0, limit=Decimal(1), limit_usage=Decimal(2))
    assert pages.credit(spent).remaining == "$0"


def test_log_rows_older_link_and_detail() -> None:
    gens = [_gen(i, "k") for i in range(3)]
    full = pages.logs(SITE, gens, 3, "t", True, {"key": "k", "model": "", "team": "t 1"}, {"k": "laptop"})
    # the filters asked for stay on the next page; the empty one is left out
    assert full.older == f"/console/logs?before={gens[-1].created_at!r}&key=k&team=t+1"
    assert full.filters == (("key", "Key (hash)", "k"), ("model", "Model", ""), ("team", "Team id", "t 1"))
    assert pages.logs(SITE, gens, 3, "t", False).older == f"/console/logs?before={gens[-1].created_at!r}"
    assert pages.logs(SITE, gens, 4, "t", False).older == ""  # a short page is the last
    row = full.table.rows[0]
    assert full.table.head[1] == "Key" and row[1] == Link("laptop", "/console/logs?key=k", "")  # a log of many keys
    assert row[2:] == ("gpt-test", "oa", "120", "$0.0015", "900 ms", "300 ms", "ok", "—")
    one_key = pages.logs(SITE, gens, 3, "t", False).table
    assert "Key" not in one_key.head and one_key.rows[0][1] == "gpt-test"
    d = pages.detail(SITE, gens[0], "t", False)
    facts = dict(d.facts.rows)
    assert facts["Cost"] == "$0.0015" and facts["Time to first token"] == "300 ms"
    assert d.attempts.rows == (("1", "an", "up-claude", "503", "busy"),)


async def test_a_log_page_uses_the_index_and_is_as_fast_with_20000_rows(store: Store, store_url: str) -> None:
    await _bulk(store, store_url, [*(_gen(i, "big") for i in range(20_000)), *(_gen(i, "small") for i in range(10))])
    # A key with few rows among many: its own index, not a walk through everyone's newest rows. (For
    # "big", nearly every row is its own, and either index finds its 50 at once.)
    plan = await _plan(store_url, LIST_SQL, "small", 1e12, 50)
    if backend_of(store_url) == "sqlite":
        assert "USING INDEX generations_key_created" in plan and "TEMP B-TREE" not in plan, plan
    else:
        assert "Limit" in plan and "Index Scan Backward using generations_key_created" in plan, plan
    # The operator's log of every key: newest first from the created_at index, no sort of the table.
    plan = await _plan(store_url, ALL_SQL, 1e12, 50)
    if backend_of(store_url) == "sqlite":
        assert "INDEX generations_created" in plan and "TEMP B-TREE" not in plan, plan
    else:
        assert "Index Scan Backward using generations_created" in plan and "Sort" not in plan, plan

    async def best(key_hash: str) -> float:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            assert len(await store.list_generations(key_hash, limit=50)) == min(50, 10 if key_hash == "small" else 50)
            times.append(time.perf_counter() - t)
        return min(times)

    small, big = await best("small"), await best("big")
    assert big < small * 5 + 0.02, (big, small)  # generous: a scan of 20,000 rows would be far slower
    # keyset pages: newest first, no row twice, none skipped
    seen: list[str] = []
    before = None
    for _ in range(3):
        page = await store.list_generations("big", before=before, limit=50)
        seen += [g.id for g in page]
        before = page[-1].created_at
    assert seen == [f"gen-big-{i:06d}" for i in range(150)]

"""PostgreSQL's ledger round trips: settles arriving together share one round trip and one COMMIT
(store._pg_settle), and a reservation commits without waiting for its WAL flush, for its own
transaction only (store.postgres)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from keeprouter.store.postgres import PostgresStore
from store.backends import PG_URL, T0, pg_schema
from store.test_store_ledger import gen, ledger, make_key

pytestmark = pytest.mark.postgres
D = Decimal


@pytest.fixture
async def pg() -> AsyncIterator[PostgresStore]:
    async with pg_schema() as schema:
        store = await PostgresStore.open(f"{PG_URL}?search_path={schema}", max_size=4)
        try:
            await store.migrate()
            yield store
        finally:
            await store.close()


class Counting:
    """Counts the settles that run alone (one statement) and those that go in batches."""

    def __init__(self, store: PostgresStore) -> None:
        self.single = self.batches = self.batched = 0
        batcher = store._settles
        commit = batcher._commit

        async def counted(batch: list[tuple[Any, ...]]) -> Any:
            if len(batch) == 1:
                self.single += 1
            else:
                self.batches, self.batched = self.batches + 1, self.batched + len(batch)
            return await commit(batch)

        batcher._commit = counted  # type: ignore[method-assign]


async def test_concurrent_settles_share_commits_and_bill_exactly(pg: PostgresStore) -> None:
    k = await make_key(pg, limit="100")
    n = 40
    for i in range(n):
        assert await pg.reserve(k, f"h{i}", D("1"), T0 + 600, T0)
    count = Counting(pg)
    fresh = await asyncio.gather(*(pg.settle(f"h{i}", gen(k, f"g{i}", "0.5"), T0) for i in range(n)))
    assert fresh == [True] * n
    # the first settle goes alone; those submitted meanwhile wait for it and go together
    assert count.batches >= 1 and count.batched + count.single == n and count.single < n / 2
    u = await ledger(pg, k)
    assert (u.usage, u.reserved, u.open_holds, u.generations) == (D("20"), D(0), 0, n)


async def test_a_batch_says_which_settles_billed(pg: PostgresStore) -> None:
    k = await make_key(pg)
    assert await pg.reserve(k, "h0", D("1"), T0 + 600, T0)
    assert await pg.settle("h0", gen(k, "g-old", "0.25"), T0)
    holds = [f"h{i}" for i in range(1, 5)]
    for h in holds:
        assert await pg.reserve(k, h, D("1"), T0 + 600, T0)
    count = Counting(pg)
    # an id recorded before, a new one twice, and two new ones: only the first of each new id bills
    settles = [("h1", "g-old"), ("h2", "g-new"), ("h3", "g-new"), ("h4", "g-other"), ("none", "g-third")]
    fresh = await asyncio.gather(*(pg.settle(h, gen(k, g, "0.25"), T0) for h, g in settles))
    assert fresh == [False, True, False, True, True]
    assert count.batches >= 1
    u = await ledger(pg, k)  # every hold dropped, each generation billed once
    assert (u.usage, u.reserved, u.open_holds, u.generations) == (D("1.00"), D(0), 0, 4)


async def test_one_bad_settle_fails_alone(pg: PostgresStore) -> None:
    k = await make_key(pg)
    for i in range(3):
        assert await pg.reserve(k, f"h{i}", D("1"), T0 + 600, T0)
    costs = ["0.5", "-1", "0.25"]  # a negative cost breaks a CHECK constraint
    got = await asyncio.gather(
        *(pg.settle(f"h{i}", gen(k, f"g{i}", c), T0) for i, c in enumerate(costs)), return_exceptions=True
    )
    assert got[0] is True and got[2] is True
    assert isinstance(got[1], Exception) and "check" in str(got[1]).lower()
    u = await pg.key_usage(k)
    assert u is not None and (u.usage, u.generations, u.open_holds) == (D("0.75"), 2, 1)


async def test_a_reservation_relaxes_only_its_own_commit() -> None:
    async with pg_schema() as schema:
        one = await PostgresStore.open(f"{PG_URL}?search_path={schema}", max_size=1)  # one connection
        try:
            await one.migrate()
            k = await make_key(one, limit="10")
            for i in range(3):
                assert await one.reserve(k, f"h{i}", D("1"), T0 + 600, T0)
                # the same connection afterwards: back to the server's setting, so settles stay durable
                assert await one._pool.fetchval("SHOW synchronous_commit") == "on"
            assert (await ledger(one, k)).reserved == D("3")
        finally:
            await one.close()


_TABLES = {
    "keys": "SELECT hash, usage_nanos, reserved_nanos, inflight, period_start, period_usage_nanos FROM keys",
    "users": "SELECT id, usage_nanos, reserved_nanos, period_start, period_usage_nanos FROM users",
    "teams": "SELECT id, usage_nanos, reserved_nanos, period_start, period_usage_nanos FROM teams",
    "holds": "SELECT id, key_hash, amount_nanos FROM holds",
    "daily": "SELECT key_hash, day, usage_nanos, requests FROM key_usage_daily",
    "generations": "SELECT id, key_hash, cost_nanos FROM generations",
}


async def _batch_state(batched: bool) -> tuple[list[Any], dict[str, list[Any]]]:
    """Owners, periods, leases, a repeated settle and a settle without hold, settled as one batch
    statement or one at a time, on a fresh schema; what each said and every row they touch."""
    from keeprouter.store import _rows
    from keeprouter.store.postgres import _p
    from store.test_people import team, user

    async with pg_schema() as schema:
        pg = await PostgresStore.open(f"{PG_URL}?search_path={schema}", max_size=2)
        try:
            await pg.migrate()
            await team(pg, limit="10", limit_reset="daily")
            await user(pg, "u1", limit="10", limit_reset="weekly")
            await user(pg, "u2")
            k1 = await make_key(pg, "k1", user_id="u1", team_id="t1")
            k2 = await make_key(pg, "k2", user_id="u2", team_id="t1")
            k3 = await make_key(pg, "k3", limit="100", limit_reset="daily")
            k4 = await make_key(pg, "k4", limit="100")
            for k, h in ((k1, "h0"), (k3, "h-old")):  # yesterday's bills: today's settles start a new period
                assert await pg.reserve(k, h, D("1"), T0 + 600, T0)
                assert await pg.settle(h, gen(k, f"g-{h}", "0.75"), T0)
            today = T0 + 86_400
            holds = {"h1": k1, "h2": k1, "h3": k2, "h4": k3, "h5": k3, "lease-1": k4}
            for h, k in holds.items():
                assert await pg.reserve(k, h, D("5") if h == "lease-1" else D("1"), today + 600, today)
            settles = [  # (hold, key, generation, cost, leased)
                ("h1", k1, "g1", "0.5", False), ("h2", k1, "g2", "0.25", False), ("h3", k2, "g3", "0.125", False),
                ("h4", k3, "g4", "1", False), ("h5", k3, "g-h-old", "0.3", False), ("none", k3, "g6", "0.2", False),
                ("lease-1", k4, "g7", "1.5", True), ("lease-1", k4, "g8", "4", True),
            ]  # fmt: skip
            batch = [
                (*_rows.gen_values(gen(k, g, c, at=today)), h, *_p(today), leased) for h, k, g, c, leased in settles
            ]
            settler = pg._settles
            said: list[Any] = await settler._commit(batch) if batched else [await settler._one(a) for a in batch]
            state = {name: sorted(map(tuple, await pg._pool.fetch(sql))) for name, sql in _TABLES.items()}
            return said, state
        finally:
            await pg.close()


async def test_a_batch_statement_bills_as_its_settles_one_after_another() -> None:
    said, state = await _batch_state(batched=True)
    assert said == [True, True, True, True, False, True, True, True]
    assert (said, state) == await _batch_state(batched=False)
    lease = next(r for r in state["holds"] if r[0] == "lease-1")
    assert lease[2] == 0  # 5 held, 5.5 billed through it: what it held is given up, never below 0

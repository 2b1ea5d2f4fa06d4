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

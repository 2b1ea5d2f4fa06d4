"""PostgreSQL credit leases (store._pg_leases): a process admits a key's requests from its slice of
the key's credit, writes the key's row once per request, never overspends across processes, and
gives the slice back when idle, when the key changes and at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from keeprouter.store import _pg_leases
from keeprouter.store.postgres import PostgresStore
from store.backends import T0, two_pg_stores
from store.test_people import team, user
from store.test_store_ledger import gen, ledger, make_key

pytestmark = pytest.mark.postgres
D = Decimal
EXP = T0 + 900


@pytest.fixture
async def two() -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two gateway processes' stores on one database, both leasing."""
    async with two_pg_stores(max_size=4, lease_credit=True) as stores:
        yield stores


async def lease_rows(store: PostgresStore, key_hash: str) -> list[Any]:
    return list(await store._pool.fetch("SELECT id, amount_nanos FROM holds WHERE key_hash = $1", key_hash))


async def test_requests_are_admitted_from_one_lease_and_billed_exactly(two: tuple[PostgresStore, ...]) -> None:
    a, _ = two
    k = await make_key(a, limit="1000")
    for i in range(10):
        assert await a.reserve(k, f"h{i}", D("0.5"), EXP, T0)
    rows = await lease_rows(a, k)
    assert len(rows) == 1 and rows[0]["id"].startswith("lease-"), "one lease row, not one hold per request"
    u = await ledger(a, k)  # reserved == held: the lease is an ordinary hold
    assert u.open_holds == 1 and u.reserved >= D("5")
    await asyncio.gather(*(a.settle(f"h{i}", gen(k, f"g{i}", "0.2"), T0) for i in range(10)))
    u = await ledger(a, k)
    assert u.usage == D("2.0") and u.generations == 10
    assert u.reserved == D(rows[0]["amount_nanos"]) / 10**9 - D("2.0"), "the settles took their cost out of the lease"
    assert not await a.release("h0"), "a settled hold is gone"
    await a._leases.sweep(everything=True)  # type: ignore[union-attr]
    u = await ledger(a, k)
    assert (u.open_holds, u.reserved, u.usage) == (0, D(0), D("2.0")), "the idle lease went back whole"


async def test_processes_leasing_one_key_admit_exactly_its_limit_together(two: tuple[PostgresStore, ...]) -> None:
    a, b = two
    limit = _pg_leases.LEASE_REQUESTS * 2 + _pg_leases.LOW_WATER + 30  # room for a lease in each, and more
    k = await make_key(a, limit=str(limit))
    results = await asyncio.gather(
        *(s.reserve(k, f"{n}{i}", D("1"), EXP, T0) for i in range(limit) for n, s in (("a", a), ("b", b)))
    )
    assert sum(results) == limit, "leases first, then holds per request near the limit: exactly the limit"
    assert any(r["id"].startswith("lease-") for r in await lease_rows(a, k)), "far from the limit: leased"
    assert (await ledger(a, k)).reserved == limit
    for s, n in ((a, "a"), (b, "b")):
        for i in range(limit):
            await s.release(f"{n}{i}")
        await s._leases.sweep(everything=True)  # type: ignore[union-attr]
    assert (await ledger(a, k)).reserved == 0
    # alone, one process admits exactly up to the limit again
    admitted = [await a.reserve(k, f"x{i}", D("1"), EXP, T0) for i in range(limit + 1)]
    assert admitted == [True] * limit + [False]


async def test_a_key_near_its_limit_is_reserved_per_request(two: tuple[PostgresStore, ...]) -> None:
    a, _ = two
    k = await make_key(a, limit=str(_pg_leases.LOW_WATER))  # never LOW_WATER worst cases beyond a lease
    assert await a.reserve(k, "h1", D("1"), EXP, T0)
    assert [r["id"] for r in await lease_rows(a, k)] == ["h1"], "a hold of its own, as without leases"


async def test_owned_and_parallel_limited_keys_are_reserved_per_request(two: tuple[PostgresStore, ...]) -> None:
    a, _ = two
    await team(a, "t1", limit="5")
    await user(a, "u1", team_id="t1")
    owned = await make_key(a, "owned", limit="100", user_id="u1", team_id="t1")
    parallel = await make_key(a, "par", limit="100", max_parallel_requests=2)
    assert await a.reserve(owned, "o1", D("1"), EXP, T0)
    assert not await a.reserve(owned, "o2", D("4.5"), EXP, T0), "the team's budget still counts"
    assert await a.reserve(parallel, "p1", D("1"), EXP, T0)
    assert await a.reserve(parallel, "p2", D("1"), EXP, T0)
    assert not await a.reserve(parallel, "p3", D("1"), EXP, T0), "two in flight at most"
    for k, holds in ((owned, {"o1"}), (parallel, {"p1", "p2"})):
        assert {r["id"] for r in await lease_rows(a, k)} == holds, "one hold per request, no lease"
        assert (await ledger(a, k)).reserved == len(holds)
    assert await a.settle("p1", gen(parallel, "gp1", "0.3"), T0)
    assert (await ledger(a, parallel)).open_holds == 1


async def test_a_changed_key_gets_no_more_requests_from_its_lease(two: tuple[PostgresStore, ...]) -> None:
    a, _ = two
    k = await make_key(a, limit="1000")
    assert await a.reserve(k, "h1", D("1"), EXP, T0)
    leases = a._leases
    assert leases is not None
    leases.forget(k)  # what a NOTIFY of the key's change does
    for _ in range(50):  # its unused part goes back at once; h1's dollar stays held
        if (await ledger(a, k)).reserved == 1:
            break
        await asyncio.sleep(0.02)
    assert (await ledger(a, k)).reserved == 1
    assert await a.reserve(k, "h2", D("1"), EXP, T0)
    assert len(await lease_rows(a, k)) == 2, "a new lease, checked against the row as it is now"
    await a.release("h1")
    await leases.sweep()  # the retired lease has nothing in flight: it goes back at once
    assert len(await lease_rows(a, k)) == 1
    await a.settle("h2", gen(k, "g2", "0.5"), T0)
    await leases.sweep(everything=True)
    u = await ledger(a, k)
    assert (u.open_holds, u.reserved, u.usage) == (0, D(0), D("0.5"))


async def test_idle_leases_go_back_by_themselves(two: tuple[PostgresStore, ...], monkeypatch: Any) -> None:
    monkeypatch.setattr(_pg_leases, "IDLE_RETURN", 0.1)
    a, _ = two
    k = await make_key(a, limit="1000")
    assert await a.reserve(k, "h1", D("1"), EXP, T0)
    await asyncio.sleep(0.3)
    assert len(await lease_rows(a, k)) == 1, "kept while a request is in flight"
    await a.settle("h1", gen(k, "g1", "0.25"), T0)
    for _ in range(50):
        if not await lease_rows(a, k):
            break
        await asyncio.sleep(0.05)
    u = await ledger(a, k)
    assert (u.open_holds, u.reserved, u.usage) == (0, D(0), D("0.25"))


async def test_a_lease_lost_to_expiry_bills_without_giving_back_twice(two: tuple[PostgresStore, ...]) -> None:
    a, b = two
    k = await make_key(a, limit="1000")
    assert await a.reserve(k, "h1", D("1"), EXP, T0)
    assert await b.expire_holds(EXP + 1) == 1, "another process expired the stalled lease"
    assert (await ledger(a, k)).reserved == 0
    assert await a.settle("h1", gen(k, "g1", "0.5"), T0)
    u = await ledger(a, k)
    assert (u.reserved, u.usage, u.open_holds) == (D(0), D("0.5"), 0)
    assert await a.expire_holds(EXP + 1) == 0
    assert await a.reserve(k, "h2", D("1"), EXP + 2, T0 + 2)
    assert (await ledger(a, k)).open_holds == 1


async def test_local_holds_expire_with_the_sweep(two: tuple[PostgresStore, ...]) -> None:
    a, _ = two
    k = await make_key(a)  # no limit: leased too
    assert await a.reserve(k, "h1", D("1"), T0 + 10, T0)  # grew the lease: its row expires with h1
    assert await a.reserve(k, "h2", D("1"), T0 + 99, T0)
    assert await a.expire_holds(T0 + 20) == 2, "h1 here, the lease's row there"
    assert not await a.release("h1") and await a.release("h2")
    assert await a.reserve(k, "h3", D("1"), T0 + 920, T0 + 20), "a new lease: the old one is not trusted"
    assert (await ledger(a, k)).open_holds == 1

"""Teams and users on both backends: records, and budgets reserved with their keys' as exactly."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from keeprouter.store import Store
from keeprouter.store.base import BudgetPatch, GenerationFilter, KeyPatch, TeamRecord, UserRecord, day_date
from store.backends import DAY, T0
from store.test_store_ledger import gen, ledger, make_key

D = Decimal


async def team(store: Store, tid: str = "t1", limit: str | None = None, **kw: Any) -> str:
    await store.insert_team(
        TeamRecord(id=tid, name=f"team {tid}", created_at=T0, limit=None if limit is None else D(limit), **kw)
    )
    return tid


async def user(store: Store, uid: str, team_id: str | None = "t1", limit: str | None = None, **kw: Any) -> str:
    await store.insert_user(
        UserRecord(
            id=uid, email=f"{uid}@Example.com", team_id=team_id, created_at=T0,
            limit=None if limit is None else D(limit), **kw,
        )
    )  # fmt: skip
    return uid


async def test_teams_and_users_round_trip(store: Store) -> None:
    await team(store, limit="5", limit_reset="monthly", models=("m/one", "m/two"), rpm_limit=30)
    t = await store.get_team("t1", T0)
    assert t is not None and t.name == "team t1" and t.limit == D(5) and t.limit_reset == "monthly"
    assert t.models == ("m/one", "m/two") and t.rpm_limit == 30 and t.usage == 0
    await user(store, "u1", team_admin=True)
    u = await store.find_user("U1@EXAMPLE.COM", T0)  # emails match case-insensitively
    assert u is not None and u.id == "u1" and u.team_id == "t1" and u.team_admin and u.models == ()
    with pytest.raises(ValueError):
        await store.insert_user(UserRecord(id="u2", email="u1@example.COM", created_at=T0))
    assert [x.id for x in await store.list_teams(T0)] == ["t1"]
    assert [x.id for x in await store.list_users(T0, team_id="t1")] == ["u1"]
    assert await store.list_users(T0, team_id="nope") == []

    t = await store.update_team("t1", BudgetPatch(name="renamed", models=(), limit=None), T0 + 1)
    assert t is not None and t.name == "renamed" and t.models == () and t.limit is None
    assert t.updated_at == T0 + 1
    u = await store.update_user("u1", BudgetPatch(team_admin=False, rpm_limit=5), T0)
    assert u is not None and not u.team_admin and u.rpm_limit == 5
    assert await store.update_user("missing", BudgetPatch(rpm_limit=5), T0) is None


async def test_keys_carry_owner_allowlist_and_parallel_limit(store: Store) -> None:
    await team(store)
    await user(store, "u1")
    k = await make_key(store, user_id="u1", team_id="t1", models=("m/one",), max_parallel_requests=2)
    rec = await store.get_key(k, T0)
    assert rec is not None and rec.user_id == "u1" and rec.team_id == "t1"
    assert rec.models == ("m/one",) and rec.max_parallel_requests == 2
    rec = await store.update_key(k, KeyPatch(models=(), max_parallel_requests=None), T0)
    assert rec is not None and rec.models == () and rec.max_parallel_requests is None


async def test_a_user_changing_team_takes_their_keys_and_deleting_them_disables_the_keys(store: Store) -> None:
    await team(store)
    await team(store, "t2")
    await user(store, "u1")
    k = await make_key(store, user_id="u1", team_id="t1")
    await store.update_user("u1", BudgetPatch(team_id="t2"), T0)
    rec = await store.get_key(k, T0)
    assert rec is not None and rec.team_id == "t2"
    with pytest.raises(ValueError):  # still has a member and a key
        await store.delete_team("t2", T0)
    assert await store.delete_user("u1", T0)
    assert not await store.delete_user("u1", T0)
    assert await store.get_user("u1", T0) is None
    rec = await store.get_key(k, T0)
    assert rec is not None and rec.disabled
    assert not await store.reserve(k, "h", D("0.01"), T0 + 60, T0)
    await store.delete_key(k, T0)
    assert await store.delete_team("t2", T0)
    assert await store.get_team("t2", T0) is None


async def test_team_and_user_budgets_hold_settle_and_release_with_the_key(store: Store) -> None:
    await team(store, limit="1.00")
    await user(store, "u1", limit="0.70")
    await user(store, "u2")
    k1 = await make_key(store, "k1", user_id="u1", team_id="t1")
    k2 = await make_key(store, "k2", user_id="u2", team_id="t1")
    assert await store.reserve(k1, "h1", D("0.60"), T0 + 60, T0)
    assert not await store.reserve(k1, "h2", D("0.20"), T0 + 60, T0)  # the user's 0.70 would go over
    assert await store.reserve(k2, "h3", D("0.40"), T0 + 60, T0)  # exactly the team's 1.00
    assert not await store.reserve(k2, "h4", D("0.01"), T0 + 60, T0)  # the team's would go over
    t = await store.get_team("t1", T0)
    assert t is not None and t.reserved == D("1.00")
    assert await store.settle("h1", gen(k1, "g1", "0.25"), T0)
    assert await store.release("h3")
    t, u = await store.get_team("t1", T0), await store.get_user("u1", T0)
    assert t is not None and t.usage == D("0.25") and t.reserved == 0 and t.limit_remaining == D("0.75")
    assert u is not None and u.usage == D("0.25") and u.reserved == 0
    assert await store.reserve(k2, "h5", D("0.75"), T0 + 60, T0)
    assert not await store.settle("h1", gen(k1, "g1", "0.25"), T0)  # settling twice bills once
    t = await store.get_team("t1", T0)
    assert t is not None and t.usage == D("0.25") and t.reserved == D("0.75")
    assert await store.expire_holds(T0 + 61) == 1
    t = await store.get_team("t1", T0)
    assert t is not None and t.reserved == 0
    await ledger(store, k1)


async def test_a_service_key_is_limited_by_its_team_alone(store: Store) -> None:
    await team(store, limit="0.10")
    k = await make_key(store, team_id="t1")
    assert await store.reserve(k, "h1", D("0.10"), T0 + 60, T0)
    assert not await store.reserve(k, "h2", D("0.01"), T0 + 60, T0)


async def test_team_budget_rolls_over_by_the_clock(store: Store) -> None:
    await team(store, limit="0.10", limit_reset="daily")
    await user(store, "u1")
    k = await make_key(store, user_id="u1", team_id="t1")
    assert await store.reserve(k, "h1", D("0.10"), T0 + 60, T0)
    assert await store.settle("h1", gen(k, "g1", "0.10"), T0)
    assert not await store.reserve(k, "h2", D("0.01"), T0 + 60, T0)
    tomorrow = T0 + DAY
    assert await store.reserve(k, "h3", D("0.10"), tomorrow + 60, tomorrow)
    t = await store.get_team("t1", tomorrow)
    assert t is not None and t.usage == D("0.10") and t.limit_usage == 0
    # A weekly reset recounts the week so far from the team's generations (T0 is a Monday).
    t = await store.update_team("t1", BudgetPatch(limit_reset="weekly"), tomorrow)
    assert t is not None and t.limit_usage == D("0.10")


@pytest.mark.parametrize("level", ["team", "user"])
async def test_concurrent_requests_from_two_keys_admit_exactly_n(store: Store, level: str) -> None:
    n = 37
    await team(store, limit=f"{n * 0.01:.2f}" if level == "team" else None)
    await user(store, "u1", limit=f"{n * 0.01:.2f}" if level == "user" else None)
    keys = [await make_key(store, f"k{i}", user_id="u1", team_id="t1") for i in range(2)]

    async def one(i: int) -> bool:
        return await store.reserve(keys[i % 2], f"h{i}", D("0.01"), T0 + 60, T0)

    admitted = await asyncio.gather(*(one(i) for i in range(200)))
    assert sum(admitted) == n
    budget = await (store.get_team("t1", T0) if level == "team" else store.get_user("u1", T0))
    assert budget is not None and budget.reserved == D(n) / 100


async def test_max_parallel_requests_counts_open_holds_exactly(store: Store) -> None:
    k = await make_key(store, max_parallel_requests=5)
    admitted = await asyncio.gather(*(store.reserve(k, f"h{i}", D("0.01"), T0 + 60, T0) for i in range(50)))
    assert sum(admitted) == 5
    held = [f"h{i}" for i, ok in enumerate(admitted) if ok]
    assert not await store.reserve(k, "late", D("0"), T0 + 60, T0)
    assert await store.release(held[0])  # a request that ended frees its slot
    assert await store.settle(held[1], gen(k, "g1", "0.01"), T0)
    assert await store.reserve(k, "n1", D("0"), T0 + 60, T0)
    assert await store.reserve(k, "n2", D("0"), T0 + 60, T0)
    assert not await store.reserve(k, "n3", D("0"), T0 + 60, T0)
    assert await store.expire_holds(T0 + 61) == 5  # a crashed gateway's slots come back with its holds
    assert await store.reserve(k, "n4", D("0"), T0 + 120, T0 + 61)
    u = await ledger(store, k)
    assert u.open_holds == 1


async def test_keys_generations_and_activity_are_found_by_owner(store: Store) -> None:
    """The console's views of a user's or a team's keys and requests: owner filters on both backends,
    a deleted key's history kept, and every filter combined with AND."""
    await team(store)
    await team(store, "t2")
    await user(store, "u1")
    await user(store, "u2", team_id="t2")
    a = await make_key(store, "a", user_id="u1", team_id="t1")
    b = await make_key(store, "b", team_id="t1")  # the team's service key
    c = await make_key(store, "c", user_id="u2", team_id="t2")
    assert [k.hash for k in await store.list_keys(T0, user_id="u1")] == [a]
    assert {k.hash for k in await store.list_keys(T0, team_id="t1")} == {a, b}
    assert {k.hash for k in await store.list_keys(T0)} == {a, b, c}
    for i, (k, model) in enumerate([(a, "m/one"), (b, "m/two"), (c, "m/one"), (a, "m/two")]):
        hold = f"h{i}"
        assert await store.reserve(k, hold, D("0.01"), T0 + 60, T0)
        record = msgspec.structs.replace(gen(k, f"g{i}", "0.01", at=T0 + i), model=model)
        assert await store.settle(hold, record, T0 + i)
    await store.delete_key(a, T0 + 10)  # revoked: its requests stay in the log

    async def ids(**kw: Any) -> list[str]:
        return [g.id for g in await store.find_generations(GenerationFilter(**kw))]

    assert await ids() == ["g3", "g2", "g1", "g0"]  # newest first
    assert await ids(user_id="u1") == ["g3", "g0"]
    assert await ids(team_id="t1") == ["g3", "g1", "g0"]
    assert await ids(team_id="t1", model="m/two") == ["g3", "g1"]
    assert await ids(key_hash=c, team_id="t1") == []
    assert await ids(id="g2", team_id="t2") == ["g2"] and await ids(id="g2", team_id="t1") == []
    older = await store.find_generations(GenerationFilter(team_id="t1"), before=T0 + 3, limit=1)
    assert [g.id for g in older] == ["g1"]
    day = day_date(int(T0 // DAY))
    by_team = await store.activity(day, day, team_id="t1")
    assert sum(r.requests for r in by_team) == 3 and {r.model for r in by_team} == {"m/one", "m/two"}
    assert sum(r.requests for r in await store.activity(day, day, key_hash=c)) == 1

"""The store's ledger operations on both backends: reserve, settle, release, expire, periods."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from keeprouter.store import Store, open_store
from keeprouter.store.base import GenerationRecord, KeyPatch, KeyRecord, KeyUsage, periods
from store.backends import DAY, T0, backend_of

D = Decimal


async def make_key(store: Store, name: str = "k", limit: str | None = None, **kw: Any) -> str:
    key_hash = f"hash-{name}"
    rec = KeyRecord(
        hash=key_hash,
        name=name,
        label=f"sk-kr-v1-{name}",
        created_at=T0,
        limit=None if limit is None else D(limit),
        **kw,
    )
    await store.insert_key(rec)
    return key_hash


def gen(key_hash: str, gid: str, cost: str, at: float = T0, **kw: Any) -> GenerationRecord:
    return GenerationRecord(
        id=gid,
        key_hash=key_hash,
        model="m/one",
        provider="p1",
        upstream_model="one",
        api="openai",
        created_at=at,
        cost=D(cost),
        **kw,
    )


async def ledger(store: Store, key_hash: str) -> KeyUsage:
    u = await store.key_usage(key_hash)
    assert u is not None
    assert u.usage == u.settled and u.reserved == u.held  # the invariants, checked every time
    return u


async def test_reserve_admits_up_to_the_limit_counting_open_holds(store: Store) -> None:
    k = await make_key(store, limit="1.00")
    assert await store.reserve(k, "h1", D("0.60"), T0 + 60, T0)
    assert not await store.reserve(k, "h2", D("0.41"), T0 + 60, T0)
    assert await store.reserve(k, "h3", D("0.40"), T0 + 60, T0)  # exactly to the limit
    assert not await store.reserve(k, "h4", D("0.000000001"), T0 + 60, T0)
    u = await ledger(store, k)
    assert (u.reserved, u.open_holds) == (D("1.00"), 2)


async def test_unlimited_keys_are_admitted_but_still_held(store: Store) -> None:
    k = await make_key(store)
    assert await store.reserve(k, "h1", D("1000000"), T0 + 60, T0)
    assert (await ledger(store, k)).reserved == D("1000000")


async def test_reserve_refuses_disabled_deleted_expired_and_unknown_keys(store: Store) -> None:
    a = await make_key(store, "a")
    b = await make_key(store, "b")
    c = await make_key(store, "c", expires_at=T0 + 10)
    await store.update_key(a, KeyPatch(disabled=True), T0)
    await store.delete_key(b, T0)
    assert not await store.reserve(a, "h1", D(0), T0 + 60, T0)
    assert not await store.reserve(b, "h2", D(0), T0 + 60, T0)
    assert await store.reserve(c, "h3", D(0), T0 + 60, T0)
    assert not await store.reserve(c, "h4", D(0), T0 + 60, T0 + 10)
    assert not await store.reserve("nope", "h5", D(0), T0 + 60, T0)


async def test_settle_bills_the_cost_drops_the_hold_and_records_the_generation(store: Store) -> None:
    k = await make_key(store, limit="1")
    assert await store.reserve(k, "h1", D("0.5"), T0 + 60, T0)
    assert await store.settle("h1", gen(k, "gen-1", "0.1234567891"), T0 + 1)
    u = await ledger(store, k)
    assert (u.usage, u.reserved, u.open_holds, u.generations) == (D("0.123456789"), D(0), 0, 1)
    g = await store.get_generation("gen-1")
    assert g is not None and g.cost == D("0.123456789")  # rounded half-even to a nano-dollar, once


async def test_settling_twice_never_bills_twice(store: Store) -> None:
    k = await make_key(store, limit="1")
    assert await store.reserve(k, "h1", D("0.5"), T0 + 60, T0)
    g = gen(k, "gen-1", "0.25")
    assert await store.settle("h1", g, T0)
    assert not await store.settle("h1", g, T0)
    assert not await store.settle("other-hold", g, T0)
    u = await ledger(store, k)
    assert (u.usage, u.generations) == (D("0.25"), 1)


async def test_release_returns_the_credit_once(store: Store) -> None:
    k = await make_key(store, limit="1")
    assert await store.reserve(k, "h1", D("1"), T0 + 60, T0)
    assert await store.release("h1")
    assert not await store.release("h1")
    u = await ledger(store, k)
    assert (u.usage, u.reserved) == (D(0), D(0))
    assert await store.reserve(k, "h2", D("1"), T0 + 60, T0)


async def test_expired_holds_give_their_credit_back_and_a_late_settle_still_bills(store: Store) -> None:
    k = await make_key(store, limit="1")
    other = await make_key(store, "other", limit="1")
    assert await store.reserve(k, "h1", D("0.7"), T0 + 60, T0)
    assert await store.reserve(k, "h2", D("0.3"), T0 + 120, T0)
    assert await store.reserve(other, "h3", D("0.5"), T0 + 30, T0)
    assert await store.expire_holds(T0 + 59) == 1
    assert await store.expire_holds(T0 + 60) == 1
    assert (await ledger(store, k)).reserved == D("0.3")
    assert (await ledger(store, other)).reserved == 0
    # The request behind h1 was only slow: its settle bills it, and credit is not returned twice.
    assert await store.settle("h1", gen(k, "gen-late", "0.65"), T0 + 200)
    u = await ledger(store, k)
    assert (u.usage, u.reserved) == (D("0.65"), D("0.3"))


async def test_daily_limit_resets_at_utc_midnight(store: Store) -> None:
    k = await make_key(store, limit="1", limit_reset="daily")
    assert await store.reserve(k, "h1", D("0.9"), T0 + 60, T0)
    assert await store.settle("h1", gen(k, "g1", "0.9"), T0)
    assert not await store.reserve(k, "h2", D("0.2"), T0 + 60, T0)
    tomorrow = (periods(T0).day + 1) * DAY + 1
    assert await store.reserve(k, "h2", D("1"), tomorrow + 60, tomorrow)
    rec = await store.get_key(k, tomorrow)
    assert rec is not None
    assert (rec.usage, rec.usage_daily, rec.usage_weekly, rec.limit_usage) == (D("0.9"), D(0), D("0.9"), D(0))
    assert rec.limit_remaining == D("1")


async def test_weekly_and_monthly_usage_follow_utc_calendar(store: Store) -> None:
    k = await make_key(store, limit="10", limit_reset="weekly")
    monday = periods(T0).week * DAY  # T0 is a Monday in June 2024
    for i, at in enumerate([monday - 1, monday + 1, monday + 3 * DAY]):  # Sunday before, Monday, Thursday
        assert await store.reserve(k, f"h{i}", D(1), at + 60, at)
        assert await store.settle(f"h{i}", gen(k, f"g{i}", "1"), at)
    rec = await store.get_key(k, monday + 3 * DAY)
    assert rec is not None
    assert (rec.usage_daily, rec.usage_weekly, rec.usage_monthly, rec.usage) == (D(1), D(2), D(3), D(3))
    assert rec.limit_usage == 2 and rec.limit_remaining == 8


async def test_changing_limit_reset_recounts_the_new_period_exactly(store: Store) -> None:
    k = await make_key(store, limit="10")
    first = dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC).timestamp()
    for i, at in enumerate([first - DAY, first, T0]):  # May 31, June 1, June 10
        assert await store.reserve(k, f"h{i}", D(1), at + 60, at)
        assert await store.settle(f"h{i}", gen(k, f"g{i}", "1.5"), at)
    monthly = await store.update_key(k, KeyPatch(limit_reset="monthly"), T0)
    assert monthly is not None and monthly.limit_usage == D("3.0")
    daily = await store.update_key(k, KeyPatch(limit_reset="daily"), T0)
    assert daily is not None and daily.limit_usage == D("1.5")
    total = await store.update_key(k, KeyPatch(limit_reset=None), T0)
    assert total is not None and total.limit_usage == D("4.5")


async def test_lowered_limit_refuses_without_breaking_the_ledger(store: Store) -> None:
    k = await make_key(store, limit="5")
    assert await store.reserve(k, "h1", D("2"), T0 + 60, T0)
    assert await store.settle("h1", gen(k, "g1", "2"), T0)
    await store.update_key(k, KeyPatch(limit=D("1")), T0)
    assert not await store.reserve(k, "h2", D("0"), T0 + 60, T0)  # even a free request: over the limit
    assert not await store.reserve(k, "h3", D("0.01"), T0 + 60, T0)
    rec = await store.get_key(k, T0)
    assert rec is not None and rec.limit_remaining == 0
    await ledger(store, k)


async def test_generation_round_trips_every_field(store: Store) -> None:
    k = await make_key(store)
    g = GenerationRecord(
        id="gen-123-abc",
        key_hash=k,
        model="vendor/model",
        provider="prov",
        upstream_model="up-model",
        api="anthropic",
        created_at=T0 + 0.25,
        streamed=True,
        status="cancelled",
        finish_reason="end_turn",
        tokens_prompt=1000,
        tokens_completion=200,
        tokens_cached=600,
        tokens_cache_write=100,
        tokens_reasoning=50,
        cost=D("0.001234567"),
        cache_discount=D("-0.000123456"),  # signed: cache writes cost more than input
        latency_ms=1234,
        ttft_ms=321,
        throughput=55.5,
        app="https://cline.bot",
        app_title="Cline",
        attempts=[{"provider": "a", "status": 503, "error": "busy"}],
        error="client went away",
    )
    assert await store.settle("no-hold", g, T0)
    assert await store.get_generation("gen-123-abc") == g
    assert await store.get_generation("gen-missing") is None
    assert await store.list_generations(k) == [g]
    assert await store.list_generations(k, before=T0) == []


async def test_constraints_refuse_negative_money(store: Store) -> None:
    k = await make_key(store)
    with pytest.raises(Exception, match=r"(?i)check|constraint"):
        await store.settle("h", gen(k, "g-neg", "-1"), T0)
    assert (await ledger(store, k)).generations == 0


async def test_activity_and_app_rankings(store: Store) -> None:
    a = await make_key(store, "a")
    b = await make_key(store, "b")
    day1 = dt.datetime.fromtimestamp(T0, dt.UTC).date()
    rows = [
        gen(a, "g1", "0.1", T0, tokens_prompt=10, tokens_completion=5, tokens_reasoning=2, app="x.com"),
        gen(a, "g2", "0.2", T0 + 1, tokens_prompt=20, tokens_completion=5, app="x.com", app_title="X"),
        gen(b, "g3", "0.3", T0 + 2, tokens_prompt=1000, app="y.com"),
        msgspec.structs.replace(gen(b, "g4", "0.4", T0 + DAY), model="m/two"),
    ]
    for r in rows:
        assert await store.settle("none", r, r.created_at)
    act = await store.activity(day1, day1)
    assert len(act) == 1 and act[0].date == day1.isoformat()
    assert (act[0].requests, act[0].prompt_tokens, act[0].completion_tokens, act[0].reasoning_tokens) == (
        3,
        1030,
        10,
        2,
    )
    assert act[0].usage == D("0.6")
    only_a = await store.activity(day1, day1 + dt.timedelta(days=1), key_hash=a)
    assert [(r.requests, r.usage) for r in only_a] == [(2, D("0.3"))]
    both_days = await store.activity(day1, day1 + dt.timedelta(days=1))
    assert [(r.date, r.model) for r in both_days] == [
        (day1.isoformat(), "m/one"),
        ((day1 + dt.timedelta(1)).isoformat(), "m/two"),
    ]
    apps = await store.app_rankings(day1, day1)
    assert [(r.app, r.app_title, r.requests, r.tokens) for r in apps] == [
        ("y.com", None, 1, 1000),
        ("x.com", "X", 2, 40),
    ]
    two_days = (day1, day1 + dt.timedelta(days=1))
    g5 = msgspec.structs.replace(gen(b, "g5", "0.1", T0 + DAY, tokens_prompt=7, app="z.com"), model="m/two")
    assert await store.settle("none", g5, g5.created_at)
    assert [r.app for r in await store.app_rankings(*two_days, model="m/two")] == ["z.com"]
    assert [r.app for r in await store.app_rankings(*two_days, model="m/one")] == ["y.com", "x.com"]


async def test_sqlite_sees_another_process_key_change_within_two_seconds(store_url: str) -> None:
    """SQLite admits from a cached copy of the key row; the CLI may change the key from another
    process (another store here), and the gateway must see it once the copy is 2 s old."""
    if backend_of(store_url) != "sqlite":
        pytest.skip("the admission cache is SQLite's")
    gateway, cli = await open_store(store_url), await open_store(store_url)
    try:
        k = await make_key(cli, limit="1")
        assert await gateway.reserve(k, "h1", D("0.5"), T0 + 60, T0)
        await cli.update_key(k, KeyPatch(limit=D("0.5")), T0)
        assert not await gateway.reserve(k, "h2", D("0.01"), T0 + 60, T0 + 2.5)
        await cli.update_key(k, KeyPatch(limit=D("2")), T0)
        assert await gateway.reserve(k, "h3", D("1"), T0 + 60, T0 + 5)
        await cli.update_key(k, KeyPatch(disabled=True), T0)
        assert not await gateway.reserve(k, "h4", D(0), T0 + 60, T0 + 7.5)
        await gateway.update_key(k, KeyPatch(disabled=False), T0)  # this process's writes: seen at once
        assert await gateway.reserve(k, "h5", D(0), T0 + 60, T0 + 7.5)
        u = await ledger(gateway, k)
        assert (u.reserved, u.open_holds) == (D("1.5"), 3)
    finally:
        await gateway.close()
        await cli.close()


async def test_sqlite_key_reads_racing_settles_never_overspend(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every reserve here reads the key row again (its clock is past the cached copy's 2 s) while
    other requests settle: a read that started before a settle must not hide that settle's cost,
    whatever order the coroutines wake up in (jittered here)."""
    if backend_of(store_url) != "sqlite":
        pytest.skip("the admission cache is SQLite's")
    run = store._run  # type: ignore[attr-defined]
    rng = random.Random(7)

    async def jittery_run(*args: Any) -> Any:
        result = await run(*args)
        for _ in range(rng.randrange(4)):
            await asyncio.sleep(0)
        return result

    monkeypatch.setattr(store, "_run", jittery_run)
    unit = D("0.000001")
    k = await make_key(store, limit=str(unit * 100))
    clock = [T0]
    admitted: list[str] = []

    async def worker(w: int) -> None:
        for i in range(40):
            clock[0] += 3
            now = clock[0]
            if await store.reserve(k, f"h{w}-{i}", unit, now + 60, now):
                admitted.append(f"g{w}-{i}")
                await asyncio.sleep(0)
                assert await store.settle(f"h{w}-{i}", gen(k, f"g{w}-{i}", str(unit)), now)

    await asyncio.gather(*(worker(w) for w in range(10)))
    u = await ledger(store, k)
    assert len(admitted) == 100 and u.usage == unit * 100 and u.generations == 100


@pytest.mark.parametrize("meanwhile", ["settle", "update_key"])
async def test_sqlite_a_late_key_read_never_hides_a_newer_write(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch, meanwhile: str
) -> None:
    """A reserve reads the key row; before its coroutine wakes up, a settle (or a key update) of
    this process lands. The older read must not replace what the newer write taught the cache."""
    if backend_of(store_url) != "sqlite":
        pytest.skip("the admission cache is SQLite's")
    k = await make_key(store, limit="1")
    assert await store.reserve(k, "h0", D("0.6"), T0 + 60, T0)
    run, gate, first = store._run, asyncio.Event(), [True]  # type: ignore[attr-defined]

    async def late_first_read(*args: Any) -> Any:
        late, first[0] = first[0], False
        result = await run(*args)
        if late:
            await gate.wait()
        return result

    monkeypatch.setattr(store, "_run", late_first_read)
    slow = asyncio.ensure_future(store.reserve(k, "h1", D("0.4"), T0 + 60, T0 + 3))  # past the 2 s: reads
    await asyncio.sleep(0)  # its read is queued (and runs) before the write below
    if meanwhile == "settle":
        assert await store.settle("h0", gen(k, "g0", "0.7"), T0 + 3)
    else:
        await store.update_key(k, KeyPatch(disabled=True), T0 + 3)
    gate.set()
    assert not await slow  # 0.7 billed: 0.4 more does not fit (or: disabled); the stale read would admit it
    await ledger(store, k)

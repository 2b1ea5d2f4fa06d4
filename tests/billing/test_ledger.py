"""billing.Ledger on both backends: exactness under concurrency, idempotence, expiry, refusals."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest
from store.backends import Clock

from keeprouter.billing.ledger import Hold, Ledger, new_generation_id
from keeprouter.billing.pricing import charge, to_nanos, worst_case
from keeprouter.config import Pricing
from keeprouter.errors import AuthenticationFailed, InsufficientCredit
from keeprouter.formats.canonical import Usage
from keeprouter.keys import KeyService
from keeprouter.store import Store, open_store
from keeprouter.store.base import GenerationRecord, KeyRecord

D = Decimal
PRICE = Pricing(input=D("0.10"), output=D("0.30"))  # cheap: costs far below a micro-dollar
TIMEOUT = 60  # seconds; every load test is bounded


def generation(key: KeyRecord, cost: Decimal, clock: Clock) -> GenerationRecord:
    return GenerationRecord(
        id=new_generation_id(clock()),
        key_hash=key.hash,
        model="m",
        provider="p",
        upstream_model="u",
        api="openai",
        created_at=clock(),
        cost=cost,
    )


async def one_request(ledger: Ledger, key: KeyRecord, reserve: Decimal, cost: Decimal, clock: Clock) -> str | None:
    """Reserve, 'call the upstream', settle. Returns the generation id, or None when refused."""
    try:
        hold = await ledger.reserve(key, reserve)
    except InsufficientCredit as e:
        assert e.status == 402 and e.metadata == {"limit_source": "key_limit"}
        return None
    await asyncio.sleep(random.random() / 1000)  # interleave the settles with other reserves
    gen = generation(key, cost, clock)
    assert await ledger.settle(hold, gen)
    return gen.id


async def check_books(store: Store, key: KeyRecord, admitted: list[str]) -> Decimal:
    usage = await store.key_usage(key.hash)
    assert usage is not None
    assert usage.generations == len(admitted) and usage.open_holds == 0 and usage.reserved == 0
    costs = [g.cost for gid in admitted if (g := await store.get_generation(gid)) is not None]
    assert len(costs) == len(admitted)
    assert sum(costs, D(0)) == usage.usage == usage.settled  # to the nano-dollar
    return usage.usage


async def test_500_concurrent_requests_never_overspend(store: Store, clock: Clock) -> None:
    usage = Usage(input_tokens=1234, output_tokens=567)
    reserve = worst_case(2000, 1000, PRICE)  # the request's bound, above its actual cost
    cost = charge(usage, PRICE, "end_turn")
    assert cost < reserve and to_nanos(cost) % 1000  # not a whole number of micro-dollars
    keys = KeyService(store, clock)
    _, key = await keys.create("load", limit=reserve * 50)
    ledger = Ledger(store, clock)
    results = await asyncio.wait_for(
        asyncio.gather(*(one_request(ledger, key, reserve, cost, clock) for _ in range(500))), TIMEOUT
    )
    admitted = [r for r in results if r is not None]
    assert 50 <= len(admitted) < 500
    total = await check_books(store, key, admitted)
    assert total == cost * len(admitted) <= reserve * 50


async def test_exact_reservations_admit_exactly_the_limit(store: Store, clock: Clock) -> None:
    """reliability.md B3.4 C1: reservation == cost, so exactly limit/cost requests get through."""
    cost = charge(Usage(input_tokens=7, output_tokens=3), PRICE, "end_turn")  # 1.6 micro-dollars
    _, key = await KeyService(store, clock).create("exact", limit=cost * 100)
    ledger = Ledger(store, clock)
    results = await asyncio.wait_for(
        asyncio.gather(*(one_request(ledger, key, cost, cost, clock) for _ in range(500))), TIMEOUT
    )
    admitted = [r for r in results if r is not None]
    assert len(admitted) == 100
    assert await check_books(store, key, admitted) == key.limit


@pytest.mark.postgres
async def test_two_gateway_processes_share_one_limit(store_url: str, clock: Clock) -> None:
    """Two stores = two connection pools, as two gateway processes would have."""
    if not store_url.startswith("postgresql"):
        pytest.skip("multi-process sharing is a PostgreSQL property")
    stores = [await open_store(store_url) for _ in range(2)]
    try:
        cost = D("0.000001234")
        _, key = await KeyService(stores[0], clock).create("shared", limit=cost * 60)
        ledgers = [Ledger(s, clock) for s in stores]
        results = await asyncio.wait_for(
            asyncio.gather(*(one_request(ledgers[i % 2], key, cost, cost, clock) for i in range(400))),
            TIMEOUT,
        )
        admitted = [r for r in results if r is not None]
        assert len(admitted) == 60
        assert await check_books(stores[1], key, admitted) == key.limit
    finally:
        for s in stores:
            await s.close()


async def test_settle_is_idempotent(store: Store, clock: Clock) -> None:
    _, key = await KeyService(store, clock).create("idem", limit=D("1"))
    ledger = Ledger(store, clock)
    hold = await ledger.reserve(key, D("0.5"))
    gen = generation(key, D("0.3"), clock)
    results = await asyncio.gather(*(ledger.settle(hold, gen) for _ in range(10)))
    assert sorted(results) == [False] * 9 + [True]
    assert await check_books(store, key, [gen.id]) == D("0.3")


async def test_release_and_expiry_return_the_credit(store: Store, clock: Clock) -> None:
    _, key = await KeyService(store, clock).create("exp", limit=D("1"))
    ledger = Ledger(store, clock, hold_ttl=60)
    crashed = await ledger.reserve(key, D("0.6"))
    released = await ledger.reserve(key, D("0.4"))
    with pytest.raises(InsufficientCredit):
        await ledger.reserve(key, D("0.01"))
    assert await ledger.release(released) and not await ledger.release(released)
    with pytest.raises(InsufficientCredit):
        await ledger.reserve(key, D("0.5"))
    clock.advance(59)
    assert await ledger.expire_holds() == 0
    clock.advance(1)
    assert await ledger.expire_holds() == 1
    assert crashed.expires_at == clock()
    await ledger.reserve(key, D("1"))


async def test_refusal_says_why(store: Store, clock: Clock) -> None:
    keys = KeyService(store, clock)
    _, key = await keys.create("why", limit=D("0.5"))
    ledger = Ledger(store, clock)
    with pytest.raises(InsufficientCredit, match=r"Key limit exceeded.*\$0\.5") as e:
        await ledger.reserve(key, D("0.75"))
    assert e.value.metadata == {"limit_source": "key_limit"}
    await keys.update(key.hash, disabled=True)
    with pytest.raises(AuthenticationFailed):
        await ledger.reserve(key, D("0.1"))
    await keys.delete(key.hash)
    with pytest.raises(AuthenticationFailed):
        await ledger.reserve(key, D("0.1"))


async def test_holds_are_unique_and_rounded_up(store: Store, clock: Clock) -> None:
    _, key = await KeyService(store, clock).create("holds")
    ledger = Ledger(store, clock)
    holds = await asyncio.gather(*(ledger.reserve(key, D("0.0000000001")) for _ in range(50)))
    assert len({h.id for h in holds}) == 50
    assert all(h.amount == D("0.000000001") for h in holds)
    with pytest.raises(ValueError):
        await ledger.reserve(key, D("-1"))
    other = Hold(id=holds[0].id, key_hash="someone-else", amount=D(0), expires_at=0.0)
    with pytest.raises(ValueError):
        await ledger.settle(other, generation(key, D(0), clock))


@pytest.mark.parametrize("seed", range(5))
async def test_random_interleavings_keep_the_books(store: Store, clock: Clock, seed: int) -> None:
    """Invariant after any mix of reserve/settle/release/expire: usage == Σ settled costs,
    reserved == Σ open holds, and the limit is never exceeded by settled costs within their holds."""
    rng = random.Random(seed)
    _, key = await KeyService(store, clock).create("rand", limit=D("0.01"))
    ledger = Ledger(store, clock, hold_ttl=30)
    open_holds: list[Hold] = []
    settled: list[str] = []
    for _ in range(120):
        op = rng.random()
        if op < 0.45:
            try:
                open_holds.append(await ledger.reserve(key, D(rng.randint(1, 2_000_000)).scaleb(-9)))
            except InsufficientCredit:
                pass
        elif op < 0.75 and open_holds:
            hold = open_holds.pop(rng.randrange(len(open_holds)))
            gen = generation(key, D(rng.randint(0, 1_000_000)).scaleb(-9) * hold.amount / D("0.002"), clock)
            if await ledger.settle(hold, gen):
                settled.append(gen.id)
        elif op < 0.9 and open_holds:
            await ledger.release(open_holds.pop(rng.randrange(len(open_holds))))
        else:
            clock.advance(rng.randint(1, 20))
            await ledger.expire_holds()
            open_holds = [h for h in open_holds if h.expires_at > clock()]
        u = await store.key_usage(key.hash)
        assert u is not None and u.usage == u.settled and u.reserved == u.held
        assert u.open_holds == len(open_holds)
        assert u.usage <= D("0.01")
    for h in open_holds:
        await ledger.release(h)
    await check_books(store, key, settled)

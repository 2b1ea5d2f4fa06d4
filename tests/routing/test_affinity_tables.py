"""The affinity table: one suite run against the in-process table and the Redis one (the real
server at 127.0.0.1:6379, a private key prefix), then what only one of them does (the in-process
table's bound and sweep; Redis shared by two instances, and its outage falling back to memory)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from support.clock import Clock
from support.redis_server import drop_prefix, shared_client, unique_prefix

from keeprouter.routing.affinity import AffinityTable, MemoryAffinity
from keeprouter.routing.affinity.redis_table import RedisAffinity


@pytest_asyncio.fixture(name="table", params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def table_fixture(request: pytest.FixtureRequest) -> AsyncIterator[AffinityTable]:
    if request.param == "memory":
        yield MemoryAffinity()
        return
    client = await shared_client()
    prefix = unique_prefix()
    try:
        yield RedisAffinity(client, prefix=prefix)
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()


# ---- both tables ---------------------------------------------------------------------------------


async def test_unknown_conversation_has_no_endpoint(table: AffinityTable) -> None:
    assert await table.get("nobody") is None


async def test_remembers_and_replaces(table: AffinityTable) -> None:
    await table.put("c1", "m|a|up-a", 60)
    await table.put("c2", "m|b|up-b", 60)
    assert await table.get("c1") == "m|a|up-a" and await table.get("c2") == "m|b|up-b"
    await table.put("c1", "m|b|up-b", 60)  # the conversation moved: it stays moved
    assert await table.get("c1") == "m|b|up-b"


async def test_an_idle_conversation_is_forgotten_after_its_ttl(table: AffinityTable) -> None:
    await table.put("short", "m|a|up-a", 0.05)
    await table.put("long", "m|a|up-a", 60)
    await asyncio.sleep(0.15)
    assert await table.get("short") is None
    assert await table.get("long") == "m|a|up-a"


async def test_each_turn_extends_the_ttl(table: AffinityTable) -> None:
    await table.put("c", "m|a|up-a", 0.2)
    for _ in range(3):
        await asyncio.sleep(0.1)
        await table.put("c", "m|a|up-a", 0.2)
    assert await table.get("c") == "m|a|up-a"  # 0.3 s after the first put, alive by the last


# ---- in-process table ----------------------------------------------------------------------------


async def test_memory_table_is_bounded_least_recently_used_goes_first() -> None:
    t = MemoryAffinity(max_entries=3)
    for c in ("a", "b", "c"):
        await t.put(c, f"ep-{c}", 60)
    assert await t.get("a") == "ep-a"  # a is now the most recently used
    await t.put("d", "ep-d", 60)
    assert len(t) == 3 and await t.get("b") is None
    assert [await t.get(c) for c in ("a", "c", "d")] == ["ep-a", "ep-c", "ep-d"]


async def test_memory_table_sweeps_expired_entries() -> None:
    clock = Clock()
    t = MemoryAffinity(clock=clock, sweep_every=60)
    for i in range(100):
        await t.put(f"c{i}", "ep", 300 if i % 2 else 3600)
    clock.now += 301
    assert len(t) == 100  # nothing read them yet, and the sweep is not due
    clock.now += 60
    await t.put("new", "ep", 300)  # a put past the sweep interval sweeps
    assert len(t) == 51
    assert t.sweep(clock.now + 3600) == 51


def test_memory_table_refuses_a_zero_bound() -> None:
    with pytest.raises(ValueError):
        MemoryAffinity(max_entries=0)


# ---- Redis ---------------------------------------------------------------------------------------


@pytest.mark.redis
async def test_two_instances_share_one_table(shared: tuple[Redis, str]) -> None:
    client, prefix = shared
    a, b = RedisAffinity(client, prefix=prefix), RedisAffinity(client, prefix=prefix)
    await a.put("conv", "m|b|up-b", 60)
    assert await b.get("conv") == "m|b|up-b"
    await b.put("conv", "m|a|up-a", 60)
    assert await a.get("conv") == "m|a|up-a"
    ttl = await client.pttl(prefix + "conv")
    assert 59_000 < ttl <= 60_000  # SET with PX: Redis forgets it on its own
    assert len(a.fallback) == 0 and len(b.fallback) == 0


@pytest.mark.redis
async def test_redis_gone_falls_back_to_memory_then_comes_back(
    shared: tuple[Redis, str], caplog: pytest.LogCaptureFixture
) -> None:
    client, prefix = shared
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)  # nothing listens on port 1
    clock = Clock()
    t = RedisAffinity(dead, prefix=prefix, clock=clock)
    try:
        with caplog.at_level(logging.WARNING, "keeprouter.routing"):
            await t.put("conv", "m|a|up-a", 60)
            assert await t.get("conv") == "m|a|up-a"  # from memory, without asking Redis again
        assert not t.up and sum("affinity" in r.getMessage() for r in caplog.records) == 1
        clock.now += 5.0  # RETRY_AFTER: ask Redis again (now a working one)
        t._client = client
        assert t.up and await t.get("conv") is None
        await t.put("conv", "m|b|up-b", 60)
        assert await client.get(prefix + "conv") == b"m|b|up-b"
    finally:
        await dead.aclose()

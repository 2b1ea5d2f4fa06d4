"""Cached key records across processes on PostgreSQL: a change committed by one process drops the
cached record in every other at once (store._pg_notify), not when the cache's TTL runs out; a lost
listening connection drops everything and listens again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from keeprouter.errors import AuthenticationFailed
from keeprouter.keys import KeyService
from keeprouter.store.base import BudgetPatch, TeamRecord, UserRecord
from keeprouter.store.postgres import PostgresStore
from store.backends import PG_URL, T0, two_pg_stores

pytestmark = pytest.mark.postgres
LONG_TTL = 3600.0  # so only a notification can explain a dropped record


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await check():
        assert loop.time() < deadline, "not within the deadline"
        await asyncio.sleep(0.02)


@pytest.fixture
async def two() -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database, as two gateway processes have."""
    async with two_pg_stores(max_size=2) as stores:
        yield stores


async def test_a_change_in_one_process_drops_the_cached_record_in_another(
    two: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two
    here, there = KeyService(a, cache_ttl=LONG_TTL), KeyService(b, cache_ttl=LONG_TTL)
    await a.watch_keys(here.forget)
    key, rec = await there.create("k")
    other, _ = await there.create("other")
    assert (await here.authenticate(key)).rpm_limit is None
    await here.authenticate(other)  # cached too

    await there.update(rec.hash, rpm_limit=5)

    async def sees_limit() -> bool:
        return (await here.authenticate(key)).rpm_limit == 5

    await eventually(sees_limit)
    await there.delete(rec.hash)

    async def refused() -> bool:
        try:
            await here.authenticate(key)
        except AuthenticationFailed:
            return True
        return False

    await eventually(refused)
    assert (await here.authenticate(other)).name == "other"


async def test_people_writes_drop_every_cached_key(two: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = two
    here, there = KeyService(a, cache_ttl=LONG_TTL), KeyService(b, cache_ttl=LONG_TTL)
    await a.watch_keys(here.forget)
    for tid in ("t1", "t2"):
        await b.insert_team(TeamRecord(id=tid, name=tid, created_at=T0))
    await b.insert_user(UserRecord(id="u1", email="u1@example.com", team_id="t1", created_at=T0))
    key, _ = await there.create("owned", user_id="u1", team_id="t1")
    assert (await here.authenticate(key)).team_id == "t1"

    await b.update_user("u1", BudgetPatch(team_id="t2"), T0 + 1)  # the user's keys move with them

    async def moved() -> bool:
        return (await here.authenticate(key)).team_id == "t2"

    await eventually(moved)
    await b.delete_user("u1", T0 + 2)  # disables the user's keys

    async def disabled() -> bool:
        try:
            await here.authenticate(key)
        except AuthenticationFailed:
            return True
        return False

    await eventually(disabled)


async def test_a_lost_listener_drops_everything_and_listens_again(
    two: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two
    forgotten: list[str | None] = []
    here = KeyService(a, cache_ttl=LONG_TTL)

    def forget(key_hash: str | None) -> None:
        forgotten.append(key_hash)
        here.forget(key_hash)

    await a.watch_keys(forget)
    there = KeyService(b, cache_ttl=LONG_TTL)
    _, rec = await there.create("k")
    forgotten.clear()
    admin = await asyncpg.connect(PG_URL)
    try:
        listener = a._key_changes
        assert listener is not None and listener._conn is not None
        await admin.execute("SELECT pg_terminate_backend($1)", listener._conn.get_server_pid())
    finally:
        await admin.close()

    async def relistened() -> bool:
        return listener._conn is not None and not listener._lost.is_set() and forgotten.count(None) >= 2

    await eventually(relistened, 10.0)  # dropped on the loss, and again once listening
    await there.update(rec.hash, rpm_limit=7)

    async def heard() -> bool:
        return rec.hash in forgotten

    await eventually(heard)

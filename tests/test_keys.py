"""keys.KeyService on both backends: keys stored only as hashes, refused when not live, OpenRouter shapes."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import asyncpg
import pytest
from store.backends import (  # noqa: F401  (fixtures)
    DAY,
    T0,
    Clock,
    backend_of,
    clock_fixture,
    sqlite_files,
    store_fixture,
    store_url_fixture,
)

from keeprouter.billing.ledger import Ledger
from keeprouter.errors import AuthenticationFailed, InvalidRequest, NotFound
from keeprouter.keys import KEY_PREFIX, KeyService, iso
from keeprouter.store import Store
from keeprouter.store.base import GenerationRecord

D = Decimal


async def test_create_returns_the_key_once_and_stores_only_its_hash(store: Store, clock: Clock) -> None:
    keys = KeyService(store, clock)
    key, rec = await keys.create("ci", limit=10.0)
    assert key.startswith(KEY_PREFIX) and len(key) >= len(KEY_PREFIX) + 43  # 32 random bytes
    assert rec.hash == hashlib.sha256(key.encode()).hexdigest()
    assert rec.label == f"{key[:12]}...{key[-4:]}" and key not in rec.label
    assert rec.limit == D("10.0")
    assert (await keys.authenticate(key)).hash == rec.hash
    other, _ = await keys.create("ci")
    assert other != key


async def test_raw_key_is_nowhere_in_the_database(store: Store, store_url: str, clock: Clock) -> None:
    keys = KeyService(store, clock)
    key, rec = await keys.create("secret")
    secret = key.removeprefix(KEY_PREFIX)
    ledger = Ledger(store, clock)
    hold = await ledger.reserve(rec, D("0.01"))
    await ledger.settle(
        hold,
        GenerationRecord(
            id="gen-1",
            key_hash=rec.hash,
            model="m",
            provider="p",
            upstream_model="u",
            api="openai",
            created_at=clock(),
        ),
    )
    if backend_of(store_url) == "sqlite":
        blobs = [p.read_bytes() for p in sqlite_files(store_url)]
        assert any(rec.hash.encode() in b for b in blobs)  # the scan does see stored values
        assert not any(secret[:16].encode() in b for b in blobs)
    else:
        base, schema = store_url.split("?search_path=")
        conn = await asyncpg.connect(base, server_settings={"search_path": schema})
        try:
            dump = ""
            for table in ("keys", "holds", "generations", "key_usage_daily", "schema_migrations"):
                rows = await conn.fetch(f"SELECT t::text FROM {table} t")  # table names are ours
                dump += "\n".join(r[0] for r in rows)
        finally:
            await conn.close()
        assert rec.hash in dump and secret[:16] not in dump


async def test_unknown_malformed_disabled_deleted_and_expired_keys_are_refused(store: Store, clock: Clock) -> None:
    keys = KeyService(store, clock, cache_ttl=0)
    for bad in ("", "sk-kr-v1-nope", "x" * 10_000):
        with pytest.raises(AuthenticationFailed):
            await keys.authenticate(bad)
    disabled, d = await keys.create("d")
    deleted, x = await keys.create("x")
    expiring, _ = await keys.create("e", expires_at=clock() + 60)
    await keys.update(d.hash, disabled=True)
    await keys.delete(x.hash)
    with pytest.raises(AuthenticationFailed, match="disabled"):
        await keys.authenticate(disabled)
    with pytest.raises(AuthenticationFailed):
        await keys.authenticate(deleted)
    await keys.authenticate(expiring)
    clock.advance(60)
    with pytest.raises(AuthenticationFailed, match="expired"):
        await keys.authenticate(expiring)
    await keys.update(d.hash, disabled=False)
    await keys.authenticate(disabled)
    with pytest.raises(NotFound):
        await keys.delete(x.hash)
    with pytest.raises(NotFound):
        await keys.get(x.hash)


async def test_cache_is_dropped_on_local_changes_and_expires_for_remote_ones(store: Store, clock: Clock) -> None:
    keys = KeyService(store, clock, cache_ttl=2.0)
    other_process = KeyService(store, clock)
    key, rec = await keys.create("cache")
    await keys.authenticate(key)
    await keys.update(rec.hash, disabled=True)  # this process: refused at once
    with pytest.raises(AuthenticationFailed):
        await keys.authenticate(key)
    await keys.update(rec.hash, disabled=False)
    await keys.authenticate(key)
    await other_process.delete(rec.hash)  # another process: refused within cache_ttl
    await keys.authenticate(key)
    clock.advance(2.0)
    with pytest.raises(AuthenticationFailed):
        await keys.authenticate(key)


async def test_admin_key_authenticates_as_admin(store: Store, clock: Clock) -> None:
    keys = KeyService(store, clock, admin_key="sk-kr-admin-test")
    rec = await keys.authenticate("sk-kr-admin-test")
    assert rec.is_admin and KeyService.to_openrouter(rec)["is_management_key"] is True
    with pytest.raises(AuthenticationFailed):
        await keys.authenticate("sk-kr-admin-tesT")


async def test_openrouter_key_shape(store: Store, clock: Clock) -> None:
    keys = KeyService(store, clock)
    _, rec = await keys.create("shape", limit=D("5"), limit_reset="monthly", expires_at="2099-01-01T00:00:00Z")
    ledger = Ledger(store, clock)
    hold = await ledger.reserve(rec, D("1"))
    await ledger.settle(
        hold,
        GenerationRecord(
            id="gen-s",
            key_hash=rec.hash,
            model="m",
            provider="p",
            upstream_model="u",
            api="openai",
            created_at=clock(),
            cost=D("0.1234567"),
        ),
    )
    data = KeyService.to_openrouter(await keys.get(rec.hash))
    assert data["limit"] == 5.0 and data["limit_remaining"] == 4.8765433 and data["limit_reset"] == "monthly"
    assert data["usage"] == data["usage_daily"] == data["usage_weekly"] == data["usage_monthly"] == 0.1234567
    assert data["created_at"] == iso(T0) == "2024-06-10T06:13:20.000Z"
    assert data["expires_at"] == "2099-01-01T00:00:00.000Z" and data["updated_at"] is None
    assert data["is_management_key"] is False and data["disabled"] is False
    assert {"hash", "name", "label", "byok_usage", "include_byok_in_limit", "is_free_tier"} <= data.keys()


async def test_list_update_and_validation(store: Store, clock: Clock) -> None:
    keys = KeyService(store, clock)
    made = []
    for i in range(3):
        made.append((await keys.create(f"k{i}"))[1])
        clock.advance(1)
    await keys.update(made[1].hash, disabled=True, name="renamed", limit=D("2.5"))
    assert [k.name for k in await keys.list()] == ["k0", "renamed", "k2"]
    assert [k.name for k in await keys.list(include_disabled=False)] == ["k0", "k2"]
    assert [k.name for k in await keys.list(offset=1, limit=1)] == ["renamed"]
    updated = await keys.update(made[1].hash, limit=None, limit_reset="weekly")
    assert updated.limit is None and updated.limit_reset == "weekly" and updated.updated_at == clock()
    for bad in (
        {"limit": -1},
        {"limit": "abc"},
        {"limit_reset": "hourly"},
        {"expires_at": T0 - DAY},
        {"expires_at": "not a date"},
    ):
        with pytest.raises(InvalidRequest):
            await keys.create("bad", **bad)
    with pytest.raises(InvalidRequest):
        await keys.create("  ")
    with pytest.raises(NotFound):
        await keys.update("nope", name="x")

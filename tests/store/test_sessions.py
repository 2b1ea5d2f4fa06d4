"""Console sessions in the store, on both backends: stored by id hash, touched, ended, swept."""

from __future__ import annotations

from keeprouter.store.base import SessionRecord, Store


def _session(id_hash: str, now: float, expires: float) -> SessionRecord:
    return SessionRecord(id_hash=id_hash, key_hash="k1", created_at=now, last_seen=now, expires_at=expires)


async def test_insert_get_touch_delete(store: Store) -> None:
    await store.insert_session(_session("h1", 1000.0, 5000.0))
    got = await store.get_session("h1")
    assert got == _session("h1", 1000.0, 5000.0)
    await store.touch_session("h1", 1500.0)
    await store.touch_session("h1", 1200.0)  # a late, older touch never rewinds
    got = await store.get_session("h1")
    assert got is not None and got.last_seen == 1500.0
    await store.delete_session("h1")
    assert await store.get_session("h1") is None
    assert await store.get_session("nope") is None


async def test_sweep_drops_expired_and_idle(store: Store) -> None:
    await store.insert_session(_session("old", 1000.0, 2000.0))  # past its absolute end
    await store.insert_session(_session("idle", 1000.0, 9000.0))  # idle since 1000
    await store.insert_session(_session("live", 2900.0, 9000.0))
    assert await store.delete_sessions_before(3000.0, 2500.0) == 2
    assert await store.get_session("live") is not None
    assert await store.get_session("old") is None and await store.get_session("idle") is None

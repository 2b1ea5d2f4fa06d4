"""Console sessions over the real store (SQLite and PostgreSQL): ended sessions are swept as people
sign in, a key disabled, deleted or expired ends its sessions, and the sign-in form's signed token."""

from __future__ import annotations

from store.backends import Clock, clock_fixture, store_fixture, store_url_fixture  # noqa: F401  (fixtures)

from keeprouter.keys import KeyService
from keeprouter.store.base import KeyPatch, SessionRecord, Store
from keeprouter.web.session import ABSOLUTE_SECONDS, IDLE_SECONDS, SWEEP_EVERY, LoginGuard, Sessions, login_secret


def _row(id_hash: str, created: float, seen: float) -> SessionRecord:
    return SessionRecord(id_hash=id_hash, key_hash="k", created_at=created, last_seen=seen,
                         expires_at=created + ABSOLUTE_SECONDS)  # fmt: skip


async def test_signing_in_sweeps_ended_sessions_at_most_every_sweep_interval(store: Store, clock: Clock) -> None:
    keys = KeyService(store, clock)
    _, record = await keys.create("k")
    sessions = Sessions(store, keys, clock)
    now = clock.now
    await store.insert_session(_row("past-end", now - ABSOLUTE_SECONDS - 10, now - 60))
    await store.insert_session(_row("idle", now - 3600 * 20, now - IDLE_SECONDS - 10))
    await store.insert_session(_row("live", now - IDLE_SECONDS, now - IDLE_SECONDS + 60))  # idle in a minute
    await sessions.open(record)
    assert await store.get_session("past-end") is None and await store.get_session("idle") is None
    assert await store.get_session("live") is not None
    # within the interval, a sign-in does not sweep again (one DELETE per interval, not per sign-in)
    clock.advance(120)  # "live" is idle now
    await sessions.open(record)
    assert await store.get_session("live") is not None
    clock.advance(SWEEP_EVERY)
    await sessions.open(record)
    assert await store.get_session("live") is None


async def test_a_disabled_deleted_or_expired_key_ends_its_sessions(store: Store, clock: Clock) -> None:
    keys = KeyService(store, clock, cache_ttl=3600)  # even a long key cache does not keep a session alive
    sessions = Sessions(store, keys, clock)
    made = {n: (await keys.create(n))[1] for n in ("disabled", "deleted", "expired", "kept")}
    ids = {n: await sessions.open(r) for n, r in made.items()}
    for n, sid in ids.items():
        signed = await sessions.resolve(sid)
        assert signed is not None and signed.record.hash == made[n].hash
    await keys.update(made["disabled"].hash, disabled=True)
    await keys.delete(made["deleted"].hash)
    assert await store.update_key(made["expired"].hash, KeyPatch(expires_at=clock.now + 5), clock.now)
    clock.advance(10)
    for n in ("disabled", "deleted", "expired"):
        assert await sessions.resolve(ids[n]) is None, n
    assert (await sessions.resolve(ids["kept"])) is not None
    await keys.update(made["disabled"].hash, disabled=False)  # re-enabling does not revive the session
    assert await sessions.resolve(ids["disabled"]) is None


async def test_idle_and_absolute_ends(store: Store, clock: Clock) -> None:
    keys = KeyService(store, clock)
    _, record = await keys.create("k")
    sessions = Sessions(store, keys, clock)
    sid = await sessions.open(record)
    for _ in range(int(ABSOLUTE_SECONDS // (IDLE_SECONDS / 2)) - 1):  # kept busy: never idle
        clock.advance(IDLE_SECONDS / 2)
        assert await sessions.resolve(sid) is not None
    clock.advance(IDLE_SECONDS / 2)  # the absolute end, busy or not
    assert await sessions.resolve(sid) is None
    other = await sessions.open(record)
    clock.advance(IDLE_SECONDS + 1)
    assert await sessions.resolve(other) is None
    assert await sessions.resolve("x" * 101) is None and await sessions.resolve("") is None


def test_the_sign_in_token_is_signed_per_nonce_and_agreed_by_every_instance() -> None:
    a, b = LoginGuard(login_secret("sk-admin")), LoginGuard(login_secret("sk-admin"))
    nonce = a.nonce(None)
    assert a.ok(nonce, b.token(nonce))  # another instance of the same deployment signed it
    assert not a.ok(nonce, LoginGuard(login_secret("sk-other")).token(nonce))
    assert not a.ok(a.nonce(None), a.token(nonce))  # a token belongs to its nonce only
    assert not a.ok(None, a.token(nonce)) and not a.ok(nonce, None) and not a.ok(nonce, "")
    assert a.nonce(nonce) == nonce and a.nonce("bad cookie!") != "bad cookie!"
    assert login_secret(None) != login_secret(None)  # no admin key: random per process

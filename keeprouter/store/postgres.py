"""PostgreSQL backend: an asyncpg pool, safe with any number of gateway processes on one database.

Every ledger operation is ONE statement (data-modifying CTEs), hence one round trip and its own
transaction; settles arriving together share one round trip and one COMMIT (_pg_settle.py).
The admission check is a single row-locked UPDATE of the key whose WHERE clause reads
only that row: under READ COMMITTED a concurrent writer makes it wait and then re-check against
the committed row, so two processes can never both admit on the same stale balance. The gateway
opens the store with `lease_credit`: that UPDATE then takes a slice of the key's credit for this
process, and the requests that fit in it are admitted from memory (_pg_leases.py).

Outages: every operation goes through `GuardedPool` (_pg_pool.py), which bounds it in time (connecting,
acquiring a connection, each command) and turns whatever the driver raises when the server is
gone, shutting down or too slow into ONE error, `errors.StoreUnavailable` (503), so callers never
see a hang or a driver-specific exception. The pool needs no help to recover: a connection that
died is replaced at its next acquire, once the server answers again.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec

from keeprouter.store import _health, _response_cache, _responses, _rows
from keeprouter.store._migrate import SCHEMA_MIGRATIONS_DDL, migrations
from keeprouter.store._pg_leases import CreditLeases
from keeprouter.store._pg_notify import NOTIFY_KEY, KeyChanges, OnChange
from keeprouter.store._pg_people import PgPeople, owner_reserve_sql, owners_release_ctes
from keeprouter.store._pg_pool import (
    COMMAND_TIMEOUT,
    CONNECT_TIMEOUT,
    MIGRATE_TIMEOUT,
    GuardedPool,
    retrying_deadlocks,
)
from keeprouter.store._pg_settle import SETTLE, SETTLE_MANY, SettleBatcher
from keeprouter.store.base import (
    ActivityRow,
    AppRow,
    CacheUsageRow,
    EndpointDay,
    EndpointMinute,
    GenerationFilter,
    GenerationRecord,
    KeyPatch,
    KeyRecord,
    KeyUsage,
    SessionRecord,
    StoredResponse,
    epoch_day,
    from_nanos,
    periods,
    to_nanos,
    to_nanos_ceil,
)

_MIGRATION_LOCK = 0x6B72_6D69  # pg_advisory_xact_lock id: one migrator at a time per database
_KEY_SELECT = _rows.key_select_sql("$1", "$2", "$3")  # then $4.. for the caller's own parameters

_KEY_FITS = f"""hash = $4 AND deleted_at IS NULL AND NOT disabled AND (expires_at IS NULL OR expires_at > $6)
      AND (limit_nanos IS NULL
           OR {_rows.limit_usage_sql("$1", "$2", "$3")} + reserved_nanos + $5 <= limit_nanos)
      AND (max_parallel_requests IS NULL OR inflight < max_parallel_requests)"""
# A hold is committed without waiting for its WAL flush (synchronous_commit off for that transaction
# only): the flush is most of a reservation's cost in PostgreSQL's CPU and in latency. Visibility is
# not delayed (other sessions see the commit at once, so admission stays exact across processes),
# and WAL is written in order, so the settle that later drops the hold flushes it with its own
# durable commit. What a database CRASH may lose is only the holds taken in its last fraction of a
# second (wal_writer_delay): hold and reserved amount vanish together, the settle still bills the
# generation, and the requests then in flight were not held against the limit (docs/reliability.md).
_ASYNC_COMMIT = "set_config('synchronous_commit', 'off', true)"  # true: this transaction only
# A key without user or team: one statement. An owned key is refused here and takes `_reserve_owned`.
_RESERVE = f"""
WITH a AS (SELECT {_ASYNC_COMMIT}), k AS (
    UPDATE keys SET reserved_nanos = reserved_nanos + $5, inflight = inflight + 1
    WHERE {_KEY_FITS} AND user_id IS NULL AND team_id IS NULL
    RETURNING hash
)
INSERT INTO holds (id, key_hash, amount_nanos, expires_at) SELECT $7, hash, $5, $8 FROM k, a RETURNING 1
"""
# The owned key's last step, after its team and user: its owners must still be the ones held on.
_RESERVE_OWNED = f"""
WITH k AS (
    UPDATE keys SET reserved_nanos = reserved_nanos + $5, inflight = inflight + 1
    WHERE {_KEY_FITS} AND user_id IS NOT DISTINCT FROM $9::text AND team_id IS NOT DISTINCT FROM $10::text
    RETURNING hash
)
INSERT INTO holds (id, key_hash, amount_nanos, expires_at, user_id, team_id)
SELECT $7, hash, $5, $8, $9, $10 FROM k RETURNING 1
"""
_RESERVE_TEAM = owner_reserve_sql("teams")
_RESERVE_USER = owner_reserve_sql("users")


class _Refused(Exception):
    """Rolls back an owned key's reservation when one of its budgets does not cover it."""


def _drop_holds_sql(where: str) -> str:
    """Delete matching holds and give their credit back, per key, in one statement."""
    return f"""
WITH h AS (DELETE FROM holds WHERE {where} RETURNING key_hash, user_id, team_id, amount_nanos),
s AS (SELECT key_hash, SUM(amount_nanos)::bigint AS amount, COUNT(*) AS n FROM h GROUP BY key_hash),
{owners_release_ctes()}
UPDATE keys SET reserved_nanos = reserved_nanos - s.amount, inflight = inflight - s.n
FROM s WHERE keys.hash = s.key_hash RETURNING s.n
"""


_RELEASE = _drop_holds_sql("id = $1")
_EXPIRE = _drop_holds_sql("expires_at <= $1")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release hook replacing asyncpg's reset query (one more round trip per operation):
    this store leaves no session state behind (no SET, LISTEN, cursors or session-level locks;
    its one advisory lock is transaction-scoped), so there is nothing to reset."""


def _p(now: float) -> tuple[int, int, int]:
    p = periods(now)
    return p.day, p.week, p.month


class PostgresStore(PgPeople):
    """`Store` on PostgreSQL. Open with `await PostgresStore.open(url)`; `close()` closes the pool."""

    def __init__(self, pool: asyncpg.Pool, url: str | None = None, *, lease_credit: bool = False) -> None:
        self._pool = GuardedPool(pool)
        self._url = url  # for the connection that listens for key changes (watch_keys)
        self._key_changes: KeyChanges | None = None
        self._settles = SettleBatcher(self._pool, SETTLE, SETTLE_MANY)  # group commit (_pg_settle.py)
        # Admission from per-process slices of a key's credit (_pg_leases.py): the gateway's.
        self._leases = CreditLeases(self._pool, _RELEASE) if lease_credit else None

    @classmethod
    async def open(
        cls, url: str, *, min_size: int = 1, max_size: int = 10, lease_credit: bool = False
    ) -> PostgresStore:
        # Unknown URL query parameters (e.g. ?search_path=x) become server settings in asyncpg.
        pool = await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, reset=_keep_session,
            timeout=CONNECT_TIMEOUT, command_timeout=COMMAND_TIMEOUT,
        )  # fmt: skip
        return cls(pool, url, lease_credit=lease_credit)

    async def watch_keys(self, on_change: OnChange) -> None:
        """Call `on_change(hash)` when another process (or this one) changes a key, `on_change(None)`
        when any may have (store._pg_notify)."""
        if self._url is not None and self._key_changes is None:
            leases = self._leases
            if leases is not None:  # a changed key's lease goes back: its next request is checked anew

                def changed(key_hash: str | None, inner: OnChange = on_change) -> None:
                    leases.forget(key_hash)
                    inner(key_hash)

                on_change = changed
            self._key_changes = KeyChanges(self._url, on_change)
            await self._key_changes.start()

    async def close(self) -> None:
        if self._key_changes is not None:
            await self._key_changes.close()
        await self._settles.close()
        if self._leases is not None:
            await self._leases.close()
        await self._pool.raw.close()

    async def ping(self) -> None:
        """SELECT 1, bounded by the pool's timeouts; StoreUnavailable when the server does not answer."""
        await self._pool.fetchval("SELECT 1")

    async def migrate(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK, timeout=MIGRATE_TIMEOUT)
            await conn.execute(SCHEMA_MIGRATIONS_DDL)
            applied = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for m in migrations("postgres"):
                if m.version not in applied:
                    # no arguments: simple protocol, several statements
                    await conn.execute(m.sql, timeout=MIGRATE_TIMEOUT)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                        m.version, m.name, time.time(),
                    )  # fmt: skip

    # ---- keys ---------------------------------------------------------------------------------

    async def insert_key(self, key: KeyRecord) -> None:
        await self._pool.execute(
            "INSERT INTO keys (hash, name, label, disabled, limit_nanos, limit_reset, expires_at, created_at,"
            " updated_at, rpm_limit, tpm_limit, user_id, team_id, models, max_parallel_requests)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            key.hash, key.name, key.label, key.disabled, None if key.limit is None else to_nanos(key.limit),
            key.limit_reset, key.expires_at, key.created_at, key.updated_at, key.rpm_limit, key.tpm_limit,
            key.user_id, key.team_id, _rows.models_to_text(key.models), key.max_parallel_requests,
        )  # fmt: skip

    async def get_key(self, key_hash: str, now: float) -> KeyRecord | None:
        row = await self._pool.fetchrow(_KEY_SELECT + " AND hash = $4", *_p(now), key_hash)
        return None if row is None else _rows.key_from_row(row)

    async def list_keys(
        self, now: float, *, offset: int = 0, limit: int = 100, include_disabled: bool = True,
        user_id: str | None = None, team_id: str | None = None,
    ) -> list[KeyRecord]:  # fmt: skip
        sql = _KEY_SELECT + ("" if include_disabled else " AND NOT disabled")
        sql += " AND ($6::text IS NULL OR user_id = $6) AND ($7::text IS NULL OR team_id = $7)"
        sql += " ORDER BY created_at, hash LIMIT $4 OFFSET $5"
        rows = await self._pool.fetch(sql, *_p(now), limit, offset, user_id, team_id)
        return [_rows.key_from_row(r) for r in rows]

    async def update_key(self, key_hash: str, patch: KeyPatch, now: float) -> KeyRecord | None:
        args: list[Any] = [key_hash, now]
        sets = ["updated_at = $2"]

        def bind(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        for field in ("name", "disabled", "limit_reset", "expires_at", "rpm_limit", "tpm_limit", "models",
                      "max_parallel_requests"):  # fmt: skip
            value = getattr(patch, field)
            if value is not msgspec.UNSET:
                value = _rows.models_to_text(value) if field == "models" else value
                sets.append(f"{field} = {bind(value)}")  # column names are ours, never input
        if patch.limit is not msgspec.UNSET:
            sets.append(f"limit_nanos = {bind(None if patch.limit is None else to_nanos(patch.limit))}")
        if patch.limit_reset is not msgspec.UNSET:
            # The new period's usage is exact from the daily rows: every period starts on a UTC day.
            # SET expressions see the row's old limit_reset, so the new one is bound.
            d, w, m = (bind(v) for v in _p(now))
            new_p = _rows.period_start_sql(d, w, m).replace("limit_reset", f"{bind(patch.limit_reset)}::text")
            sets.append(f"period_start = {new_p}")
            sets.append(
                "period_usage_nanos = (SELECT COALESCE(SUM(usage_nanos), 0)::bigint FROM key_usage_daily"
                f" WHERE key_hash = $1 AND day >= {new_p})"
            )
        async with self._pool.acquire() as conn, conn.transaction():
            # Lock first: the UPDATE's subquery then runs on a fresh snapshot that includes every
            # settle committed before ours took the row.
            if await conn.fetchval("SELECT 1 FROM keys WHERE hash = $1 AND deleted_at IS NULL FOR UPDATE", key_hash):
                await conn.execute(f"UPDATE keys SET {', '.join(sets)} WHERE hash = $1", *args)
                await conn.execute(NOTIFY_KEY, key_hash)  # delivered to every process on commit
                row = await conn.fetchrow(_KEY_SELECT + " AND hash = $4", *_p(now), key_hash)
                return None if row is None else _rows.key_from_row(row)
        return None

    async def delete_key(self, key_hash: str, now: float) -> bool:
        deleted = await self._pool.fetchval(
            "WITH d AS (UPDATE keys SET deleted_at = $2, disabled = TRUE, updated_at = $2"
            f" WHERE hash = $1 AND deleted_at IS NULL RETURNING hash) SELECT hash FROM d, ({NOTIFY_KEY}) n",
            key_hash, now,
        )  # fmt: skip
        return deleted is not None

    # ---- ledger -------------------------------------------------------------------------------

    async def reserve(self, key_hash: str, hold_id: str, amount: Decimal, expires_at: float, now: float) -> bool:
        nanos = to_nanos_ceil(amount)
        leases = self._leases
        if leases is not None and await leases.reserve(key_hash, hold_id, nanos, expires_at, now):
            return True
        admitted = await self._reserve_one(key_hash, hold_id, nanos, expires_at, now)
        if admitted and leases is not None:
            leases.unleasable(key_hash, now)  # owned, or parallel-limited: the lease refused it
        return admitted

    async def _reserve_one(self, key_hash: str, hold_id: str, nanos: int, expires_at: float, now: float) -> bool:
        """A hold of its own for one request."""
        args = (*_p(now), key_hash, nanos, float(now), hold_id, float(expires_at))
        if await self._pool.fetchval(_RESERVE, *args) is not None:
            return True
        # a deadlock against a settle (which touches key, user and team in one statement) is retried
        return await retrying_deadlocks(lambda: self._reserve_owned(args))

    async def _reserve_owned(self, args: tuple[Any, ...]) -> bool:
        """Team, then user, then key, in one transaction; any refusal rolls back all three."""
        d, w, m, key_hash, nanos = args[:5]
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                owners = await conn.fetchrow(
                    f"SELECT user_id, team_id, {_ASYNC_COMMIT} FROM keys WHERE hash = $1 AND deleted_at IS NULL",
                    key_hash,
                )
                if owners is None or (owners[0] is None and owners[1] is None):
                    return False  # an ownerless key the one-statement path refused
                user_id, team_id = owners[0], owners[1]
                if team_id is not None and await conn.fetchval(_RESERVE_TEAM, d, w, m, team_id, nanos) is None:
                    raise _Refused
                if user_id is not None and await conn.fetchval(_RESERVE_USER, d, w, m, user_id, nanos) is None:
                    raise _Refused
                if await conn.fetchval(_RESERVE_OWNED, *args, user_id, team_id) is None:
                    raise _Refused
                return True
        except _Refused:
            return False

    async def settle(self, hold_id: str, gen: GenerationRecord, now: float) -> bool:
        leases = self._leases
        lease = None if leases is None else leases.lease_of(hold_id)
        if leases is None or lease is None:
            return await self._settles.settle((*_rows.gen_values(gen), hold_id, *_p(now), False))
        billed = await self._settles.settle((*_rows.gen_values(gen), lease, *_p(now), True))
        leases.settled(hold_id, to_nanos(gen.cost))
        return billed

    async def release(self, hold_id: str) -> bool:
        if self._leases is not None and self._leases.owns(hold_id):
            return self._leases.release(hold_id)
        return bool(await self._pool.fetch(_RELEASE, hold_id))

    async def expire_holds(self, now: float) -> int:
        local = 0 if self._leases is None else self._leases.expire(now)
        return local + sum(int(r[0]) for r in await self._pool.fetch(_EXPIRE, float(now)))

    async def key_usage(self, key_hash: str) -> KeyUsage | None:
        row = await self._pool.fetchrow(
            "SELECT usage_nanos, reserved_nanos,"
            " (SELECT COALESCE(SUM(cost_nanos), 0)::bigint FROM generations WHERE key_hash = $1),"
            " (SELECT COUNT(*) FROM generations WHERE key_hash = $1),"
            " (SELECT COALESCE(SUM(amount_nanos), 0)::bigint FROM holds WHERE key_hash = $1),"
            " (SELECT COUNT(*) FROM holds WHERE key_hash = $1) FROM keys WHERE hash = $1",
            key_hash,
        )
        if row is None:
            return None
        usage, reserved, settled, n_gen, held, n_holds = row
        return KeyUsage(usage=from_nanos(usage), reserved=from_nanos(reserved), settled=from_nanos(settled),
                        held=from_nanos(held), open_holds=n_holds, generations=n_gen)  # fmt: skip

    # ---- reports ------------------------------------------------------------------------------

    async def get_generation(self, generation_id: str) -> GenerationRecord | None:
        row = await self._pool.fetchrow(f"SELECT {_rows.GEN_COLUMN_LIST} FROM generations WHERE id = $1", generation_id)
        return None if row is None else _rows.gen_from_row(row)

    async def list_generations(
        self, key_hash: str, *, before: float | None = None, limit: int = 50
    ) -> list[GenerationRecord]:
        return await self.find_generations(GenerationFilter(key_hash=key_hash), before=before, limit=limit)

    async def find_generations(
        self, match: GenerationFilter, *, before: float | None = None, limit: int = 50
    ) -> list[GenerationRecord]:
        args: list[Any] = [float("inf") if before is None else float(before), limit]
        sql = f"SELECT {_rows.GEN_COLUMN_LIST} FROM generations WHERE created_at < $1"
        sql += _rows.generation_match_sql(match, _rows.binder(args, numbered=True))
        rows = await self._pool.fetch(sql + " ORDER BY created_at DESC LIMIT $2", *args)
        return [_rows.gen_from_row(r) for r in rows]

    async def activity(
        self, start: dt.date, end: dt.date, *, key_hash: str | None = None, team_id: str | None = None
    ) -> list[ActivityRow]:
        args: list[Any] = [epoch_day(start), epoch_day(end)]
        match = _rows.generation_match_sql(GenerationFilter(key_hash=key_hash, team_id=team_id),
                                           _rows.binder(args, numbered=True))  # fmt: skip
        rows = await self._pool.fetch(
            "SELECT day, model, provider, COUNT(*), SUM(tokens_prompt)::bigint,"
            " SUM(tokens_completion)::bigint, SUM(tokens_reasoning)::bigint,"
            " SUM(cost_nanos)::bigint FROM generations WHERE day BETWEEN $1 AND $2" + match
            + " GROUP BY day, model, provider ORDER BY day, model, provider",
            *args,
        )  # fmt: skip
        return [_rows.activity_from_row(r) for r in rows]

    async def cache_usage(
        self, start: dt.date, end: dt.date, *, key_hash: str | None = None, model: str | None = None
    ) -> list[CacheUsageRow]:
        rows = await self._pool.fetch(_response_cache.PG_USAGE, epoch_day(start), epoch_day(end), key_hash, model)
        return _response_cache.usage_rows([tuple(r) for r in rows])

    async def app_rankings(
        self, start: dt.date, end: dt.date, *, limit: int = 50, model: str | None = None
    ) -> list[AppRow]:
        rows = await self._pool.fetch(
            "SELECT app, MAX(app_title), COUNT(*), SUM(tokens_prompt + tokens_completion)::bigint AS tokens"
            " FROM generations WHERE day BETWEEN $1 AND $2 AND app IS NOT NULL AND ($4::text IS NULL OR model = $4)"
            " GROUP BY app ORDER BY tokens DESC, app LIMIT $3",
            epoch_day(start), epoch_day(end), limit, model,
        )  # fmt: skip
        return [AppRow(app=r[0], app_title=r[1], requests=r[2], tokens=r[3]) for r in rows]

    # ---- endpoint health (store._health) ------------------------------------------------------

    async def write_endpoint_minutes(self, rows: Sequence[EndpointMinute]) -> None:
        if rows:
            await _health.pg_write(self._pool, rows)

    async def endpoint_daily(self, model_id: str | None, start: dt.date, end: dt.date) -> list[EndpointDay]:
        return await _health.pg_daily(self._pool, model_id, start, end)

    # ---- console sessions -----------------------------------------------------------------------

    async def insert_session(self, session: SessionRecord) -> None:
        s = session
        await self._pool.execute(
            "INSERT INTO console_sessions (id_hash, key_hash, created_at, last_seen, expires_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            s.id_hash, s.key_hash, s.created_at, s.last_seen, s.expires_at,
        )  # fmt: skip

    async def get_session(self, id_hash: str) -> SessionRecord | None:
        row = await self._pool.fetchrow(
            "SELECT key_hash, created_at, last_seen, expires_at FROM console_sessions WHERE id_hash = $1", id_hash
        )
        if row is None:
            return None
        return SessionRecord(id_hash=id_hash, key_hash=row[0], created_at=row[1], last_seen=row[2], expires_at=row[3])

    async def touch_session(self, id_hash: str, now: float) -> None:
        await self._pool.execute(
            "UPDATE console_sessions SET last_seen = GREATEST(last_seen, $2) WHERE id_hash = $1", id_hash, float(now)
        )

    async def delete_session(self, id_hash: str) -> None:
        await self._pool.execute("DELETE FROM console_sessions WHERE id_hash = $1", id_hash)

    async def delete_sessions_before(self, expires_at: float, idle_since: float) -> int:
        status = await self._pool.execute(
            "DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen < $2",
            float(expires_at), float(idle_since),
        )  # fmt: skip
        return int(status.rsplit(" ", 1)[-1])

    # ---- stored Responses API responses (store._responses) --------------------------------------

    async def insert_response(self, resp: StoredResponse, items: Sequence[tuple[str, str]]) -> None:
        await _responses.pg_insert(self._pool, resp, items)

    async def get_response(self, owner: str, response_id: str) -> StoredResponse | None:
        return await _responses.pg_get(self._pool, owner, response_id)

    async def get_items(self, owner: str, item_ids: Sequence[str]) -> dict[str, str]:
        return await _responses.pg_items(self._pool, owner, item_ids)

    async def delete_response(self, owner: str, response_id: str) -> bool:
        return await _responses.pg_delete(self._pool, owner, response_id)

    async def delete_responses_before(self, created_before: float, limit: int) -> int:
        return await _responses.pg_sweep(self._pool, created_before, limit)

    # ---- the response cache (store._response_cache) ---------------------------------------------

    async def get_cached_answer(self, key: str, now: float) -> str | None:
        return await _response_cache.pg_get(self._pool, key, now)

    async def put_cached_answer(self, key: str, answer: str, expires_at: float) -> None:
        await _response_cache.pg_put(self._pool, key, answer, expires_at)

    async def sweep_cached_answers(self, now: float, keep: int) -> int:
        return await _response_cache.pg_sweep(self._pool, now, keep)

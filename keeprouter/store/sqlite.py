"""SQLite backend: one connection on its own thread (`_sqlite_worker`), owned by the one process
that owns the database file.

WAL (readers never block the writer), busy_timeout (another process, e.g. the CLI, may briefly hold
the write lock), synchronous=NORMAL (in WAL a commit survives a killed process; only an OS crash
or power cut can lose the last commits), foreign keys on.

Each operation is one plain function run on that thread in ONE hop: that thread runs
queued calls strictly one after another, so a ledger transaction (BEGIN IMMEDIATE ... COMMIT) is
never interleaved with another coroutine's statements, and costs one thread switch instead of one
per statement.

The ledger's credit holds live in this process's memory, not in the database: exactly one gateway
process owns a SQLite file (the `keeprouter keys` CLI may change keys from another process, but
never reserves or settles). Holds only stop the requests in flight from overspending together; when
the process dies its requests die with it, so its holds must vanish too, and they do. So `reserve`,
`release` and `expire_holds` never touch the database (no thread hop, no write on the way to the
first token); the `holds` table and `keys.reserved_nanos` stay in the schema, unused on SQLite.
(PostgreSQL keeps holds in the database: several instances share it.)

`reserve` admits against a per-key admission state cached from the key row (limit, what counts
against it, disabled/deleted/expiry), read again after ADMISSION_TTL seconds (so the CLI's changes
are seen soon, like the auth cache), on a new UTC day (every limit period starts on one), and after
this process writes the key. Settles are written to the database as before and their result is put
into that state at once, so the next admission is exact. Database operations are ordered by a
sequence number taken on the worker thread, so a slow read never overwrites a newer settle's figure.

Settles are group-committed: those submitted while a batch is being written go together into the
next batch, one thread hop and one COMMIT for all of them, each inside its own SAVEPOINT so one
failing body never undoes another. A caller still returns only once its own write is committed;
under load this divides the commit cost by the batch size.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import sqlite3
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from keeprouter.store import _health, _response_cache, _responses, _rows
from keeprouter.store._sqlite_admission import Admission
from keeprouter.store._sqlite_people import SqlitePeople
from keeprouter.store._sqlite_sync import (
    _configure,
    _execute,
    _fetch,
    _group,
    _migrate_sync,
    _Pending,
    _transaction,
)
from keeprouter.store._sqlite_worker import SqliteWorker
from keeprouter.store.base import (
    SECONDS_PER_DAY,
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

T = TypeVar("T")
_P = {"d": ":d", "w": ":w", "m": ":m"}
_KEY_SELECT = _rows.key_select_sql(**_P)
_LIMIT_USAGE = _rows.limit_usage_sql(**_P)
_PERIOD_START = _rows.period_start_sql(**_P)

# What `reserve` needs of an account: a key (by hash), a user ("u:<id>") or a team ("t:<id>").
_ADMISSION_SELECT = {
    "k": f"SELECT disabled, limit_nanos, expires_at, {_LIMIT_USAGE}, user_id, team_id, max_parallel_requests FROM keys"
    " WHERE hash = :hash AND deleted_at IS NULL",
    "u": f"SELECT 0, limit_nanos, NULL, {_LIMIT_USAGE}, NULL, NULL, NULL FROM users"
    " WHERE id = :hash AND deleted_at IS NULL",
    "t": f"SELECT 0, limit_nanos, NULL, {_LIMIT_USAGE}, NULL, NULL, NULL FROM teams"
    " WHERE id = :hash AND deleted_at IS NULL",
}


def _bill_sql(table: str, where: str, returning: str = "") -> str:
    """Add :cost to a key's, user's or team's usage. A late settle from an earlier period must not
    rewind period_start: it is billed to the current one. Returns the new limit usage."""
    return (
        f"UPDATE {table} SET usage_nanos = usage_nanos + :cost,"
        f" period_usage_nanos = CASE WHEN {_PERIOD_START} > period_start THEN :cost"
        " ELSE period_usage_nanos + :cost END,"
        f" period_start = max(period_start, {_PERIOD_START}) WHERE {where} RETURNING {_LIMIT_USAGE}{returning}"
    )


_BILL = _bill_sql("keys", "hash = :hash", ", user_id, team_id")
_BILL_OWNER = {"u": _bill_sql("users", "id = :owner"), "t": _bill_sql("teams", "id = :owner")}
_INSERT_GEN = (
    f"INSERT INTO generations ({_rows.GEN_COLUMN_LIST}) VALUES ({', '.join('?' * len(_rows.GEN_COLUMNS))})"
    " ON CONFLICT (id) DO NOTHING"
)
_ADD_DAILY = (
    "INSERT INTO key_usage_daily (key_hash, day, usage_nanos, requests) VALUES (?, ?, ?, 1)"
    " ON CONFLICT (key_hash, day) DO UPDATE SET usage_nanos = usage_nanos + excluded.usage_nanos,"
    " requests = requests + 1"
)


def _period_params(now: float) -> dict[str, Any]:
    p = periods(now)
    return {"d": p.day, "w": p.week, "m": p.month}


class SqliteStore(SqlitePeople):
    """`Store` on SQLite. Open with `await SqliteStore.open(path)` (":memory:" works); `close()` it."""

    def __init__(self, db: SqliteWorker) -> None:
        self._db = db
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        # The ledger's in-memory side (see the module docstring); touched only on the event loop.
        self._admit: dict[str, Admission] = {}
        self._reserved: dict[str, int] = {}  # account -> nano-dollars held by its open holds
        # hold id -> (key hash, nanos, expires_at, the key's user and team accounts held on too)
        self._holds: dict[str, tuple[str, int, float, tuple[str, ...]]] = {}
        self._inflight: dict[str, int] = {}  # key hash -> its open holds (its requests in flight)
        self._db_seq = 0  # incremented ONLY on the worker thread: orders database states

    async def _tx(self, body: Callable[..., T], *args: Any) -> T:
        """Run `body(conn, *args)` in the next group commit; returns once it is committed."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((body, args, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        return await fut

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await self._run(_group, [(body, args) for body, args, _ in batch])
            except Exception as e:  # the COMMIT itself failed: every body in the batch failed
                results = [(False, e)] * len(batch)
            for (_, _, fut), (ok, value) in zip(batch, results, strict=True):
                if fut.done():
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)

    @classmethod
    async def open(cls, path: str) -> SqliteStore:
        db = await SqliteWorker.open(path)
        store = cls(db)
        await store._run(_configure)
        return store

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._db.run(fn, *args)

    def _sequenced(self, c: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> tuple[int, T]:
        """On the worker thread: run `fn` and number the database state it leaves (or saw)."""
        result = fn(c, *args)
        self._db_seq += 1
        return self._db_seq, result

    def _invalidate(self, key_hash: str, seq: int) -> None:
        """This process wrote the key at `seq`: its admission state must be read again."""
        old = self._admit.get(key_hash)
        if old is None or old.seq < seq:
            self._admit[key_hash] = Admission.marker(seq)

    def _with_reserved(self, rec: KeyRecord) -> KeyRecord:
        return msgspec.structs.replace(rec, reserved=from_nanos(self._reserved.get(rec.hash, 0)))

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._db.close()

    async def migrate(self) -> None:
        await self._run(_migrate_sync)

    async def ping(self) -> None:
        await self._run(_fetch, "SELECT 1", ())

    # ---- keys ---------------------------------------------------------------------------------

    async def insert_key(self, key: KeyRecord) -> None:
        limit = None if key.limit is None else to_nanos(key.limit)
        seq, _ = await self._run(self._sequenced, _execute, (
            "INSERT INTO keys (hash, name, label, disabled, limit_nanos, limit_reset, expires_at, created_at,"
            " updated_at, rpm_limit, tpm_limit, user_id, team_id, models, max_parallel_requests)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ), (key.hash, key.name, key.label, int(key.disabled), limit, key.limit_reset, key.expires_at,
            key.created_at, key.updated_at, key.rpm_limit, key.tpm_limit, key.user_id, key.team_id,
            _rows.models_to_text(key.models), key.max_parallel_requests))  # fmt: skip
        self._invalidate(key.hash, seq)

    async def get_key(self, key_hash: str, now: float) -> KeyRecord | None:
        rows = await self._run(_fetch, _KEY_SELECT + " AND hash = :hash", {**_period_params(now), "hash": key_hash})
        return self._with_reserved(_rows.key_from_row(rows[0])) if rows else None

    async def list_keys(
        self, now: float, *, offset: int = 0, limit: int = 100, include_disabled: bool = True,
        user_id: str | None = None, team_id: str | None = None,
    ) -> list[KeyRecord]:  # fmt: skip
        sql = _KEY_SELECT + ("" if include_disabled else " AND disabled = 0")
        sql += " AND (:user_id IS NULL OR user_id = :user_id) AND (:team_id IS NULL OR team_id = :team_id)"
        sql += " ORDER BY created_at, hash LIMIT :limit OFFSET :offset"
        params = {**_period_params(now), "limit": limit, "offset": offset, "user_id": user_id, "team_id": team_id}
        rows = await self._run(_fetch, sql, params)
        return [self._with_reserved(_rows.key_from_row(r)) for r in rows]

    async def update_key(self, key_hash: str, patch: KeyPatch, now: float) -> KeyRecord | None:
        params = {**_period_params(now), "hash": key_hash, "now": now}
        sets = ["updated_at = :now"]
        for field in ("name", "disabled", "limit_reset", "expires_at", "rpm_limit", "tpm_limit", "models",
                      "max_parallel_requests"):  # fmt: skip
            value = getattr(patch, field)
            if value is not msgspec.UNSET:
                sets.append(f"{field} = :{field}")  # field names come from the tuple above, never input
                params[field] = _rows.models_to_text(value) if field == "models" else value
        if patch.limit is not msgspec.UNSET:
            sets.append("limit_nanos = :limit")
            params["limit"] = None if patch.limit is None else to_nanos(patch.limit)
        if patch.limit_reset is not msgspec.UNSET:
            # The new period's usage is exact from the daily rows: every period starts on a UTC day.
            # SET expressions see the row's old limit_reset, so the new one is read from the binding.
            new_p = _PERIOD_START.replace("limit_reset", ":limit_reset")
            sets.append(f"period_start = {new_p}")
            sets.append(
                "period_usage_nanos = (SELECT COALESCE(SUM(usage_nanos), 0) FROM key_usage_daily"
                f" WHERE key_hash = :hash AND day >= {new_p})"
            )
        update = f"UPDATE keys SET {', '.join(sets)} WHERE hash = :hash AND deleted_at IS NULL"

        def body(c: sqlite3.Connection) -> list[Any]:
            if c.execute(update, params).rowcount == 0:
                return []
            return c.execute(_KEY_SELECT + " AND hash = :hash", params).fetchall()

        seq, rows = await self._run(self._sequenced, _transaction, body)
        self._invalidate(key_hash, seq)
        return self._with_reserved(_rows.key_from_row(rows[0])) if rows else None

    async def delete_key(self, key_hash: str, now: float) -> bool:
        sql = "UPDATE keys SET deleted_at = ?, disabled = 1, updated_at = ?"
        sql += " WHERE hash = ? AND deleted_at IS NULL"
        done: tuple[int, int] = await self._run(self._sequenced, _execute, sql, (now, now, key_hash))
        self._invalidate(key_hash, done[0])
        return done[1] == 1

    # ---- ledger (holds in memory: see the module docstring) ----------------------------------

    async def _admission(self, account: str, now: float) -> Admission:
        """Read an account's admission state and install it, unless something newer got there first."""
        kind, _, owner = account.partition(":") if ":" in account else ("k", "", account)
        params = {**_period_params(now), "hash": owner}
        while True:
            seq, rows = await self._run(self._sequenced, _fetch, _ADMISSION_SELECT[kind], params)
            old = self._admit.get(account)
            if old is not None and old.seq > seq:
                if old.fresh(now):
                    return old  # a newer read finished first
                continue  # this process wrote the account after our read (or a newer read is stale): again
            day = int(now // SECONDS_PER_DAY)
            if rows:
                disabled, limit, expires_at, usage, user_id, team_id, parallel = rows[0]
                owners = tuple(f"{k}:{o}" for k, o in (("u", user_id), ("t", team_id)) if o is not None)
                new = Admission(seq, now, day, not disabled, expires_at, limit, int(usage), owners, parallel)
            else:  # no such live account
                new = Admission(seq, now, day, False, None, None, 0)
            if old is not None and old.usage_seq > seq and old.day == day:
                new.limit_usage, new.usage_seq = old.limit_usage, old.usage_seq  # a settle after our read
            self._admit[account] = new
            return new

    async def _fresh(self, account: str, now: float) -> Admission:
        state = self._admit.get(account)
        return state if state is not None and state.fresh(now) else await self._admission(account, now)

    async def reserve(self, key_hash: str, hold_id: str, amount: Decimal, expires_at: float, now: float) -> bool:
        nanos = to_nanos_ceil(amount)
        key = await self._fresh(key_hash, now)
        states = [(key_hash, key)] + [(o, await self._fresh(o, now)) for o in key.owners]
        # No await from here on: the checks and the holds are one step for every other coroutine.
        if key.expires_at is not None and key.expires_at <= now:
            return False
        if key.parallel is not None and self._inflight.get(key_hash, 0) >= key.parallel:
            return False
        for account, state in states:
            if not state.live:
                return False
            if state.limit is not None and state.limit_usage + self._reserved.get(account, 0) + nanos > state.limit:
                return False
        if hold_id in self._holds:
            raise ValueError(f"hold {hold_id!r} already exists")
        self._holds[hold_id] = (key_hash, nanos, expires_at, key.owners)
        for account, _ in states:
            self._reserved[account] = self._reserved.get(account, 0) + nanos
        self._inflight[key_hash] = self._inflight.get(key_hash, 0) + 1
        return True

    async def settle(self, hold_id: str, gen: GenerationRecord, now: float) -> bool:
        values = _rows.gen_values(gen)
        cost = to_nanos(gen.cost)
        p = _period_params(now)
        bill = {**p, "hash": gen.key_hash, "cost": cost}

        def body(c: sqlite3.Connection) -> tuple[int, list[tuple[str, int]]] | None:
            if c.execute(_INSERT_GEN, values).rowcount != 1:
                return None  # already settled: nothing is billed twice
            billed: list[tuple[str, int]] = []
            row = c.execute(_BILL, bill).fetchone()
            if row is not None:  # the key's current user and team pay too
                billed.append((gen.key_hash, int(row[0])))
                for kind, owner in (("u", row[1]), ("t", row[2])):
                    if owner is not None:
                        owned = c.execute(_BILL_OWNER[kind], {**bill, "owner": owner}).fetchone()
                        if owned is not None:
                            billed.append((f"{kind}:{owner}", int(owned[0])))
            c.execute(_ADD_DAILY, (gen.key_hash, p["d"], cost))
            self._db_seq += 1  # on the worker thread, like every other increment
            return self._db_seq, billed

        result = await self._tx(body)
        # Committed. Now, in one step: the hold goes and the bill counts against the limits instead.
        self._drop_hold(hold_id, gen.key_hash)
        if result is not None:
            seq, billed = result
            noted: list[tuple[str, int | None]] = [*billed] or [(gen.key_hash, None)]
            for account, limit_usage in noted:
                self._note_usage(account, seq, limit_usage, p["d"])
        return result is not None

    def _note_usage(self, account: str, seq: int, limit_usage: int | None, day: int) -> None:
        state = self._admit.get(account)
        if state is not None and seq <= state.usage_seq:
            pass  # read after this settle: already counted
        elif state is not None and state.loaded_at != math.inf and state.day == day and limit_usage is not None:
            state.limit_usage, state.usage_seq = limit_usage, seq
        else:  # nothing (a read may be in flight), a marker, or another day: read it again
            self._invalidate(account, seq)

    def _drop_hold(self, hold_id: str, key_hash: str | None = None) -> bool:
        hold = self._holds.get(hold_id)
        if hold is None or (key_hash is not None and hold[0] != key_hash):
            return False
        del self._holds[hold_id]
        if self._inflight[hold[0]] > 1:
            self._inflight[hold[0]] -= 1
        else:
            del self._inflight[hold[0]]
        for account in (hold[0], *hold[3]):
            # .get: zero-amount holds (a free model's) may have emptied the entry already
            left = self._reserved.get(account, 0) - hold[1]
            if left:
                self._reserved[account] = left
            else:
                self._reserved.pop(account, None)
        return True

    async def release(self, hold_id: str) -> bool:
        return self._drop_hold(hold_id)

    async def expire_holds(self, now: float) -> int:
        expired = [hold_id for hold_id, (_, _, expires_at, _) in self._holds.items() if expires_at <= now]
        for hold_id in expired:
            self._drop_hold(hold_id)
        return len(expired)

    async def key_usage(self, key_hash: str) -> KeyUsage | None:
        rows = await self._run(_fetch, (
            "SELECT usage_nanos, (SELECT COALESCE(SUM(cost_nanos), 0) FROM generations WHERE key_hash = :h),"
            " (SELECT COUNT(*) FROM generations WHERE key_hash = :h) FROM keys WHERE hash = :h"
        ), {"h": key_hash})  # fmt: skip
        if not rows:
            return None
        usage, settled, n_gen = rows[0]
        held = [amount for k, amount, _, _ in self._holds.values() if k == key_hash]
        reserved = self._reserved.get(key_hash, 0)
        return KeyUsage(usage=from_nanos(usage), reserved=from_nanos(reserved), settled=from_nanos(settled),
                        held=from_nanos(sum(held)), open_holds=len(held), generations=n_gen)  # fmt: skip

    # ---- reports ------------------------------------------------------------------------------

    async def get_generation(self, generation_id: str) -> GenerationRecord | None:
        sql = f"SELECT {_rows.GEN_COLUMN_LIST} FROM generations WHERE id = ?"
        rows = await self._run(_fetch, sql, (generation_id,))
        return _rows.gen_from_row(rows[0]) if rows else None

    async def list_generations(
        self, key_hash: str, *, before: float | None = None, limit: int = 50
    ) -> list[GenerationRecord]:
        return await self.find_generations(GenerationFilter(key_hash=key_hash), before=before, limit=limit)

    async def find_generations(
        self, match: GenerationFilter, *, before: float | None = None, limit: int = 50
    ) -> list[GenerationRecord]:
        args: list[Any] = [float("inf") if before is None else before]
        sql = f"SELECT {_rows.GEN_COLUMN_LIST} FROM generations WHERE created_at < ?"
        sql += _rows.generation_match_sql(match, _rows.binder(args)) + " ORDER BY created_at DESC LIMIT ?"
        rows = await self._run(_fetch, sql, (*args, limit))
        return [_rows.gen_from_row(r) for r in rows]

    async def activity(
        self, start: dt.date, end: dt.date, *, key_hash: str | None = None, team_id: str | None = None
    ) -> list[ActivityRow]:
        args: list[Any] = [epoch_day(start), epoch_day(end)]
        sql = (
            "SELECT day, model, provider, COUNT(*), SUM(tokens_prompt), SUM(tokens_completion),"
            " SUM(tokens_reasoning), SUM(cost_nanos) FROM generations WHERE day BETWEEN ? AND ?"
            + _rows.generation_match_sql(GenerationFilter(key_hash=key_hash, team_id=team_id), _rows.binder(args))
            + " GROUP BY day, model, provider ORDER BY day, model, provider"
        )
        rows = await self._run(_fetch, sql, tuple(args))
        return [_rows.activity_from_row(r) for r in rows]

    async def cache_usage(
        self, start: dt.date, end: dt.date, *, key_hash: str | None = None, model: str | None = None
    ) -> list[CacheUsageRow]:
        return await self._run(_response_cache.sqlite_usage, epoch_day(start), epoch_day(end), key_hash, model)

    async def app_rankings(
        self, start: dt.date, end: dt.date, *, limit: int = 50, model: str | None = None
    ) -> list[AppRow]:
        sql = (
            "SELECT app, MAX(app_title), COUNT(*), SUM(tokens_prompt + tokens_completion) AS tokens"
            " FROM generations WHERE day BETWEEN ? AND ? AND app IS NOT NULL AND (? IS NULL OR model = ?)"
            " GROUP BY app ORDER BY tokens DESC, app LIMIT ?"
        )
        rows = await self._run(_fetch, sql, (epoch_day(start), epoch_day(end), model, model, limit))
        return [AppRow(app=r[0], app_title=r[1], requests=r[2], tokens=r[3]) for r in rows]

    # ---- endpoint health (store._health) ------------------------------------------------------

    async def write_endpoint_minutes(self, rows: Sequence[EndpointMinute]) -> None:
        if rows:
            await self._run(_transaction, _health.sqlite_write, rows)

    async def endpoint_daily(self, model_id: str | None, start: dt.date, end: dt.date) -> list[EndpointDay]:
        return await self._run(_health.sqlite_daily, model_id, start, end)

    # ---- console sessions -----------------------------------------------------------------------

    async def insert_session(self, session: SessionRecord) -> None:
        sql = "INSERT INTO console_sessions (id_hash, key_hash, created_at, last_seen, expires_at)"
        sql += " VALUES (?, ?, ?, ?, ?)"
        s = session
        await self._run(_execute, sql, (s.id_hash, s.key_hash, s.created_at, s.last_seen, s.expires_at))

    async def get_session(self, id_hash: str) -> SessionRecord | None:
        sql = "SELECT key_hash, created_at, last_seen, expires_at FROM console_sessions WHERE id_hash = ?"
        rows = await self._run(_fetch, sql, (id_hash,))
        if not rows:
            return None
        k, c, seen, exp = rows[0]
        return SessionRecord(id_hash=id_hash, key_hash=k, created_at=c, last_seen=seen, expires_at=exp)

    async def touch_session(self, id_hash: str, now: float) -> None:
        sql = "UPDATE console_sessions SET last_seen = MAX(last_seen, ?) WHERE id_hash = ?"
        await self._run(_execute, sql, (now, id_hash))

    async def delete_session(self, id_hash: str) -> None:
        await self._run(_execute, "DELETE FROM console_sessions WHERE id_hash = ?", (id_hash,))

    async def delete_sessions_before(self, expires_at: float, idle_since: float) -> int:
        sql = "DELETE FROM console_sessions WHERE expires_at <= ? OR last_seen < ?"
        return await self._run(_execute, sql, (expires_at, idle_since))

    # ---- stored Responses API responses (store._responses) --------------------------------------

    async def insert_response(self, resp: StoredResponse, items: Sequence[tuple[str, str]]) -> None:
        await self._tx(_responses.sqlite_insert, resp, items)  # group-committed with the settles

    async def get_response(self, owner: str, response_id: str) -> StoredResponse | None:
        return await self._run(_responses.sqlite_get, owner, response_id)

    async def get_items(self, owner: str, item_ids: Sequence[str]) -> dict[str, str]:
        return await self._run(_responses.sqlite_items, owner, item_ids)

    async def delete_response(self, owner: str, response_id: str) -> bool:
        return await self._run(_transaction, _responses.sqlite_delete, owner, response_id)

    async def delete_responses_before(self, created_before: float, limit: int) -> int:
        return await self._run(_transaction, _responses.sqlite_sweep, created_before, limit)

    async def get_cached_answer(self, key: str, now: float) -> str | None:
        return await self._run(_response_cache.sqlite_get, key, now)

    async def put_cached_answer(self, key: str, answer: str, expires_at: float) -> None:
        await self._tx(_response_cache.sqlite_put, key, answer, expires_at)  # group-committed

    async def sweep_cached_answers(self, now: float, keep: int) -> int:
        return await self._run(_transaction, _response_cache.sqlite_sweep, now, keep)

"""PostgreSQL settles, group-committed: settles submitted while a batch is being written go together
into the next batch, one round trip and one durable COMMIT for all of them (SQLite's settles are
grouped the same way, store.sqlite). A settle's COMMIT waits for its WAL flush, and while it waits
it holds the key's row lock, which the next reservation of that key queues behind: one flush per
batch instead of one per settle is most of what a settle costs PostgreSQL under load.

    batcher = SettleBatcher(pool, settle_sql)
    fresh = await batcher.settle(args)   # returns once its batch is committed

A batch of one runs the settle statement alone. A larger batch is one statement over arrays
(SETTLE_MANY: atomic, all or none), which writes each key, user, team and lease row once with the
batch's sums. Its answer names the generations it recorded: a settle of an id already recorded bills
nothing; a batch repeating an id runs one settle at a time, so the first of them bills.
A batch that fails for any reason but an outage is retried one settle at a time, so one bad
settle (or a deadlock) never fails the others.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from keeprouter.store import _rows
from keeprouter.store._pg_people import owner_settle_cte, owner_settle_many_cte
from keeprouter.store._pg_pool import GuardedPool, HeldConnection, retrying_deadlocks

_N = len(_rows.GEN_COLUMNS)  # generation values are $1..$N; key_hash is $2
_P = _rows.period_start_sql(f"${_N + 2}", f"${_N + 3}", f"${_N + 4}")
_COST = "COALESCE((SELECT cost_nanos FROM g), 0)"
# Settle = insert the generation (a duplicate id does nothing, so settling twice bills once),
# drop the hold, bill the key, add to the key's day. A late settle never rewinds period_start.
# ${_N + 1} is the hold's id; when ${_N + 5} is true it is a credit lease's (_pg_leases.py), which
# stays and gives up the cost instead (the key's `reserved` with it).
SETTLE = f"""
WITH g AS (
    INSERT INTO generations ({_rows.GEN_COLUMN_LIST})
    VALUES ({", ".join(f"${i}" for i in range(1, _N + 1))})
    ON CONFLICT (id) DO NOTHING RETURNING cost_nanos
), h AS (
    DELETE FROM holds WHERE id = ${_N + 1} AND key_hash = $2 AND NOT ${_N + 5}
    RETURNING amount_nanos, user_id, team_id
), l AS (
    SELECT amount_nanos FROM holds WHERE id = ${_N + 1} AND key_hash = $2 AND ${_N + 5} FOR UPDATE
), lu AS (
    UPDATE holds SET amount_nanos = l.amount_nanos - LEAST(l.amount_nanos, {_COST}) FROM l WHERE holds.id = ${_N + 1}
), o AS (
    SELECT user_id, team_id FROM keys WHERE hash = $2
), {owner_settle_cte("users", "u", _COST, _P)}, {owner_settle_cte("teams", "t", _COST, _P)}, k AS (
    UPDATE keys SET usage_nanos = usage_nanos + {_COST},
        reserved_nanos = reserved_nanos - COALESCE((SELECT amount_nanos FROM h), 0)
            - COALESCE((SELECT LEAST(amount_nanos, {_COST}) FROM l), 0),
        inflight = inflight - (SELECT COUNT(*) FROM h),
        period_usage_nanos = CASE WHEN {_P} > period_start THEN {_COST} ELSE period_usage_nanos + {_COST} END,
        period_start = GREATEST(period_start, {_P})
    WHERE hash = $2 AND (EXISTS (SELECT 1 FROM g) OR EXISTS (SELECT 1 FROM h))
    RETURNING 1
), d AS (
    INSERT INTO key_usage_daily (key_hash, day, usage_nanos, requests)
    SELECT $2, ${_N + 2}, cost_nanos, 1 FROM g
    ON CONFLICT (key_hash, day) DO UPDATE
    SET usage_nanos = key_usage_daily.usage_nanos + EXCLUDED.usage_nanos,
        requests = key_usage_daily.requests + 1
)
SELECT EXISTS (SELECT 1 FROM g)
"""

# The types of SETTLE's parameters, in order: the generation's columns, then the hold's id, today's
# periods (day, week, month) and whether the hold is a lease.
_GEN_TYPES = {"streamed": "boolean", "cached": "boolean", "cost_nanos": "bigint", "cache_discount_nanos": "bigint",
              "throughput": "float8", "created_at": "float8"}  # fmt: skip
_INT_COLUMNS = {"tokens_prompt", "tokens_completion", "tokens_cached", "tokens_cache_write", "tokens_reasoning",
                "latency_ms", "ttft_ms", "day"}  # fmt: skip
_PARAMS = (
    *((c, "int" if c in _INT_COLUMNS else _GEN_TYPES.get(c, "text")) for c in _rows.GEN_COLUMNS),
    ("hold_id", "text"), ("pd", "int"), ("pw", "int"), ("pm", "int"), ("leased", "boolean"),
)  # fmt: skip
_KP = _rows.period_start_sql("a.pd", "a.pw", "a.pm")
# SETTLE for a batch, as ONE statement over arrays (one per parameter of SETTLE, a settle's values at
# the same index): PostgreSQL starts a statement, prepares its CHECK constraints and runs its commit
# once per batch rather than once per settle, and writes each key, user, team and lease row once,
# with the batch's sums. The same bills as the settles one after another would give; the generation
# ids of a batch must be distinct (SettleBatcher sends a batch with a repeated id one at a time).
SETTLE_MANY = f"""
WITH i AS (
    SELECT * FROM unnest({", ".join(f"${n}::{t}[]" for n, (_, t) in enumerate(_PARAMS, 1))})
        AS t({", ".join(c for c, _ in _PARAMS)})
), g AS (
    INSERT INTO generations ({_rows.GEN_COLUMN_LIST}) SELECT {_rows.GEN_COLUMN_LIST} FROM i
    ON CONFLICT (id) DO NOTHING RETURNING id, key_hash, cost_nanos
), gi AS (
    SELECT g.id, g.key_hash, g.cost_nanos, i.hold_id, i.leased, i.pd, i.pw, i.pm FROM g JOIN i ON i.id = g.id
), h AS (
    DELETE FROM holds USING i WHERE holds.id = i.hold_id AND holds.key_hash = i.key_hash AND NOT i.leased
    RETURNING holds.key_hash, holds.amount_nanos, holds.user_id, holds.team_id, i.pd, i.pw, i.pm
), l AS (
    SELECT holds.id, holds.key_hash, LEAST(holds.amount_nanos, c.cost) AS given FROM holds
    JOIN (SELECT hold_id, key_hash, SUM(cost_nanos)::bigint AS cost FROM gi WHERE leased GROUP BY hold_id, key_hash) c
        ON holds.id = c.hold_id AND holds.key_hash = c.key_hash
    FOR UPDATE OF holds
), lu AS (
    UPDATE holds SET amount_nanos = amount_nanos - l.given FROM l WHERE holds.id = l.id
), a AS (
    SELECT key_hash, SUM(billed)::bigint AS billed, SUM(held)::bigint AS held, SUM(n_held)::int AS n_held,
        SUM(given)::bigint AS given, MAX(pd) AS pd, MAX(pw) AS pw, MAX(pm) AS pm
    FROM (SELECT key_hash, cost_nanos AS billed, 0::bigint AS held, 0 AS n_held, 0::bigint AS given, pd, pw, pm FROM gi
          UNION ALL SELECT key_hash, 0, amount_nanos, 1, 0, pd, pw, pm FROM h
          UNION ALL SELECT key_hash, 0, 0, 0, given, NULL, NULL, NULL FROM l) x
    GROUP BY key_hash
), o AS (
    SELECT hash, user_id, team_id FROM keys WHERE hash IN (SELECT key_hash FROM a)
), {owner_settle_many_cte("users", "u")}, {owner_settle_many_cte("teams", "t")}, k AS (
    UPDATE keys SET usage_nanos = usage_nanos + a.billed, reserved_nanos = reserved_nanos - a.held - a.given,
        inflight = inflight - a.n_held,
        period_usage_nanos = CASE WHEN {_KP} > period_start THEN a.billed ELSE period_usage_nanos + a.billed END,
        period_start = GREATEST(period_start, {_KP})
    FROM a WHERE keys.hash = a.key_hash
    RETURNING 1
), d AS (
    INSERT INTO key_usage_daily (key_hash, day, usage_nanos, requests)
    SELECT key_hash, pd, SUM(cost_nanos)::bigint, COUNT(*)::int FROM gi GROUP BY key_hash, pd
    ON CONFLICT (key_hash, day) DO UPDATE
    SET usage_nanos = key_usage_daily.usage_nanos + EXCLUDED.usage_nanos,
        requests = key_usage_daily.requests + EXCLUDED.requests
)
SELECT id FROM g
"""

MAX_BATCH = 256  # settles per COMMIT; more wait for the next batch

_Item = tuple[tuple[Any, ...], "asyncio.Future[bool]"]


class SettleBatcher:
    """Group commit of one settle statement whose $1 is the generation id and $2 its key hash."""

    def __init__(self, pool: GuardedPool, sql: str, many_sql: str) -> None:
        self._pool = pool
        self._conn = HeldConnection(pool)  # batches run one at a time, on one connection
        self._sql = sql
        self._many_sql = many_sql  # the same settles as one statement over arrays (SETTLE_MANY)
        self._pending: list[_Item] = []
        self._task: asyncio.Task[None] | None = None

    async def settle(self, args: tuple[Any, ...]) -> bool:
        """Settle in the next batch; True if this settle billed (its generation was new)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._pending.append((args, fut))
        if self._task is None:
            self._task = loop.create_task(self._run(), name="keeprouter-pg-settle")
        # shielded: a caller that gives up (a client gone) must not take the batch down with it
        return await asyncio.shield(fut)

    async def close(self) -> None:
        """Let the batch being written finish (callers await their settles before the store closes)."""
        if self._task is not None:
            await asyncio.shield(self._task)
        await self._conn.release()

    async def _run(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    results = await self._commit([args for args, _ in batch])
                except BaseException as e:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(e)
                    if isinstance(e, asyncio.CancelledError):
                        raise
                    continue
                for (_, fut), result in zip(batch, results, strict=True):
                    if fut.done():
                        continue
                    if isinstance(result, BaseException):
                        fut.set_exception(result)
                    else:
                        fut.set_result(result)
        finally:
            self._task = None

    async def _commit(self, batch: list[tuple[Any, ...]]) -> list[bool | BaseException]:
        if len(batch) == 1:
            return [await self._one(batch[0])]
        ids = {args[0] for args in batch}
        if len(ids) < len(batch):  # a repeated id: which of them bills depends on order, so in order
            return [await self._one_or_error(args) for args in batch]
        try:
            async with self._conn.use() as conn:
                rows = await conn.fetch(self._many_sql, *map(list, zip(*batch, strict=True)))
        except asyncpg.PostgresError:
            # A bad settle (a constraint) or a deadlock rolled the whole batch back: one at a time.
            return [await self._one_or_error(args) for args in batch]
        billed = {row[0] for row in rows}
        return [args[0] in billed for args in batch]

    async def _one_or_error(self, args: tuple[Any, ...]) -> bool | BaseException:
        try:
            return await self._one(args)
        except Exception as e:
            return e

    async def _one(self, args: tuple[Any, ...]) -> bool:
        async def once() -> bool:
            async with self._conn.use() as conn:
                return bool(await conn.fetchval(self._sql, *args))

        return await retrying_deadlocks(once)  # safe: the generation id makes a settle idempotent

"""PostgreSQL: teams and users (a mixin of `PostgresStore`, which supplies `_pool`), and the SQL that
reserves and settles on a key's user and team beside the key.

Reserving on an owned key is one transaction locking team, then user, then key (always in that
order, so two reservations never deadlock each other); each step is a row-locked UPDATE whose WHERE
clause re-checks the committed row, as a key's reservation alone does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

from keeprouter.store import _people_rows as rows
from keeprouter.store import _rows
from keeprouter.store._pg_notify import NOTIFY_ANY
from keeprouter.store.base import BudgetPatch, TeamRecord, UserRecord, periods

if TYPE_CHECKING:
    from keeprouter.store._pg_pool import GuardedPool

_SELECT = {t: rows.select_sql(t, "$1", "$2", "$3") for t in ("teams", "users")}  # then $4..


def _p(now: float) -> tuple[int, int, int]:
    p = periods(now)
    return p.day, p.week, p.month


def owner_reserve_sql(table: rows.Table) -> str:
    """Hold $5 nanos on team/user $4 if its budget covers it ($1..$3: today's periods)."""
    return (
        f"UPDATE {table} SET reserved_nanos = reserved_nanos + $5 WHERE id = $4 AND deleted_at IS NULL"
        f" AND (limit_nanos IS NULL OR {_rows.limit_usage_sql('$1', '$2', '$3')} + reserved_nanos + $5 <= limit_nanos)"
        " RETURNING 1"
    )


def owner_settle_cte(table: rows.Table, name: str, cost: str, p: str) -> str:
    """A settle's CTE for `table`: give back the hold's share (CTE `h`, which names the user and team
    it was taken on) and bill `cost` to the key's CURRENT user or team (CTE `o`). One UPDATE per
    table, because one statement cannot update a row twice."""
    col = "team_id" if table == "teams" else "user_id"
    billed = f"(CASE WHEN {table}.id = (SELECT {col} FROM o) THEN {cost} ELSE 0 END)"
    held = f"(CASE WHEN {table}.id = (SELECT {col} FROM h) THEN (SELECT amount_nanos FROM h) ELSE 0 END)"
    return f"""{name} AS (
    UPDATE {table} SET usage_nanos = usage_nanos + {billed},
        reserved_nanos = reserved_nanos - {held},
        period_usage_nanos = CASE WHEN {p} > period_start THEN {billed} ELSE period_usage_nanos + {billed} END,
        period_start = GREATEST(period_start, {p})
    WHERE {table}.id = (SELECT {col} FROM h) OR {table}.id = (SELECT {col} FROM o)
    RETURNING 1
)"""


def owner_settle_many_cte(table: rows.Table, name: str) -> str:
    """`owner_settle_cte` for a batch of settles (store._pg_settle.SETTLE_MANY): each user or team
    updated once, with the costs of the keys it currently owns (CTEs `a`, billed per key, and `o`,
    the keys' owners) and the holds' shares it gave (CTE `h`) summed."""
    col = "team_id" if table == "teams" else "user_id"
    s = f"{name}s"
    p = _rows.period_start_sql(f"{s}.pd", f"{s}.pw", f"{s}.pm")
    return f"""{s} AS (
    SELECT id, SUM(billed)::bigint AS billed, SUM(held)::bigint AS held, MAX(pd) AS pd, MAX(pw) AS pw,
        MAX(pm) AS pm
    FROM (SELECT o.{col} AS id, a.billed, 0::bigint AS held, a.pd, a.pw, a.pm FROM a JOIN o ON o.hash = a.key_hash
          WHERE o.{col} IS NOT NULL
          UNION ALL SELECT {col}, 0, amount_nanos, pd, pw, pm FROM h WHERE {col} IS NOT NULL) x
    GROUP BY id
), {name} AS (
    UPDATE {table} SET usage_nanos = usage_nanos + {s}.billed, reserved_nanos = reserved_nanos - {s}.held,
        period_usage_nanos = CASE WHEN {p} > period_start THEN {s}.billed ELSE period_usage_nanos + {s}.billed END,
        period_start = GREATEST(period_start, {p})
    FROM {s} WHERE {table}.id = {s}.id
    RETURNING 1
)"""


def owners_release_ctes() -> str:
    """CTEs giving dropped holds' (CTE `h`) credit back to their users and teams."""
    out = []
    for table, col in (("users", "user_id"), ("teams", "team_id")):
        out.append(
            f"s{table} AS (SELECT {col} AS id, SUM(amount_nanos)::bigint AS amount FROM h"
            f" WHERE {col} IS NOT NULL GROUP BY {col}),"
            f" r{table} AS (UPDATE {table} SET reserved_nanos = reserved_nanos - s{table}.amount"
            f" FROM s{table} WHERE {table}.id = s{table}.id RETURNING 1)"
        )
    return ", ".join(out)


class PgPeople:
    if TYPE_CHECKING:
        _pool: GuardedPool

    async def _insert(self, table: rows.Table, rec: TeamRecord | UserRecord) -> None:
        n = 7 + len(rows.EXTRA[table])
        try:
            sql = rows.insert_sql(table, [f"${i}" for i in range(1, n + 1)])
            await self._pool.execute(sql, *rows.insert_values(rec))
        except asyncpg.IntegrityConstraintViolationError as e:
            raise ValueError(f"{table[:-1]} conflicts with an existing one: {e}") from None

    async def _update(self, table: rows.Table, owner_id: str, patch: BudgetPatch, now: float) -> asyncpg.Record | None:
        values = rows.patch_values(table, patch)
        args: list[Any] = [owner_id, now]  # $1 id, $2 now

        def bind(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        sets = ["updated_at = $2", *(f"{c} = {bind(v)}" for c, v in values.items())]  # column names are ours
        if "limit_reset" in values:
            d, w, m = (bind(v) for v in _p(now))
            new_p = rows.new_period_start_sql(d, w, m, f"{bind(values['limit_reset'])}::text")
            sets.append(f"period_start = {new_p}")
            sets.append(f"period_usage_nanos = {rows.period_usage_sql(table, '$1', new_p)}::bigint")
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                # Lock first, as a key's update does: the recount then sees every settle before ours.
                if not await conn.fetchval(
                    f"SELECT 1 FROM {table} WHERE id = $1 AND deleted_at IS NULL FOR UPDATE", owner_id
                ):
                    return None
                await conn.execute(f"UPDATE {table} SET {', '.join(sets)} WHERE id = $1", *args)
                if "team_id" in values:  # a user's keys move with them
                    await conn.execute(
                        "UPDATE keys SET team_id = $2, updated_at = $3 WHERE user_id = $1",
                        owner_id, values["team_id"], now,
                    )  # fmt: skip
                    await conn.execute(NOTIFY_ANY)  # cached key records, in every process
                return await conn.fetchrow(_SELECT[table] + " AND id = $4", *_p(now), owner_id)
        except asyncpg.IntegrityConstraintViolationError as e:
            raise ValueError(f"{table[:-1]} update conflicts: {e}") from None

    async def _delete(self, table: rows.Table, owner_id: str, now: float) -> bool:
        owned = "team_id" if table == "teams" else "user_id"
        async with self._pool.acquire() as conn, conn.transaction():
            if table == "teams" and await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM users WHERE team_id = $1 AND deleted_at IS NULL)"
                " OR EXISTS (SELECT 1 FROM keys WHERE team_id = $1 AND deleted_at IS NULL)",
                owner_id,
            ):
                raise ValueError("the team still has users or keys: move or delete them first")
            status = await conn.execute(
                f"UPDATE {table} SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL",
                owner_id, now,
            )  # fmt: skip
            if status != "UPDATE 1":
                return False
            await conn.execute(
                f"UPDATE keys SET disabled = TRUE, updated_at = $2 WHERE {owned} = $1 AND deleted_at IS NULL",
                owner_id, now,
            )  # fmt: skip
            await conn.execute(NOTIFY_ANY)  # cached key records, in every process
            return True

    # ---- the PeopleStore protocol -------------------------------------------------------------

    async def insert_team(self, team: TeamRecord) -> None:
        await self._insert("teams", team)

    async def get_team(self, team_id: str, now: float) -> TeamRecord | None:
        row = await self._pool.fetchrow(_SELECT["teams"] + " AND id = $4", *_p(now), team_id)
        return None if row is None else rows.team_from_row(row)

    async def list_teams(self, now: float, *, offset: int = 0, limit: int = 100) -> list[TeamRecord]:
        found = await self._pool.fetch(
            _SELECT["teams"] + " ORDER BY created_at, id LIMIT $4 OFFSET $5", *_p(now), limit, offset
        )
        return [rows.team_from_row(r) for r in found]

    async def update_team(self, team_id: str, patch: BudgetPatch, now: float) -> TeamRecord | None:
        row = await self._update("teams", team_id, patch, now)
        return None if row is None else rows.team_from_row(row)

    async def delete_team(self, team_id: str, now: float) -> bool:
        return await self._delete("teams", team_id, now)

    async def insert_user(self, user: UserRecord) -> None:
        await self._insert("users", user)

    async def get_user(self, user_id: str, now: float) -> UserRecord | None:
        row = await self._pool.fetchrow(_SELECT["users"] + " AND id = $4", *_p(now), user_id)
        return None if row is None else rows.user_from_row(row)

    async def find_user(self, email: str, now: float) -> UserRecord | None:
        row = await self._pool.fetchrow(_SELECT["users"] + " AND lower(email) = lower($4)", *_p(now), email)
        return None if row is None else rows.user_from_row(row)

    async def list_users(
        self, now: float, *, team_id: str | None = None, offset: int = 0, limit: int = 100
    ) -> list[UserRecord]:
        found = await self._pool.fetch(
            _SELECT["users"] + " AND ($4::text IS NULL OR team_id = $4) ORDER BY created_at, id LIMIT $5 OFFSET $6",
            *_p(now), team_id, limit, offset,
        )  # fmt: skip
        return [rows.user_from_row(r) for r in found]

    async def update_user(self, user_id: str, patch: BudgetPatch, now: float) -> UserRecord | None:
        row = await self._update("users", user_id, patch, now)
        return None if row is None else rows.user_from_row(row)

    async def delete_user(self, user_id: str, now: float) -> bool:
        return await self._delete("users", user_id, now)

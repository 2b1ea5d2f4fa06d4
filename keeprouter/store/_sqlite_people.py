"""SQLite: teams and users (a mixin of `SqliteStore`, which supplies `_run`, `_sequenced`,
`_invalidate` and `_reserved`).

A team's or user's admission state lives beside the keys' in `SqliteStore._admit`, under "t:<id>"
and "u:<id>" (key hashes never contain a colon), so every write here invalidates it the same way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from keeprouter.store import _people_rows as rows
from keeprouter.store._sqlite_sync import _fetch, _transaction
from keeprouter.store.base import Budget, BudgetPatch, TeamRecord, UserRecord, from_nanos, periods

T = TypeVar("T")
B = TypeVar("B", bound=Budget)
_SELECT = {t: rows.select_sql(t, ":d", ":w", ":m") for t in ("teams", "users")}
_PREFIX = {"teams": "t:", "users": "u:"}


def _params(at: float, **kw: Any) -> dict[str, Any]:
    p = periods(at)
    return {"d": p.day, "w": p.week, "m": p.month, **kw}


def _owned_by(table: rows.Table) -> str:
    return "team_id" if table == "teams" else "user_id"


class SqlitePeople:
    if TYPE_CHECKING:
        _reserved: dict[str, int]

        async def _run(self, fn: Callable[..., T], *args: Any) -> T: ...

        def _sequenced(self, c: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> tuple[int, T]: ...

        def _invalidate(self, key_hash: str, seq: int) -> None: ...

    def _held(self, table: rows.Table, rec: B) -> B:
        """The record with its open holds, which live in this process's memory."""
        return msgspec.structs.replace(rec, reserved=from_nanos(self._reserved.get(_PREFIX[table] + rec.id, 0)))

    async def _insert(self, table: rows.Table, rec: TeamRecord | UserRecord) -> None:
        sql = rows.insert_sql(table, ["?"] * (7 + len(rows.EXTRA[table])))
        try:
            seq, _ = await self._run(self._sequenced, _fetch, sql, rows.insert_values(rec))
        except sqlite3.IntegrityError as e:
            raise ValueError(f"{table[:-1]} conflicts with an existing one: {e}") from None
        self._invalidate(_PREFIX[table] + rec.id, seq)

    async def _get(self, table: rows.Table, where: str, now: float, **kw: Any) -> list[Any]:
        return await self._run(_fetch, _SELECT[table] + where, _params(now, **kw))

    async def _update(self, table: rows.Table, owner_id: str, patch: BudgetPatch, now: float) -> list[Any]:
        values = rows.patch_values(table, patch)
        params = _params(now, id=owner_id, now=now, **values)
        sets = ["updated_at = :now", *(f"{c} = :{c}" for c in values)]  # column names are ours
        if "limit_reset" in values:
            new_p = rows.new_period_start_sql(":d", ":w", ":m", ":limit_reset")
            sets.append(f"period_start = {new_p}")
            sets.append(f"period_usage_nanos = {rows.period_usage_sql(table, ':id', new_p)}")
        update = f"UPDATE {table} SET {', '.join(sets)} WHERE id = :id AND deleted_at IS NULL"
        follow = "team_id" in values  # a user's keys move with them

        def body(c: sqlite3.Connection) -> tuple[list[Any], list[str]]:
            if c.execute(update, params).rowcount == 0:
                return [], []
            moved: list[str] = []
            if follow:
                moved = [r[0] for r in c.execute(
                    "UPDATE keys SET team_id = :team_id, updated_at = :now WHERE user_id = :id RETURNING hash",
                    params,
                )]  # fmt: skip
            return c.execute(_SELECT[table] + " AND id = :id", params).fetchall(), moved

        found: list[Any]
        moved: list[str]
        try:
            seq, (found, moved) = await self._run(self._sequenced, _transaction, body)
        except sqlite3.IntegrityError as e:
            raise ValueError(f"{table[:-1]} update conflicts: {e}") from None
        self._invalidate(_PREFIX[table] + owner_id, seq)
        for key_hash in moved:
            self._invalidate(key_hash, seq)
        return found

    async def _delete(self, table: rows.Table, owner_id: str, now: float) -> bool:
        owned = _owned_by(table)

        def body(c: sqlite3.Connection) -> tuple[bool, list[str]]:
            if table == "teams" and (
                c.execute("SELECT 1 FROM users WHERE team_id = ? AND deleted_at IS NULL", (owner_id,)).fetchone()
                or c.execute("SELECT 1 FROM keys WHERE team_id = ? AND deleted_at IS NULL", (owner_id,)).fetchone()
            ):
                raise ValueError("the team still has users or keys: move or delete them first")
            sql = f"UPDATE {table} SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL"
            if c.execute(sql, (now, now, owner_id)).rowcount == 0:
                return False, []
            disabled = c.execute(
                f"UPDATE keys SET disabled = 1, updated_at = ? WHERE {owned} = ? AND deleted_at IS NULL RETURNING hash",
                (now, owner_id),
            ).fetchall()
            return True, [r[0] for r in disabled]

        done: bool
        keys: list[str]
        seq, (done, keys) = await self._run(self._sequenced, _transaction, body)
        self._invalidate(_PREFIX[table] + owner_id, seq)
        for key_hash in keys:
            self._invalidate(key_hash, seq)
        return done

    # ---- the PeopleStore protocol -------------------------------------------------------------

    async def insert_team(self, team: TeamRecord) -> None:
        await self._insert("teams", team)

    async def get_team(self, team_id: str, now: float) -> TeamRecord | None:
        found = await self._get("teams", " AND id = :id", now, id=team_id)
        return self._held("teams", rows.team_from_row(found[0])) if found else None

    async def list_teams(self, now: float, *, offset: int = 0, limit: int = 100) -> list[TeamRecord]:
        found = await self._get("teams", " ORDER BY created_at, id LIMIT :l OFFSET :o", now, l=limit, o=offset)
        return [self._held("teams", rows.team_from_row(r)) for r in found]

    async def update_team(self, team_id: str, patch: BudgetPatch, now: float) -> TeamRecord | None:
        found = await self._update("teams", team_id, patch, now)
        return self._held("teams", rows.team_from_row(found[0])) if found else None

    async def delete_team(self, team_id: str, now: float) -> bool:
        return await self._delete("teams", team_id, now)

    async def insert_user(self, user: UserRecord) -> None:
        await self._insert("users", user)

    async def get_user(self, user_id: str, now: float) -> UserRecord | None:
        found = await self._get("users", " AND id = :id", now, id=user_id)
        return self._held("users", rows.user_from_row(found[0])) if found else None

    async def find_user(self, email: str, now: float) -> UserRecord | None:
        found = await self._get("users", " AND lower(email) = lower(:e)", now, e=email)
        return self._held("users", rows.user_from_row(found[0])) if found else None

    async def list_users(
        self, now: float, *, team_id: str | None = None, offset: int = 0, limit: int = 100
    ) -> list[UserRecord]:
        where = " AND (:t IS NULL OR team_id = :t) ORDER BY created_at, id LIMIT :l OFFSET :o"
        found = await self._get("users", where, now, t=team_id, l=limit, o=offset)
        return [self._held("users", rows.user_from_row(r)) for r in found]

    async def update_user(self, user_id: str, patch: BudgetPatch, now: float) -> UserRecord | None:
        found = await self._update("users", user_id, patch, now)
        return self._held("users", rows.user_from_row(found[0])) if found else None

    async def delete_user(self, user_id: str, now: float) -> bool:
        return await self._delete("users", user_id, now)

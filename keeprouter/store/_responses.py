"""Stored Responses API responses (`stored_responses`, `stored_response_items`, migration 0005) on
both backends. Values always travel as bind parameters; the SQL is constant."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from keeprouter.store._pg_pool import GuardedPool
from keeprouter.store.base import StoredResponse

_COLUMNS = "id, owner, created_at, input_items, response"
# Bounded: one sweep round never holds the write lock for long; the sweeper comes back for more.
_OLDEST = "SELECT id FROM stored_responses WHERE created_at < {0} ORDER BY created_at LIMIT {1}"


def _record(row: Sequence[object]) -> StoredResponse:
    id, owner, created, items, response = row
    return StoredResponse(
        id=str(id), owner=str(owner), created_at=float(created),  # type: ignore[arg-type]
        input_items=str(items), response=str(response),
    )  # fmt: skip


# ---- SQLite: run on the store's worker thread ------------------------------------------------


def sqlite_insert(c: sqlite3.Connection, r: StoredResponse, items: Sequence[tuple[str, str]]) -> None:
    """Inside the caller's transaction."""
    cur = c.execute(
        f"INSERT INTO stored_responses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (r.id, r.owner, r.created_at, r.input_items, r.response),
    )
    if cur.rowcount:
        c.executemany(
            "INSERT INTO stored_response_items (response_id, id, owner, item) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (response_id, id) DO NOTHING",
            [(r.id, item_id, r.owner, item) for item_id, item in items],
        )


def sqlite_get(c: sqlite3.Connection, owner: str, response_id: str) -> StoredResponse | None:
    row = c.execute(
        f"SELECT {_COLUMNS} FROM stored_responses WHERE id = ? AND owner = ?", (response_id, owner)
    ).fetchone()
    return None if row is None else _record(row)


def sqlite_items(c: sqlite3.Connection, owner: str, item_ids: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item_id in dict.fromkeys(item_ids):
        row = c.execute(
            "SELECT item FROM stored_response_items WHERE owner = ? AND id = ? LIMIT 1", (owner, item_id)
        ).fetchone()
        if row is not None:
            found[item_id] = row[0]
    return found


def sqlite_delete(c: sqlite3.Connection, owner: str, response_id: str) -> bool:
    """Inside the caller's transaction."""
    cur = c.execute("DELETE FROM stored_responses WHERE id = ? AND owner = ?", (response_id, owner))
    if not cur.rowcount:
        return False
    c.execute("DELETE FROM stored_response_items WHERE response_id = ?", (response_id,))
    return True


def sqlite_sweep(c: sqlite3.Connection, created_before: float, limit: int) -> int:
    """Inside the caller's transaction."""
    ids = [r[0] for r in c.execute(_OLDEST.format("?", "?"), (created_before, limit)).fetchall()]
    for response_id in ids:
        c.execute("DELETE FROM stored_response_items WHERE response_id = ?", (response_id,))
        c.execute("DELETE FROM stored_responses WHERE id = ?", (response_id,))
    return len(ids)


# ---- PostgreSQL ------------------------------------------------------------------------------


async def pg_insert(pool: GuardedPool, r: StoredResponse, items: Sequence[tuple[str, str]]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        status = await conn.execute(
            f"INSERT INTO stored_responses ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            r.id, r.owner, float(r.created_at), r.input_items, r.response,
        )  # fmt: skip
        if status.endswith(" 1") and items:
            await conn.executemany(
                "INSERT INTO stored_response_items (response_id, id, owner, item) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (response_id, id) DO NOTHING",
                [(r.id, item_id, r.owner, item) for item_id, item in items],
            )


async def pg_get(pool: GuardedPool, owner: str, response_id: str) -> StoredResponse | None:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM stored_responses WHERE id = $1 AND owner = $2", response_id, owner
    )
    return None if row is None else _record(tuple(row))


async def pg_items(pool: GuardedPool, owner: str, item_ids: Sequence[str]) -> dict[str, str]:
    rows = await pool.fetch(
        "SELECT DISTINCT ON (id) id, item FROM stored_response_items WHERE owner = $1 AND id = ANY($2::text[])",
        owner, list(item_ids),
    )  # fmt: skip
    return {r[0]: r[1] for r in rows}


async def pg_delete(pool: GuardedPool, owner: str, response_id: str) -> bool:
    async with pool.acquire() as conn, conn.transaction():
        status = await conn.execute("DELETE FROM stored_responses WHERE id = $1 AND owner = $2", response_id, owner)
        if status.endswith(" 0"):
            return False
        await conn.execute("DELETE FROM stored_response_items WHERE response_id = $1", response_id)
        return True


async def pg_sweep(pool: GuardedPool, created_before: float, limit: int) -> int:
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "DELETE FROM stored_responses WHERE id IN (" + _OLDEST.format("$1", "$2") + ") RETURNING id",
            float(created_before), limit,
        )  # fmt: skip
        ids = [r[0] for r in rows]
        if ids:
            await conn.execute("DELETE FROM stored_response_items WHERE response_id = ANY($1::text[])", ids)
        return len(ids)

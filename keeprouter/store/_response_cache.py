"""The response cache's table (`response_cache`, migration 0008) on both backends: read an answer
that has not expired, write one (replacing an older answer to the same request), and sweep the
expired rows and those beyond the configured size; and what the prompt cache did per model and key
(from `generations`), for the pages. Values always travel as bind parameters."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from keeprouter.store._pg_pool import GuardedPool
from keeprouter.store.base import CacheUsageRow, from_nanos

_PUT = (
    "INSERT INTO response_cache (key, answer, expires_at) VALUES ({0}, {1}, {2})"
    " ON CONFLICT (key) DO UPDATE SET answer = excluded.answer, expires_at = excluded.expires_at"
)
_GET = "SELECT answer FROM response_cache WHERE key = {0} AND expires_at > {1}"
_EXPIRED = "DELETE FROM response_cache WHERE expires_at <= {0}"
# Beyond `keep` rows, the ones closest to expiring go first (with one TTL: the oldest).
_OVERFLOW = (
    "DELETE FROM response_cache WHERE key IN"
    " (SELECT key FROM response_cache ORDER BY expires_at DESC, key LIMIT -1 OFFSET {0})"
)
_PG_OVERFLOW = (
    "DELETE FROM response_cache WHERE key IN (SELECT key FROM response_cache ORDER BY expires_at DESC, key OFFSET $1)"
)


def sqlite_get(c: sqlite3.Connection, key: str, now: float) -> str | None:
    row = c.execute(_GET.format("?", "?"), (key, now)).fetchone()
    return None if row is None else str(row[0])


def sqlite_put(c: sqlite3.Connection, key: str, answer: str, expires_at: float) -> None:
    """Inside the caller's transaction."""
    c.execute(_PUT.format("?", "?", "?"), (key, answer, expires_at))


def sqlite_sweep(c: sqlite3.Connection, now: float, keep: int) -> int:
    """Inside the caller's transaction."""
    gone = c.execute(_EXPIRED.format("?"), (now,)).rowcount
    return int(gone + c.execute(_OVERFLOW.format("?"), (keep,)).rowcount)


async def pg_get(pool: GuardedPool, key: str, now: float) -> str | None:
    row = await pool.fetchrow(_GET.format("$1", "$2"), key, float(now))
    return None if row is None else str(row[0])


async def pg_put(pool: GuardedPool, key: str, answer: str, expires_at: float) -> None:
    await pool.execute(_PUT.format("$1", "$2", "$3"), key, answer, float(expires_at))


async def pg_sweep(pool: GuardedPool, now: float, keep: int) -> int:
    async with pool.acquire() as conn, conn.transaction():
        gone = await conn.execute(_EXPIRED.format("$1"), float(now))
        over = await conn.execute(_PG_OVERFLOW, keep)
    return int(gone.rsplit(" ", 1)[-1]) + int(over.rsplit(" ", 1)[-1])


# ---- what the prompt cache did (CacheUsageRow), for the pages ---------------------------------------

_USAGE = (
    "SELECT model, key_hash, COUNT(*), SUM(tokens_prompt), SUM(tokens_cached), SUM(cache_discount_nanos)"
    " FROM generations WHERE day BETWEEN {0} AND {1} AND NOT cached"
    " AND ({2}::text IS NULL OR key_hash = {2}) AND ({3}::text IS NULL OR model = {3})"
    " GROUP BY model, key_hash ORDER BY model, key_hash"
)
_SQLITE_USAGE = _USAGE.replace("::text", "").format("?1", "?2", "?3", "?4")
PG_USAGE = _USAGE.format("$1", "$2", "$3", "$4")


def usage_rows(rows: Sequence[Sequence[Any]]) -> list[CacheUsageRow]:
    return [
        CacheUsageRow(model=r[0], key_hash=r[1], requests=int(r[2]), prompt_tokens=int(r[3] or 0),
                      cached_tokens=int(r[4] or 0), cache_discount=from_nanos(int(r[5] or 0)))
        for r in rows
    ]  # fmt: skip


def sqlite_usage(
    c: sqlite3.Connection, start: int, end: int, key_hash: str | None, model: str | None
) -> list[CacheUsageRow]:
    return usage_rows(c.execute(_SQLITE_USAGE, (start, end, key_hash, model)).fetchall())

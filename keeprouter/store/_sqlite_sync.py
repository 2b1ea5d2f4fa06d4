"""What runs on the SQLite worker thread (`_sqlite_worker`): plain functions of a sqlite3 connection.

`_group` is the group commit (many bodies, one BEGIN IMMEDIATE ... COMMIT, a SAVEPOINT each);
`_transaction` one body; the rest configure the connection, read, write and migrate.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from keeprouter.store._migrate import SCHEMA_MIGRATIONS_DDL, Migration, migrations

T = TypeVar("T")


def _transaction(c: sqlite3.Connection, body: Callable[..., T], *args: Any) -> T:
    """Run `body` inside BEGIN IMMEDIATE: the write lock is taken up front, so two processes never
    both read then both write (no check-then-act race, no SQLITE_BUSY on upgrade)."""
    c.execute("BEGIN IMMEDIATE")
    try:
        result = body(c, *args)
    except BaseException:
        c.execute("ROLLBACK")
        raise
    c.execute("COMMIT")
    return result


_Pending = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]


def _group(c: sqlite3.Connection, batch: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[tuple[bool, Any]]:
    """Run each body in its own SAVEPOINT inside one BEGIN IMMEDIATE ... COMMIT."""
    if len(batch) == 1:  # alone (every settle at one request in flight): the transaction is its savepoint
        body, args = batch[0]
        c.execute("BEGIN IMMEDIATE")
        try:
            result = body(c, *args)
        except Exception as e:
            c.execute("ROLLBACK")
            return [(False, e)]
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")
        return [(True, result)]
    out: list[tuple[bool, Any]] = []
    c.execute("BEGIN IMMEDIATE")
    try:
        for body, args in batch:
            c.execute("SAVEPOINT one")
            try:
                result = body(c, *args)
            except Exception as e:
                c.execute("ROLLBACK TO one")
                c.execute("RELEASE one")
                out.append((False, e))
            else:
                c.execute("RELEASE one")
                out.append((True, result))
    except BaseException:
        c.execute("ROLLBACK")
        raise
    c.execute("COMMIT")
    return out


def _configure(c: sqlite3.Connection) -> None:
    c.execute("PRAGMA busy_timeout = 5000")  # first: switching to WAL may wait for another process
    c.execute("PRAGMA journal_mode = WAL")  # answers "memory" for :memory:, which is fine
    # Deliberate: in WAL mode NORMAL writes each COMMIT to the WAL file (the OS page cache) before it
    # returns, so a committed settle survives the process being killed (the promise: an answer a
    # client received is in the ledger); only an OS crash or power cut may lose the last commits,
    # and those never corrupt the database. FULL would add an fsync per group commit for that case
    # (PostgreSQL is the backend for machine-crash durability).
    c.execute("PRAGMA synchronous = NORMAL")
    c.execute("PRAGMA foreign_keys = ON")


def _fetch(c: sqlite3.Connection, sql: str, params: Any) -> list[Any]:
    return c.execute(sql, params).fetchall()


def _execute(c: sqlite3.Connection, sql: str, params: Any) -> int:
    return c.execute(sql, params).rowcount


def _migrate_sync(c: sqlite3.Connection) -> None:
    c.execute(SCHEMA_MIGRATIONS_DDL)
    for m in migrations("sqlite"):
        # Checked under the write lock, so two processes starting together apply it once.
        def apply(c: sqlite3.Connection, m: Migration = m) -> None:
            if c.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (m.version,)).fetchone():
                return
            for statement in _statements(m.sql):
                c.execute(statement)
            c.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (m.version, m.name, time.time()),
            )

        _transaction(c, apply)


def _statements(script: str) -> list[str]:
    """Split a migration into statements. Not executescript(): it commits any open transaction
    first, and a migration must be applied together with its schema_migrations row."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip() and not all(ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()):
        raise ValueError("migration ends with an incomplete statement")
    return out

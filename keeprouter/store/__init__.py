"""Persistence: keys, the credit ledger and generation records, on SQLite or PostgreSQL.

`open_store(url)` picks the backend from the URL; backends are imported lazily so a SQLite
deployment never imports asyncpg. See `store.base` for the contracts.
"""

from __future__ import annotations

from keeprouter.store.base import Store


async def open_store(database_url: str, *, migrate: bool = True, lease_credit: bool = False) -> Store:
    """Open (and by default migrate) the store at `database_url`; the caller must `close()` it.

    `lease_credit` (PostgreSQL; the gateway's): admit from this process's slices of each key's
    credit instead of one reservation statement per request (store._pg_leases).

    `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `sqlite:///:memory:`,
    `postgresql://user@host:port/db` (or `postgres://`); extra query parameters of a PostgreSQL
    URL are server settings, e.g. `?search_path=myschema`.
    """
    store: Store
    if database_url.startswith("sqlite://"):
        from keeprouter.store.sqlite import SqliteStore

        path = database_url.removeprefix("sqlite://").removeprefix("/")
        store = await SqliteStore.open(path or ":memory:")
    elif database_url.startswith(("postgresql://", "postgres://")):
        from keeprouter.store.postgres import PostgresStore

        store = await PostgresStore.open(database_url, lease_credit=lease_credit)
    else:
        raise ValueError("database URL must start with sqlite:// or postgresql://")
    if migrate:
        try:
            await store.migrate()
        except BaseException:
            await store.close()
            raise
    return store


__all__ = ["Store", "open_store"]

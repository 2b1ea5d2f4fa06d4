"""The PostgreSQL connection pool, guarded: every operation bounded in time, and whatever the driver
raises when the server is gone, shutting down or too slow turned into ONE error,
`errors.StoreUnavailable` (503). Shared by the store (postgres.py) and its endpoint-health queries
(_health.py), which is why it is a module of its own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import asyncpg

from keeprouter.errors import StoreUnavailable

# A server that refuses or resets connections (stopped, restarting, unreachable host) fails every
# operation at once; these bounds are for one that does not answer at all. The acquire bound is
# generous: hundreds of requests queued behind a busy pool are load, not an outage, and must not
# be refused (a burst of 500 on a 10-connection pool waits seconds on a loaded machine).
CONNECT_TIMEOUT = 2.0  # seconds to open a connection (asyncpg's default is 60)
ACQUIRE_TIMEOUT = 15.0  # seconds to get a pooled connection, queueing and connecting included
COMMAND_TIMEOUT = 10.0  # seconds per statement, the ledger's one-statement steps included
MIGRATE_TIMEOUT = 600.0  # a migration may rewrite a large table
# What asyncpg raises when the server is unreachable, resets or closes the connection, is
# shutting down or starting (57P01-57P03), is out of connections or resources (53xxx), or does
# not answer in time (TimeoutError is an OSError). Anything else is a bug or bad data, and
# propagates as it is.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,  # ConnectionDoesNotExistError, ConnectionFailureError, ...
    asyncpg.InterfaceError,  # "connection is closed", "pool is closing"
    asyncpg.exceptions.OperatorInterventionError,  # CannotConnectNowError, AdminShutdownError, ...
    asyncpg.exceptions.InsufficientResourcesError,  # TooManyConnectionsError, ...
)


T = TypeVar("T")
DEADLOCK_TRIES = 3


async def retrying_deadlocks(call: Callable[[], Awaitable[T]]) -> T:
    """`call()`, again when PostgreSQL broke a deadlock by rolling it back (a ledger statement
    against another that takes the same rows in another order; each caller's is safe to repeat)."""
    for attempt in range(DEADLOCK_TRIES):
        try:
            return await call()
        except asyncpg.exceptions.DeadlockDetectedError:
            if attempt == DEADLOCK_TRIES - 1:
                raise
    raise AssertionError("unreachable")


def unavailable(e: BaseException) -> StoreUnavailable:
    return StoreUnavailable(f"the database is unavailable ({type(e).__name__}); try again shortly")


class GuardedPool:
    """The asyncpg pool's query methods, bounded in time, raising StoreUnavailable on an outage."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.raw = pool

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self.raw.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                yield conn
        except UNAVAILABLE as e:
            raise unavailable(e) from e

    async def fetchval(self, sql: str, *args: Any) -> Any:
        try:
            async with self.raw.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                return await conn.fetchval(sql, *args)
        except UNAVAILABLE as e:
            raise unavailable(e) from e

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        try:
            async with self.raw.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                return await conn.fetchrow(sql, *args)
        except UNAVAILABLE as e:
            raise unavailable(e) from e

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            async with self.raw.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                return cast(list[asyncpg.Record], await conn.fetch(sql, *args))
        except UNAVAILABLE as e:
            raise unavailable(e) from e

    async def execute(self, sql: str, *args: Any) -> str:
        try:
            async with self.raw.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                return cast(str, await conn.execute(sql, *args))
        except UNAVAILABLE as e:
            raise unavailable(e) from e


class HeldConnection:
    """One of the pool's connections kept by a loop that runs one statement at a time (the settle
    batcher): acquiring and releasing a pooled connection costs 40-70 us of CPU, more than the
    statement's own round trip. Dropped (and acquired again at the next use) when the server goes
    away or a statement is cancelled mid-way, so a broken connection is never reused."""

    def __init__(self, pool: GuardedPool) -> None:
        self._pool = pool
        self._conn: asyncpg.Connection | None = None

    @asynccontextmanager
    async def use(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = None
                self._conn = await self._pool.raw.acquire(timeout=ACQUIRE_TIMEOUT)
            yield self._conn
        except UNAVAILABLE as e:
            await self.release()
            raise unavailable(e) from e
        except asyncio.CancelledError:
            await asyncio.shield(self.release())  # the protocol may be mid-statement
            raise

    async def release(self) -> None:
        """Give the connection back to the pool (before the pool closes)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await self._pool.raw.release(conn)

"""Store fixtures for both backends: SQLite in a temp file, and the real PostgreSQL server in a fresh
schema per test (`kr_test_<random>`, dropped afterwards) so parallel runs never collide.

Import the fixtures where they are needed:
`from store.backends import clock_fixture, store_fixture, store_url_fixture`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from support.services import service_missing

from keeprouter.store import Store, open_store
from keeprouter.store.postgres import PostgresStore

PG_URL = os.environ.get("KEEPROUTER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
DAY = 86_400.0
T0 = 1_718_000_000.0  # 2024-06-10 06:13:20 UTC, a Monday


class Clock:
    """A settable clock: `clock()` returns `clock.now`."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(name="clock")
def clock_fixture() -> Clock:
    return Clock()


async def _pg_admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as e:  # pragma: no cover - environment without Postgres
        service_missing("PostgreSQL", f"not reachable at {PG_URL}: {e}")


@asynccontextmanager
async def pg_schema(prefix: str = "kr_test") -> AsyncIterator[str]:
    """A fresh schema on the shared PostgreSQL server (its name), dropped afterwards: each test's
    database of its own without creating databases."""
    schema = f"{prefix}_{secrets.token_hex(6)}"
    admin = await _pg_admin()
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        yield schema
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


@asynccontextmanager
async def two_pg_stores(**open_kw: Any) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one fresh schema (migrated once), as two gateway processes have."""
    async with pg_schema() as schema:
        url = f"{PG_URL}?search_path={schema}"
        a = await PostgresStore.open(url, **open_kw)
        b = await PostgresStore.open(url, **open_kw)
        try:
            await a.migrate()
            yield a, b
        finally:
            await a.close()
            await b.close()


@pytest_asyncio.fixture(name="store_url", params=BACKENDS)
async def store_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database URL for an empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'keeprouter.db'}"
        return
    async with pg_schema() as schema:
        yield f"{PG_URL}?search_path={schema}"


@pytest_asyncio.fixture(name="store")
async def store_fixture(store_url: str) -> AsyncIterator[Store]:
    """A migrated store on each backend, closed after the test."""
    s = await open_store(store_url)
    try:
        yield s
    finally:
        await s.close()


def backend_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgres"


def sqlite_files(url: str) -> Iterator[Path]:
    """The SQLite database file and its WAL/SHM companions."""
    path = Path(url.removeprefix("sqlite:///"))
    for p in path.parent.iterdir():
        if p.name.startswith(path.name):
            yield p

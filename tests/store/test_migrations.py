"""Migrations: numbered, applied once in order, recorded, idempotent, and never rewritten."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from importlib import resources

import asyncpg
import pytest

from keeprouter.store import open_store
from keeprouter.store._migrate import migrations
from store.backends import backend_of

# A released migration is never edited (deployed databases would silently diverge): add a new
# numbered file instead, and pin its hash here.
RELEASED = {
    ("sqlite", "0001_init.sql"): "91af651059c7c557c03649f2991b9f0bb581e77809a35e6be704573ccdd579a5",
    ("postgres", "0001_init.sql"): "d5a9b23746a468c0832a63a75b54bae346335ba35f456af1f5f28eb04576c7ad",
    ("sqlite", "0002_endpoint_minutes.sql"): "263afceb22ec64cf626109f4bf55234e6dd4e54b474f929666e1bc69759c09e4",
    ("postgres", "0002_endpoint_minutes.sql"): "ab471420295f2c66147d45cc535b4d8f9bb5757ddb31bfade54e9b32af8715db",
    ("sqlite", "0003_key_rate_limits.sql"): "8952bb7d3df3389948c45f88b0a1f739b0970b934f8b1cd505be76876847abd4",
    ("postgres", "0003_key_rate_limits.sql"): "2add967f84ddc510273fc7d448e160119a781bb0b50ce684f3ca56a3e57d514f",
    ("sqlite", "0004_console_sessions.sql"): "66275af9f7d0c83585d44f92c764784c718737da3a7256c8734678fbeec2318c",
    ("postgres", "0004_console_sessions.sql"): "66275af9f7d0c83585d44f92c764784c718737da3a7256c8734678fbeec2318c",
    ("sqlite", "0005_cache_discount.sql"): "49e69907e76593081ff6466002866a18c50e36a01e5befa558f3ca3fbbc8e2a8",
    ("postgres", "0005_cache_discount.sql"): "b1da45fa7749a9057bdb9a6656d29222576f0e165abbf72c30fcbf5851480681",
    ("sqlite", "0006_people.sql"): "0ddb3254834d5c0d3dc9c97d220eb4e999fc3569a2991e17633bb4c72299e21c",
    ("postgres", "0006_people.sql"): "3ab8da5a6b5e72605092218ca289c62197c697276c56087f531acbcbcc8be9e8",
    ("sqlite", "0007_stored_responses.sql"): "4ccb3d97f824b28dbbbd0f00ca55b13296577da3bd07ecf2bb52c9b6e88fe190",
    ("postgres", "0007_stored_responses.sql"): "4ccb3d97f824b28dbbbd0f00ca55b13296577da3bd07ecf2bb52c9b6e88fe190",
    ("sqlite", "0008_response_cache.sql"): "3312ee9898e317207890ff3e09d239b19d1a91782ba619f41c418f71602b6a2a",
    ("postgres", "0008_response_cache.sql"): "9635ff54027e0957277d48fc44d903acb8fa47b964f36b122cda1d23ac294815",
    ("sqlite", "0009_generations_created.sql"): "66ff83d5e4f933d929ec2cd4b47f2a25d37775f647e0ab5c8df090f334eaf1ec",
    ("postgres", "0009_generations_created.sql"): "66ff83d5e4f933d929ec2cd4b47f2a25d37775f647e0ab5c8df090f334eaf1ec",
}


@pytest.mark.parametrize(("dialect", "name"), sorted(RELEASED))
def test_released_migrations_are_never_rewritten(dialect: str, name: str) -> None:
    text = (resources.files("keeprouter.store") / "migrations" / dialect / name).read_bytes()
    assert hashlib.sha256(text).hexdigest() == RELEASED[(dialect, name)]


def test_both_dialects_have_the_same_numbered_migrations() -> None:
    assert [m.version for m in migrations("sqlite")] == [m.version for m in migrations("postgres")]
    assert [m.version for m in migrations("sqlite")] == list(range(1, len(migrations("sqlite")) + 1))


async def _applied(url: str) -> list[tuple[int, str]]:
    if backend_of(url) == "sqlite":
        with sqlite3.connect(url.removeprefix("sqlite:///")) as c:
            return [tuple(r) for r in c.execute("SELECT version, name FROM schema_migrations ORDER BY version")]
    base, schema = url.split("?search_path=")
    conn = await asyncpg.connect(base, server_settings={"search_path": schema})
    try:
        return [tuple(r) for r in await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")]
    finally:
        await conn.close()


async def test_migrate_is_idempotent_and_recorded(store_url: str) -> None:
    expected = [(m.version, m.name) for m in migrations("sqlite")]
    for _ in range(3):  # open_store migrates; migrate() again on an open store too
        s = await open_store(store_url)
        try:
            await s.migrate()
        finally:
            await s.close()
    assert await _applied(store_url) == expected


async def test_concurrent_migrations_apply_each_file_once(store_url: str) -> None:
    """Several gateway processes starting together on one database."""
    stores = [await open_store(store_url, migrate=False) for _ in range(4)]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.migrate() for s in stores)), timeout=30)
    finally:
        for s in stores:
            await s.close()
    assert await _applied(store_url) == [(m.version, m.name) for m in migrations("sqlite")]


async def test_unknown_url_is_refused() -> None:
    with pytest.raises(ValueError, match="sqlite:// or postgresql://"):
        await open_store("mysql://x")


async def test_sqlite_memory_url_works() -> None:
    s = await open_store("sqlite:///:memory:")
    try:
        assert await s.get_key("nope", 0.0) is None
    finally:
        await s.close()

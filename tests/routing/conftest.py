"""The shared Redis server under a private key prefix, dropped after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from redis.asyncio import Redis
from support.redis_server import drop_prefix, shared_client, unique_prefix


@pytest_asyncio.fixture(name="shared")
async def shared_fixture() -> AsyncIterator[tuple[Redis, str]]:
    client = await shared_client()
    prefix = unique_prefix()
    try:
        yield client, prefix
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()

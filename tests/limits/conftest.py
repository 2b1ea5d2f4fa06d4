"""Both rate limiters through one suite: in memory, and in the shared Redis under a unique prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from store.backends import Clock, clock_fixture  # noqa: F401  (the clock fixture)
from support.redis_server import SHARED_URL, drop_prefix, shared_client, unique_prefix

from keeprouter.limits.base import RateLimiter
from keeprouter.limits.memory import MemoryLimiter
from keeprouter.limits.redis_limiter import RedisLimiter, redis_client


@pytest_asyncio.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def limiter(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryLimiter(clock)
        return
    await (await shared_client()).aclose()  # skips without a Redis server
    client = redis_client(SHARED_URL)  # the gateway's own client and pool
    prefix = unique_prefix()
    lim = RedisLimiter(client, prefix=prefix, clock=clock)
    await lim.start()
    try:
        yield lim
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()

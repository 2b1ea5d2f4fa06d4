"""Redis gone: limits keep being enforced per instance with ONE warning, and sharing resumes within
a few seconds of Redis answering again, over fresh connections (the pooled ones died with it)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from redis.asyncio import Redis
from support.redis_server import free_port, private_redis

from keeprouter.limits.base import Limits, Ticket
from keeprouter.limits.failover import FailoverLimiter
from keeprouter.limits.memory import MemoryLimiter
from keeprouter.limits.redis_limiter import RedisLimiter, redis_client

KEY = "f" * 64
PREFIX = "kr_failover:"


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "keeprouter.limits" and r.levelno >= logging.WARNING]


async def test_a_closed_port_falls_back_to_memory_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    client = redis_client(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    lim = FailoverLimiter(RedisLimiter(client, prefix=PREFIX), MemoryLimiter(), probe_every=0.05)
    await lim.start()
    try:
        t0 = time.monotonic()
        results = [await lim.admit(f"gen-{i}", KEY, Limits(rpm=5, tpm=None), 1) for i in range(40)]
        assert time.monotonic() - t0 < 0.5, "no connection attempt per request while Redis is away"
        tickets = [r for r in results if isinstance(r, Ticket)]
        assert len(tickets) == 5 and all(t.local for t in tickets), "still limited, in this process"
        await lim.release(tickets[0])
        assert isinstance(await lim.admit("gen-again", KEY, Limits(rpm=5, tpm=None), 1), Ticket)
        await lim.settle(tickets[1], 3)
        await asyncio.sleep(0.3)  # the probe keeps failing, quietly
        assert len(warnings(caplog)) == 1 and "redis" in warnings(caplog)[0].getMessage()
        assert not lim.up
    finally:
        await lim.close()
        await client.aclose()


async def test_redis_going_away_and_back_mid_load(caplog: pytest.LogCaptureFixture) -> None:
    async with private_redis() as server:
        client = redis_client(server.url)
        check: Redis = Redis.from_url(server.url)
        lim = FailoverLimiter(RedisLimiter(client, prefix=PREFIX), MemoryLimiter(), probe_every=0.2)
        await lim.start()
        ids = iter(range(10_000))
        limits = Limits(rpm=1000, tpm=None)

        async def burst(n: int) -> list[Ticket]:
            out = await asyncio.gather(*(lim.admit(f"gen-{next(ids)}", KEY, limits, 1) for _ in range(n)))
            assert all(isinstance(t, Ticket) for t in out)
            return [t for t in out if isinstance(t, Ticket)]

        try:
            shared = await burst(10)  # several pooled connections in use
            assert not any(t.local for t in shared)
            assert await check.zcard(PREFIX + "{" + KEY + "}:log") == 10

            await server.stop()
            during = await burst(10) + await burst(10)
            assert all(t.local for t in during), "served from memory while Redis is away"
            await lim.settle(shared[0], 5)  # a Redis ticket settling during the outage: no error
            assert len(warnings(caplog)) == 1

            await server.start()  # same port, empty, scripts gone; every pooled connection is dead
            t0 = time.monotonic()
            while not lim.up:
                assert time.monotonic() - t0 < 5, "sharing resumes within 5 s"
                await asyncio.sleep(0.05)
            after = await burst(10)
            assert not any(t.local for t in after), "shared again, over fresh connections"
            await check.aclose()
            check = Redis.from_url(server.url)
            assert await check.zcard(PREFIX + "{" + KEY + "}:log") == 10
            assert len(warnings(caplog)) == 1, "one warning for the whole outage"
        finally:
            await lim.close()
            await client.aclose()
            await check.aclose()

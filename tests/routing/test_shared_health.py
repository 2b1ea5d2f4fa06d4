"""Endpoint circuits shared through Redis: two real gateways (in-process) on one private
redis-server, one model served by a dead endpoint (p1, answering 500) and a healthy one (p2),
p1 asked for first (`provider.order`), so every request reaches p1 until its circuit opens.

Pinned: the failures that open the circuit are counted across instances (5 in all, the
single-instance threshold, not 5 per instance); the other instance stops sending to it within
5 s; a half-open probe's success closes it everywhere and its failure re-opens it everywhere;
with Redis gone each instance keeps its own circuit (one warning) and sharing resumes when Redis
returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway
from support.raw import wait_until
from support.redis_server import PrivateRedis, private_redis
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply

from keeprouter.api.http import STATE
from keeprouter.routing.shared_health import DEFAULT_PREFIX, SharedHealth

pytestmark = pytest.mark.redis
DEAD = "duo|p1|up-p1"  # routing.select.endpoint_key of the dead endpoint
OPEN_SET = DEFAULT_PREFIX + "{circuit}:open"
THRESHOLD = 5  # HealthTracker's min_requests: failures that open a circuit on one instance
COOLDOWN = 2.0


def config(p1: str, p2: str, db: str, redis_url: str) -> dict[str, Any]:
    def provider(url: str) -> dict[str, Any]:
        return {"api": "openai", "base_url": url, "api_key": "sk-up-openai", "timeout": {"first_byte": 5}}

    def ep(p: str) -> dict[str, Any]:
        return {"provider": p, "model": f"up-{p}", "pricing": {"input": 1, "output": 1}, "capabilities": ["streaming"]}

    return {
        "database": db,
        "redis": redis_url,
        "admin_key": ADMIN_KEY,
        "providers": {"p1": provider(p1), "p2": provider(p2)},
        "models": {"duo": {"name": "Duo", "context_length": 100000, "endpoints": [ep("p1"), ep("p2")]}},
    }


class Pair:
    def __init__(self, a: RunningGateway, b: RunningGateway, dead: OpenAIUpstream, redis: PrivateRedis) -> None:
        self.a, self.b, self.dead, self.redis = a, b, dead, redis
        self.session = aiohttp.ClientSession()

    async def ask(self, gw: RunningGateway) -> str:
        """One request; the provider that served it."""
        body = {"model": "duo", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
                "provider": {"order": ["p1", "p2"]}}  # fmt: skip
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with self.session.post(gw.url + "/v1/chat/completions", json=body, headers=headers) as r:
            assert r.status == 200, await r.text()  # p2 serves whatever p1 does
            return r.headers["X-KeepRouter-Provider"]

    @staticmethod
    def health(gw: RunningGateway) -> SharedHealth:
        h = gw.server.app[STATE].health
        assert isinstance(h, SharedHealth)
        return h

    async def shared_closed(self) -> bool:
        return not await self.shared_open()

    async def shared_open(self) -> bool:
        client: Redis = Redis.from_url(self.redis.url)
        try:
            return await client.zscore(OPEN_SET, DEAD) is not None
        finally:
            await client.aclose()


async def until(pred: Callable[[], bool], seconds: float) -> None:
    """Wait (bounded) for a condition on in-process state."""

    async def check() -> bool:
        return pred()

    await wait_until(check, seconds, 0.02)


@pytest_asyncio.fixture
async def pair(tmp_path: Path, make_openai_upstream: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Pair]:
    monkeypatch.setenv("KEEPROUTER_CIRCUIT_COOLDOWN_SECONDS", str(COOLDOWN))
    monkeypatch.setenv("KEEPROUTER_SPOOL_DIR", str(tmp_path / "spool"))
    dead: OpenAIUpstream = await make_openai_upstream()
    good: OpenAIUpstream = await make_openai_upstream()
    dead.default = Fault(status=500)  # every request fails until reset
    good.default = Reply(text="ok", input_tokens=3, output_tokens=1)
    async with private_redis() as redis:
        cfg_a = config(dead.url, good.url, f"sqlite:///{tmp_path / 'a.db'}", redis.url)
        cfg_b = config(dead.url, good.url, f"sqlite:///{tmp_path / 'b.db'}", redis.url)
        async with run_gateway(cfg_a) as a, run_gateway(cfg_b) as b:
            p = Pair(a, b, dead, redis)
            try:
                yield p
            finally:
                await p.session.close()


async def test_failures_on_two_instances_open_the_circuit_once_and_both_stop_sending_within_5s(pair: Pair) -> None:
    # Alternate the instances: 3 failures seen by A, 2 by B; neither reaches 5 on its own.
    for i in range(THRESHOLD):
        assert not await pair.shared_open(), f"open after only {i} failures in all"
        assert await pair.ask(pair.a if i % 2 == 0 else pair.b) == "p2"
    assert len(pair.dead.requests) == THRESHOLD
    await wait_until(pair.shared_open, 2.0, 0.01)  # the 5th failure's outcome opened it in Redis

    t0 = time.monotonic()
    await until(lambda: pair.health(pair.b).state(DEAD) == "open", 5.0)
    assert time.monotonic() - t0 < 5.0
    assert pair.health(pair.a).state(DEAD) == "open"
    for gw in (pair.a, pair.b) * 10:
        assert await pair.ask(gw) == "p2"
    assert len(pair.dead.requests) == THRESHOLD, "requests reached the endpoint after its circuit opened"


async def test_a_half_open_probe_that_succeeds_closes_the_circuit_on_every_instance(pair: Pair) -> None:
    for i in range(THRESHOLD):
        await pair.ask(pair.a if i % 2 == 0 else pair.b)
    await wait_until(pair.shared_open, 2.0, 0.01)
    await until(lambda: pair.health(pair.b).state(DEAD) == "open", 5.0)
    pair.dead.default = Reply(text="back", input_tokens=3, output_tokens=1)  # the endpoint recovers

    assert await pair.ask(pair.a) == "p2", "still inside the cooldown: no probe yet"
    await asyncio.sleep(COOLDOWN)
    assert await pair.ask(pair.a) == "p1", "after the cooldown A lets one probe through"
    await wait_until(pair.shared_closed, 2.0, 0.02)
    await until(lambda: pair.health(pair.b).state(DEAD) == "closed", 3.0)
    assert await pair.ask(pair.b) == "p1", "B sends to the endpoint again once A's probe closed it"


async def test_without_redis_each_instance_keeps_its_own_circuit_and_sharing_resumes(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    await pair.ask(pair.a)  # healthy sharing first
    await pair.redis.stop()
    with caplog.at_level(logging.WARNING, logger="keeprouter.health"):
        await until(lambda: not pair.health(pair.a).up, 5.0)
        for _ in range(THRESHOLD):
            assert await pair.ask(pair.a) == "p2"
        assert pair.health(pair.a).state(DEAD) == "open", "A's own circuit opened on its own 5 failures"
        assert pair.health(pair.b).state(DEAD) == "closed", "B saw none of them"
        await asyncio.sleep(1.5)  # several refreshes fail meanwhile
    warnings = [r for r in caplog.records if r.name == "keeprouter.health" and "does not answer" in r.message]
    assert len(warnings) == 2, [r.message for r in warnings]  # one per instance (both log here)

    await pair.redis.start()
    for gw in (pair.a, pair.b):
        await until(lambda gw=gw: pair.health(gw).up, 5.0)  # type: ignore[misc]
    for _ in range(THRESHOLD):  # shared counting again: B's failures count with A's
        await pair.ask(pair.b)
    await wait_until(pair.shared_open, 2.0, 0.02)


async def test_a_half_open_probe_that_fails_reopens_the_circuit_on_every_instance(pair: Pair) -> None:
    for i in range(THRESHOLD):
        await pair.ask(pair.a if i % 2 == 0 else pair.b)
    await wait_until(pair.shared_open, 2.0, 0.01)
    await until(lambda: pair.health(pair.b).state(DEAD) == "open", 5.0)
    client: Redis = Redis.from_url(pair.redis.url)
    try:
        first = await client.zscore(OPEN_SET, DEAD)
        await asyncio.sleep(COOLDOWN)
        assert await pair.ask(pair.a) == "p2"  # A's probe reached the dead endpoint, failed, fell back
        assert len(pair.dead.requests) == THRESHOLD + 1
        assert first is not None

        async def reopened() -> bool:
            score = await client.zscore(OPEN_SET, DEAD)
            return score is not None and score > first

        await wait_until(reopened, 2.0, 0.01)
    finally:
        await client.aclose()
    await asyncio.sleep(1.2)  # B's refresh mirrors the new opening: its own cooldown starts again
    assert await pair.ask(pair.b) == "p2"
    assert len(pair.dead.requests) == THRESHOLD + 1, "B probed on the old opening's cooldown"

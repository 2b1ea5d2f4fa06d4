"""Rate limits counted atomically in Redis, shared by every instance: one Lua script per step
(admit.lua, settle.lua, release.lua, shipped beside this module), loaded once with SCRIPT LOAD and
called with EVALSHA (loaded again if the server lost them, e.g. after a restart).

One key's entries live under one hash tag (`{prefix}{<key hash>}:log` and `:tok`), so a Redis
Cluster keeps them on one shard. Times come from the Redis server's clock (one clock for all
instances) unless a `clock` is injected (tests). Errors are the caller's to handle
(`failover.FailoverLimiter` falls back to memory on them).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from importlib import resources
from typing import Any, NamedTuple

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from keeprouter.limits.base import WINDOW, Limits, Refusal, Ticket

DEFAULT_PREFIX = "keeprouter:rl:"
_WINDOW_MS = int(WINDOW * 1000)


class _Script(NamedTuple):
    text: str
    sha: str


def _script(name: str) -> _Script:
    text = (resources.files("keeprouter.limits") / name).read_text()
    return _Script(text, hashlib.sha1(text.encode()).hexdigest())


POOL_SIZE = 64  # connections; a burst beyond waits for one (up to POOL_WAIT s) instead of failing


def redis_client(url: str, *, pool_size: int = POOL_SIZE) -> Redis:
    """The one pooled client of a gateway (create_app owns and closes it). Short timeouts: a limit
    check waits for Redis at most ~1 s before the failover counts it gone. One immediate retry on a
    connection error replaces a pooled connection that died with a restarted server (the pool also
    checks each connection as it hands it out); the scripts are idempotent on the ticket id, so a
    retried step counts once."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=1.0,
        socket_timeout=1.0,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
    return Redis.from_pool(pool)


class RedisLimiter:
    """`RateLimiter` on Redis. The client is the caller's (not closed here)."""

    def __init__(
        self, client: Redis, *, prefix: str = DEFAULT_PREFIX, clock: Callable[[], float] | None = None
    ) -> None:
        self.client = client
        self._prefix = prefix
        self._clock = clock
        self._admit = _script("admit.lua")
        self._settle = _script("settle.lua")
        self._release = _script("release.lua")

    def _keys(self, key_hash: str) -> tuple[str, str]:
        base = f"{self._prefix}{{{key_hash}}}"
        return base + ":log", base + ":tok"

    async def load(self) -> None:
        """SCRIPT LOAD every script (start-up, and when Redis is back)."""
        for s in (self._admit, self._settle, self._release):
            await self.client.script_load(s.text)

    async def _run(self, script: _Script, key_hash: str, *args: Any) -> Any:
        keys = self._keys(key_hash)
        try:
            return await self.client.evalsha(script.sha, 2, *keys, *args)
        except NoScriptError:  # a restarted or flushed server: load it again, once
            await self.client.script_load(script.text)
            return await self.client.evalsha(script.sha, 2, *keys, *args)

    async def admit(self, ticket_id: str, key_hash: str, limits: Limits, tokens: int) -> Ticket | Refusal:
        now = "" if self._clock is None else str(math.floor(self._clock() * 1000))
        rpm, tpm = limits
        admitted, which, remaining, wait_ms, now_ms = await self._run(
            self._admit, key_hash, ticket_id, rpm or 0, tpm or 0, tokens, now, _WINDOW_MS
        )
        if admitted:
            return Ticket(ticket_id, key_hash, tokens)
        retry = None if wait_ms < 0 else wait_ms / 1000
        if which == 1:
            return Refusal("rpm_limit", rpm or 0, int(remaining), retry, now_ms / 1000, tokens)
        return Refusal("tpm_limit", tpm or 0, int(remaining), retry, now_ms / 1000, tokens)

    async def settle(self, ticket: Ticket, tokens: int) -> None:
        await self._run(self._settle, ticket.key_hash, ticket.id, tokens)
        ticket.tokens = tokens

    async def release(self, ticket: Ticket) -> None:
        await self._run(self._release, ticket.key_hash, ticket.id)

    async def start(self) -> None:
        await self.load()

    async def close(self) -> None:
        pass

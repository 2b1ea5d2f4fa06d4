"""Where the response cache keeps its answers: Redis when `redis:` is configured (shared by every
instance), else the database (`response_cache` table, migration 0008). Both are bounded: Redis
evicts in the same script that writes, the database in a sweep every SWEEP_EVERY seconds.

The cache is an optimisation, never a reason to fail a request: a backend that does not answer
is a miss (one warning per RETRY_AFTER seconds for Redis, which is then left alone that long).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

from keeprouter.store.base import ResponseCacheStore

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("keeprouter")
DEFAULT_PREFIX = "keeprouter:rc:"
RETRY_AFTER = 5.0
SWEEP_EVERY = 60.0

# Write the answer with its expiry, index it by expiry, forget the index entries that expired,
# then evict the soonest-to-expire answers beyond the bound. One round trip, atomic; the time is
# the server's, so every instance agrees on it.
_PUT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over > 0 then
  local gone = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #gone, 2 do redis.call('DEL', gone[i]) end
end
return over
"""


class CacheBackend(Protocol):
    async def get(self, key: str) -> bytes | str | None:
        """The answer under `key` if it has not expired (raises when the backend is away)."""
        ...

    async def put(self, key: str, answer: bytes, ttl: float) -> None:
        """Keep `answer` under `key` for `ttl` seconds, evicting beyond the bound."""
        ...

    async def sweeper(self) -> None:
        """Run forever, bounding what is kept (a task create_app owns; Redis needs none)."""
        ...


class DatabaseCache:
    """The response cache in the database: the only backend when Redis is not configured."""

    def __init__(self, store: ResponseCacheStore, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.max_entries = max_entries
        self.clock = clock

    async def get(self, key: str) -> str | None:
        return await self.store.get_cached_answer(key, self.clock())

    async def put(self, key: str, answer: bytes, ttl: float) -> None:
        await self.store.put_cached_answer(key, answer.decode(), self.clock() + ttl)

    async def sweep(self) -> int:
        return await self.store.sweep_cached_answers(self.clock(), self.max_entries)

    async def sweeper(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            try:
                await self.sweep()
            except Exception as e:  # the database is away: the next round tries again
                log.warning("sweeping the response cache failed: %s", e)


class RedisCache:
    """The response cache in Redis: `<prefix><key>` strings with an expiry, and one sorted set
    `<prefix>index` of them by expiry, for the bound."""

    def __init__(
        self,
        client: Redis,
        max_entries: int,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from redis.exceptions import RedisError  # imported only when Redis is configured

        self._errors = (RedisError, OSError, asyncio.TimeoutError)
        self._client = client
        self._prefix = prefix
        self._index = prefix + "index"
        self.max_entries = max_entries
        self._put = client.register_script(_PUT)
        self._clock = clock
        self._down_until = 0.0

    async def get(self, key: str) -> bytes | None:
        if self._clock() < self._down_until:
            return None
        try:
            raw = cast(bytes | None, await self._client.get(self._prefix + key))
        except self._errors as e:
            self._gone(e)
            return None
        return raw

    async def put(self, key: str, answer: bytes, ttl: float) -> None:
        if self._clock() < self._down_until:
            return
        try:
            await self._put(keys=[self._prefix + key, self._index], args=[answer, max(int(ttl * 1000), 1),
                                                                          self.max_entries])  # fmt: skip
        except self._errors as e:
            self._gone(e)

    async def sweeper(self) -> None:
        return None  # every write evicts (the script above)

    def _gone(self, e: BaseException) -> None:
        if self._clock() >= self._down_until:
            log.warning("redis does not answer (%s: %s): the response cache misses for %.0f s",
                        type(e).__name__, e, RETRY_AFTER)  # fmt: skip
        self._down_until = self._clock() + RETRY_AFTER

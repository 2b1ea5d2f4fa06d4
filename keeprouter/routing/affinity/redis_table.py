"""The affinity table in Redis, shared by every instance: one string key per conversation,
`<prefix><conversation>` -> endpoint key, written with SET PX (the idle TTL) so Redis forgets it.

Affinity is an optimisation, never a reason to fail a request: when Redis does not answer, the
table falls back to this process's memory (one warning) and asks Redis again RETRY_AFTER seconds
later, so an outage costs one slow lookup per interval rather than one per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from keeprouter.routing.affinity.table import MemoryAffinity

log = logging.getLogger("keeprouter.routing")
DEFAULT_PREFIX = "keeprouter:af:"
RETRY_AFTER = 5.0
_GONE = (RedisError, OSError, asyncio.TimeoutError)


class RedisAffinity:
    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        fallback: MemoryAffinity | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self.fallback = fallback if fallback is not None else MemoryAffinity()
        self._clock = clock
        self._down_until = 0.0

    @property
    def up(self) -> bool:
        return self._clock() >= self._down_until

    async def get(self, conversation: str) -> str | None:
        if self.up:
            try:
                raw = await self._client.get(self._prefix + conversation)
            except _GONE as e:
                self._gone(e)
            else:
                return raw.decode() if isinstance(raw, bytes) else raw
        return self.fallback.get_now(conversation)

    async def put(self, conversation: str, endpoint: str, ttl: float) -> None:
        if self.up:
            try:
                await self._client.set(self._prefix + conversation, endpoint, px=max(int(ttl * 1000), 1))
            except _GONE as e:
                self._gone(e)
            else:
                return
        self.fallback.put_now(conversation, endpoint, ttl)

    def _gone(self, e: BaseException) -> None:
        if self.up:
            log.warning(
                "redis does not answer (%s: %s): conversation affinity is kept per instance for %.0f s",
                type(e).__name__, e, RETRY_AFTER,
            )  # fmt: skip
        self._down_until = self._clock() + RETRY_AFTER

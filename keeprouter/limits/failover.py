"""Redis while it answers, this process's counters while it does not.

The first failed step (connection refused or reset, a timeout) logs ONE warning and switches every
later step to the in-memory limiter: requests keep being served, each instance enforcing the
limits on its own (so N instances allow up to N x the limit in total). A probe task, owned by
create_app through `start`/`close`, pings Redis every PROBE_EVERY seconds while it is away and
switches back (scripts loaded again) once it answers; the client's pool replaces the connections
that died with the server. A ticket is settled where it was admitted: a Redis entry whose settle
fails is left to age out of its window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError

from keeprouter.limits.base import Limits, Refusal, Ticket
from keeprouter.limits.memory import MemoryLimiter
from keeprouter.limits.redis_limiter import RedisLimiter

log = logging.getLogger("keeprouter.limits")
PROBE_EVERY = 1.0  # seconds between pings while Redis is away
_GONE = (RedisError, OSError, asyncio.TimeoutError)


class FailoverLimiter:
    def __init__(self, shared: RedisLimiter, local: MemoryLimiter, *, probe_every: float = PROBE_EVERY) -> None:
        self.shared = shared
        self.local = local
        self.up = True
        self._probe_every = probe_every
        self._probe: asyncio.Task[None] | None = None

    def _gone(self, e: BaseException) -> None:
        if self.up:
            self.up = False
            log.warning(
                "redis does not answer (%s: %s): rate limits are counted per instance until it does",
                type(e).__name__, e,
            )  # fmt: skip

    async def admit(self, ticket_id: str, key_hash: str, limits: Limits, tokens: int) -> Ticket | Refusal:
        if self.up:
            try:
                return await self.shared.admit(ticket_id, key_hash, limits, tokens)
            except _GONE as e:
                self._gone(e)
        return self.local.admit_now(ticket_id, key_hash, limits, tokens)

    async def settle(self, ticket: Ticket, tokens: int) -> None:
        if ticket.local:
            self.local.settle_now(ticket, tokens)
        elif self.up:
            try:
                await self.shared.settle(ticket, tokens)
            except _GONE as e:
                self._gone(e)

    async def release(self, ticket: Ticket) -> None:
        if ticket.local:
            self.local.release_now(ticket)
        elif self.up:
            try:
                await self.shared.release(ticket)
            except _GONE as e:
                self._gone(e)

    async def start(self) -> None:
        try:
            await self.shared.load()
        except _GONE as e:
            self._gone(e)
        self._probe = asyncio.get_running_loop().create_task(self._watch(), name="keeprouter-redis-probe")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._probe_every)
            if self.up:
                continue
            try:
                await self.shared.client.ping()
                await self.shared.load()
            except _GONE:
                continue
            self.up = True
            log.info("redis answers again: rate limits are shared across instances again")

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self.local.close()

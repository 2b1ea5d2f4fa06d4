"""Which endpoint issued a piece of reasoning state, known to every instance through Redis.

`SignatureIssuers` (routing.fit) remembers it in this process. Behind a load balancer, one
instance serves a thinking turn and another may serve the next; if that one falls back to a second
provider, it must know the signature is the first provider's, or the second refuses the whole turn
("Invalid signature"). So each record is also written to Redis (`<prefix><digest>` -> issuer, kept
TTL seconds, sent in the background, pipelined), and before a request with reasoning state is
fitted, the states this process has not seen are read in one MGET.

Sharing is a safeguard, never a reason to fail or slow a request much: Redis away, this process's
memory answers alone (one warning) and Redis is asked again RETRY_AFTER seconds later.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from keeprouter.config import EndpointConfig
from keeprouter.formats.canonical import ChatRequest, ThinkingPart
from keeprouter.routing.fit import MAX_SIGNATURES, SignatureIssuers, issuer_of, state_of

log = logging.getLogger("keeprouter.routing")
DEFAULT_PREFIX = "keeprouter:sig:"
# A day: longer than a prompt cache lives (so than affinity holds a conversation), and a bound on
# Redis memory (~150 bytes a record). State older than this is treated as unknown, as before.
TTL = 24 * 3600
RETRY_AFTER = 5.0
_GONE = (RedisError, OSError, asyncio.TimeoutError)


def digest(state: str) -> str:
    """A stable name for `state` (signatures and reasoning text can be kilobytes; `hash` differs
    between processes)."""
    return hashlib.blake2b(state.encode(), digest_size=16).hexdigest()


def unknown_states(issuers: SignatureIssuers, req: ChatRequest) -> list[str]:
    """The reasoning state in `req`'s history whose issuer this process does not know."""
    out: list[str] = []
    for m in req.messages:
        if m.role == "assistant":
            for p in m.content:
                if isinstance(p, ThinkingPart):
                    state = state_of(p)
                    if state and issuers.issuer(state) is None:
                        out.append(state)
    return out


class SharedIssuers(SignatureIssuers):
    shared = True

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: int = TTL,
        capacity: int = MAX_SIGNATURES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(capacity)
        self._client = client
        self._prefix = prefix
        self._ttl = ttl
        self._clock = clock
        self._down_until = 0.0
        self._unsent: list[tuple[str, str]] = []
        self._writer: asyncio.Task[None] | None = None

    @property
    def up(self) -> bool:
        return self._clock() >= self._down_until

    def record(self, signature: str, ep: EndpointConfig) -> None:
        super().record(signature, ep)
        if not self.up:
            return
        self._unsent.append((self._prefix + digest(signature), issuer_of(ep)))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        """Send what was recorded meanwhile, one pipeline per round."""
        while self._unsent:
            batch, self._unsent = self._unsent, []
            if not self.up:
                continue
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for key, issuer in batch:
                        pipe.set(key, issuer, ex=self._ttl)
                    await pipe.execute()
            except _GONE as e:
                self._gone(e)

    async def flushed(self) -> None:
        """Wait until every record so far has been sent (or given up): for tests and shutdown."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def learn(self, req: ChatRequest) -> None:
        states = unknown_states(self, req)
        if not states or not self.up:
            return
        try:
            found = await self._client.mget([self._prefix + digest(s) for s in states])
        except _GONE as e:
            self._gone(e)
            return
        for state, issuer in zip(states, found, strict=True):
            if issuer is not None:
                # Learned, not recorded: kept in this process's memory without writing it back.
                self.remember(state, issuer.decode() if isinstance(issuer, bytes) else issuer)

    def _gone(self, e: BaseException) -> None:
        if self.up:
            log.warning(
                "redis does not answer (%s: %s): reasoning state issuers are kept per instance for %.0f s",
                type(e).__name__, e, RETRY_AFTER,
            )  # fmt: skip
        self._down_until = self._clock() + RETRY_AFTER

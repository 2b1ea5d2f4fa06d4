"""The affinity table: conversation -> the endpoint that served its last turn, with an idle TTL.

`AffinityTable` is what the gateway uses; `MemoryAffinity` keeps it in this process (bounded: at
most `max_entries`, least recently used evicted first, expired entries forgotten), `RedisAffinity`
(affinity.redis_table) shares it between instances.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

DEFAULT_MAX_ENTRIES = 100_000  # ~20 MB of keys and endpoint names at most
SWEEP_EVERY = 60.0  # seconds between two full passes over the table for expired entries


class AffinityTable(Protocol):
    async def get(self, conversation: str) -> str | None:
        """The endpoint key remembered for `conversation`, or None (never seen, or expired)."""
        ...

    async def put(self, conversation: str, endpoint: str, ttl: float) -> None:
        """Remember `endpoint` for `conversation` for `ttl` more seconds (a later put replaces it)."""
        ...


class MemoryAffinity:
    """This process's table. Lookups and writes are O(1); a full sweep for expired entries runs at
    most every SWEEP_EVERY seconds, and the least recently used entry goes when the table is full."""

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        clock: Callable[[], float] = time.monotonic,
        sweep_every: float = SWEEP_EVERY,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._clock = clock
        self._sweep_every = sweep_every
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()  # key -> (endpoint, expires)
        self._next_sweep = clock() + sweep_every

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, conversation: str) -> str | None:
        return self.get_now(conversation)

    async def put(self, conversation: str, endpoint: str, ttl: float) -> None:
        self.put_now(conversation, endpoint, ttl)

    def get_now(self, conversation: str) -> str | None:
        found = self._entries.get(conversation)
        if found is None:
            return None
        if found[1] <= self._clock():
            del self._entries[conversation]
            return None
        self._entries.move_to_end(conversation)
        return found[0]

    def put_now(self, conversation: str, endpoint: str, ttl: float) -> None:
        now = self._clock()
        if now >= self._next_sweep:
            self.sweep(now)
        self._entries[conversation] = (endpoint, now + ttl)
        self._entries.move_to_end(conversation)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def sweep(self, now: float | None = None) -> int:
        """Forget every expired entry; returns how many went."""
        now = self._clock() if now is None else now
        self._next_sweep = now + self._sweep_every
        expired = [k for k, (_, expires) in self._entries.items() if expires <= now]
        for k in expired:
            del self._entries[k]
        return len(expired)

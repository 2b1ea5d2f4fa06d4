"""Rate limits counted in this process's memory: exact for one process; N instances without Redis
allow up to N x the limit in total. Every step runs without an await, so it is atomic for the
event loop."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from keeprouter.limits.base import WINDOW, Limits, Refusal, Ticket, decide

_SWEEP_EVERY = 4096  # admissions between sweeps of keys gone quiet (their logs are dropped)


class _Entry:
    __slots__ = ("at", "id", "live", "tokens")

    def __init__(self, ticket_id: str, at: float, tokens: int) -> None:
        self.id = ticket_id
        self.at = at
        self.tokens = tokens
        self.live = True  # False once released or expired


class _Log:
    """One key's sliding window log: entries in admission order, with running totals."""

    __slots__ = ("by_id", "entries", "requests", "tokens")

    def __init__(self) -> None:
        self.entries: deque[_Entry] = deque()
        self.by_id: dict[str, _Entry] = {}
        self.requests = 0  # live entries
        self.tokens = 0  # their tokens

    def expire(self, now: float) -> None:
        entries = self.entries
        cutoff = now - WINDOW
        while entries and entries[0].at <= cutoff:
            e = entries.popleft()
            self.by_id.pop(e.id, None)
            if e.live:
                e.live = False
                self.requests -= 1
                self.tokens -= e.tokens

    def drop(self, ticket_id: str) -> _Entry | None:
        e = self.by_id.pop(ticket_id, None)
        if e is not None and e.live:
            e.live = False
            self.requests -= 1
            self.tokens -= e.tokens
        return e

    def wait_requests(self, limit: int, now: float) -> float:
        """Seconds until fewer than `limit` entries count."""
        skip = self.requests - limit  # this many more entries must go after the oldest
        for e in self.entries:
            if e.live:
                if skip <= 0:
                    return e.at + WINDOW - now
                skip -= 1
        return 0.0

    def wait_tokens(self, limit: int, want: int, now: float) -> float:
        """Seconds until `want` more tokens fit under `limit`."""
        excess = self.tokens + want - limit
        for e in self.entries:
            if e.live:
                excess -= e.tokens
                if excess <= 0:
                    return e.at + WINDOW - now
        return WINDOW


class MemoryLimiter:
    """`RateLimiter` in process memory. `clock` returns Unix seconds (tests move it)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._logs: dict[str, _Log] = {}
        self._admissions = 0

    async def admit(self, ticket_id: str, key_hash: str, limits: Limits, tokens: int) -> Ticket | Refusal:
        return self.admit_now(ticket_id, key_hash, limits, tokens)

    def admit_now(self, ticket_id: str, key_hash: str, limits: Limits, tokens: int) -> Ticket | Refusal:
        """`admit` without the coroutine (the failover calls it directly)."""
        now = self._clock()
        log = self._logs.get(key_hash)
        if log is None:
            log = self._logs[key_hash] = _Log()
        log.expire(now)
        if ticket_id in log.by_id:  # admitted already: idempotent
            return Ticket(ticket_id, key_hash, log.by_id[ticket_id].tokens, local=True)
        refusal = decide(limits, tokens, log.requests, log.tokens, now, log.wait_requests, log.wait_tokens)
        if refusal is not None:
            return refusal
        entry = _Entry(ticket_id, now, tokens)
        log.entries.append(entry)
        log.by_id[ticket_id] = entry
        log.requests += 1
        log.tokens += tokens
        self._admissions += 1
        if self._admissions % _SWEEP_EVERY == 0:
            self._sweep(now)
        return Ticket(ticket_id, key_hash, tokens, local=True)

    def settle_now(self, ticket: Ticket, tokens: int) -> None:
        log = self._logs.get(ticket.key_hash)
        e = None if log is None else log.by_id.get(ticket.id)
        if log is not None and e is not None and e.live:
            log.tokens += tokens - e.tokens
            e.tokens = tokens
        ticket.tokens = tokens

    def release_now(self, ticket: Ticket) -> None:
        log = self._logs.get(ticket.key_hash)
        if log is not None:
            log.drop(ticket.id)

    async def settle(self, ticket: Ticket, tokens: int) -> None:
        self.settle_now(ticket, tokens)

    async def release(self, ticket: Ticket) -> None:
        self.release_now(ticket)

    def _sweep(self, now: float) -> None:
        for key_hash, log in list(self._logs.items()):
            log.expire(now)
            if not log.entries:
                del self._logs[key_hash]

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self._logs.clear()

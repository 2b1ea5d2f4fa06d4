"""The credit ledger: reserve before calling an upstream, settle with the actual cost, or release.

    hold = await ledger.reserve(key, pricing.worst_case(prompt_estimate, max_tokens, p))  # 402 here
    try:
        ...call the upstream...
    except BaseException:
        await ledger.release(hold)        # nothing reached an upstream: nothing billed
        raise
    await ledger.settle(hold, gen)        # gen.cost = pricing.charge(usage, p, finish_reason)

Why holds: charging only when a request finishes lets N concurrent requests each see the same
balance and together overspend it (a failure users of other gateways keep reporting). A hold is taken atomically with
the limit check, so the sum of the worst cases of the requests in flight never exceeds what is
left. On PostgreSQL each call is one short transaction (one round trip); on SQLite, whose file one
gateway process owns, holds live in that process's memory and only settle writes (store.sqlite).

Holds expire (`hold_ttl`) so the credit of a gateway that died mid-request comes back (on SQLite,
with the restart); someone must call `expire_holds()` periodically (the app owns that task). A
request that outlives its hold is still billed in full when it settles.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from decimal import Decimal

import msgspec

from keeprouter.billing.budgets import owner_refusal, parallel_refusal
from keeprouter.errors import AuthenticationFailed, InsufficientCredit
from keeprouter.store.base import GenerationRecord, KeyRecord, Store, from_nanos, to_nanos_ceil

DEFAULT_HOLD_TTL = 15 * 60.0  # seconds; longer than any request the timeouts allow to live


class Hold(msgspec.Struct, frozen=True, kw_only=True):
    """Credit set aside for one request in flight. `amount` is what was actually held (rounded up
    to a whole nano-dollar)."""

    id: str
    key_hash: str
    amount: Decimal
    expires_at: float


def new_generation_id(now: float) -> str:
    """An OpenRouter-shaped generation id, "gen-<unix seconds>-<20 hex>", unique without a round trip."""
    return f"gen-{int(now)}-{secrets.token_hex(10)}"


class IdSource:
    """Unique ids at hot-path cost: a random per-instance prefix (80 bits, so instances never
    collide) plus a counter, instead of a getrandom() syscall per id. Ids are not secrets: every
    lookup by id is also checked against the caller's key."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(6)
        self._count = itertools.count()

    def generation_id(self, now: float) -> str:
        return f"gen-{int(now)}-{self._prefix}{next(self._count):08x}"

    def hold_id(self) -> str:
        return f"hold-{self._prefix}{next(self._count):08x}"


class Ledger:
    """Reserve -> settle | release over a `Store`. Stateless apart from the store: any number of
    Ledgers, in any number of processes, may share one PostgreSQL database (SQLite: one process)."""

    def __init__(
        self, store: Store, clock: Callable[[], float] = time.time, hold_ttl: float = DEFAULT_HOLD_TTL
    ) -> None:
        self._store = store
        self._clock = clock
        self.ids = IdSource()
        self._hold_ttl = hold_ttl

    async def reserve(self, key: KeyRecord, amount: Decimal) -> Hold:
        """Hold `amount` USD on `key`, or raise.

        Raises InsufficientCredit (402, metadata limit_source="key_limit", "user_limit" or
        "team_limit") when the key's, its user's or its team's limit cannot cover it on top of its
        usage and its other holds; RateLimited (429) when the key already has
        `max_parallel_requests` requests in flight (each holds until it settles or is released);
        AuthenticationFailed when the key was disabled, deleted or expired since it was authenticated."""
        if amount < 0 or not amount.is_finite():
            raise ValueError(f"reservation must be a finite non-negative amount, got {amount}")
        now = self._clock()
        held = from_nanos(to_nanos_ceil(amount))
        hold = Hold(
            id=self.ids.hold_id(),
            key_hash=key.hash,
            amount=held,
            expires_at=now + self._hold_ttl,
        )
        if await self._store.reserve(key.hash, hold.id, held, hold.expires_at, now):
            return hold
        raise await self._refusal(key.hash, held, now)

    async def _refusal(self, key_hash: str, amount: Decimal, now: float) -> Exception:
        # Off the happy path: one more read to say why, so a revoked key gets 401 and not 402.
        current = await self._store.get_key(key_hash, now)
        if current is None or current.disabled or (current.expires_at is not None and current.expires_at <= now):
            return AuthenticationFailed("API key is disabled, deleted or expired")
        if current.max_parallel_requests is not None:
            usage = await self._store.key_usage(key_hash)
            if usage is not None and usage.open_holds >= current.max_parallel_requests:
                return parallel_refusal(current.max_parallel_requests)
        if current.limit is None or current.limit_usage + current.reserved + amount <= current.limit:
            # The key could pay: its user's or team's budget refused (they are reserved with it).
            owner = await owner_refusal(self._store, current.user_id, current.team_id, amount, now)
            if owner is not None:
                return owner
        limit = current.limit or Decimal(0)
        available = max(limit - current.limit_usage - current.reserved, Decimal(0))
        return InsufficientCredit(
            f"Key limit exceeded: this request may cost up to ${amount:f} and ${available:f} of the key's"
            f" ${limit:f} limit is available. Raise the key's limit or lower max_tokens.",
            metadata={"limit_source": "key_limit"},
        )

    @property
    def store(self) -> Store:
        return self._store

    async def settle(self, hold: Hold, gen: GenerationRecord) -> bool:
        """Bill `gen.cost` (the caller computes it with `pricing.charge`) and record `gen`, dropping
        the hold, in one transaction. Idempotent on `gen.id`: returns False if it was already
        settled, and nothing is billed twice."""
        if gen.key_hash != hold.key_hash:
            raise ValueError("generation and hold belong to different keys")
        return await self._store.settle(hold.id, gen, self._clock())

    async def release(self, hold: Hold) -> bool:
        """Give the hold back unbilled. False if it was already settled, released or expired."""
        return await self._store.release(hold.id)

    async def expire_holds(self) -> int:
        """Release every hold past its expiry; returns how many. Run periodically."""
        return await self._store.expire_holds(self._clock())

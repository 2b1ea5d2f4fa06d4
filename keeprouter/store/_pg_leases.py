"""Credit leases on PostgreSQL: each gateway process holds a slice of a key's credit and admits
that key's requests from memory against it, so a request writes the key's row once (its settle)
instead of twice (its reservation, then its settle).

Why: on PostgreSQL every reservation was an UPDATE of the key's row, and every request of a busy
key queued on that row lock twice. A lease is an ordinary hold row (`holds`, id "lease-..."), so
everything that reads holds stays true: a key's `reserved` is the sum of its holds, leases
included; a lease counts once in `inflight`; a process that dies leaves its leases to expire
(`hold_ttl`) like any hold, and `expire_holds` gives their credit back.

    leases = CreditLeases(pool, release_sql)                     # PostgresStore owns it
    ok = await leases.reserve(key_hash, hold_id, nanos, expires_at, now)  # None: not leasable
    lease_id = leases.lease_of(hold_id)                           # settle this hold against it
    leases.settled(hold_id, cost_nanos)                           # once the settle committed

Never overspends: a lease is taken (grown) by one row-locked UPDATE that checks the key's limit
exactly as a reservation does, and a process admits locally only while the sum of its requests'
holds fits in what it leased. A settle bills the key and takes the cost out of the lease in the
same statement (_pg_settle.py), so the lease never counts credit that was spent.

What a lease costs other processes: its unused part is credit they cannot admit against until it
comes back. So a lease only grows while the key keeps LOW_WATER more worst cases of the asking
request beyond it: near its limit a key is reserved per request, exactly, as without leases. A
lease goes back after IDLE_RETURN seconds without a request in flight, as soon as its requests are
done when the key changes (its unused part at once), and at shutdown. What is left: a lease taken
while the key was far from its limit is spent by its own process or comes back within a second of
idleness, so only a key that spends its last LOW_WATER worst cases within that second can see a 402
that a hold per request would have admitted: erring on the side of never overspending.

Not leased: keys with a user or a team (their budgets are reserved with the key's, statement by
statement) and keys with `max_parallel_requests` (their holds count requests in flight across
processes). The grow statement refuses them; the caller then reserves per request as before and
they are not tried again for UNLEASABLE_FOR seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time

from keeprouter.store import _rows
from keeprouter.store._pg_pool import GuardedPool, retrying_deadlocks
from keeprouter.store.base import periods

log = logging.getLogger("keeprouter.store")

LEASE_REQUESTS = 16  # a lease grows by this many worst cases of the request that asked
LOW_WATER = 256  # ... only while the key has this many more of them left beyond it
IDLE_RETURN = 1.0  # seconds a lease with no request in flight is kept before it is given back
UNLEASABLE_FOR = 10.0  # seconds an owned or parallel-limited key is not offered a lease again

_USAGE = _rows.limit_usage_sql("$1", "$2", "$3")
# $1..$3 periods, $4 key hash, $5 nanos to add, $6 now, $7 lease id, $8 expires_at, $9 the credit
# that must be left beyond the lease (LOW_WATER worst cases). The lease row
# is locked before the key's (its subquery runs during the scan), the order a settle takes them in.
# A lease row that does not exist yet (or expired meanwhile) counts once in `inflight`. Committed
# without waiting for its WAL flush, like a reservation (see postgres._ASYNC_COMMIT).
GROW = f"""
WITH a AS (SELECT set_config('synchronous_commit', 'off', true)),
l AS (SELECT 1 FROM holds WHERE id = $7 FOR UPDATE),
k AS (
    UPDATE keys SET reserved_nanos = reserved_nanos + $5,
        inflight = inflight + (SELECT CASE WHEN EXISTS (SELECT 1 FROM l) THEN 0 ELSE 1 END)
    WHERE hash = $4 AND deleted_at IS NULL AND NOT disabled AND (expires_at IS NULL OR expires_at > $6)
      AND user_id IS NULL AND team_id IS NULL AND max_parallel_requests IS NULL
      AND (limit_nanos IS NULL OR {_USAGE} + reserved_nanos + $5 + $9 <= limit_nanos)
    RETURNING hash
), h AS (
    INSERT INTO holds (id, key_hash, amount_nanos, expires_at) SELECT $7, hash, $5, $8 FROM k, a
    ON CONFLICT (id) DO UPDATE SET amount_nanos = holds.amount_nanos + EXCLUDED.amount_nanos,
        expires_at = EXCLUDED.expires_at
)
SELECT 1 FROM k
"""
RENEW = "UPDATE holds SET expires_at = $2 WHERE id = $1 RETURNING 1"
# Give $2 nanos of lease $1 back to its key (the unused part of a retired lease).
SHRINK = """
WITH l AS (UPDATE holds SET amount_nanos = amount_nanos - $2 WHERE id = $1 AND amount_nanos >= $2 RETURNING key_hash)
UPDATE keys SET reserved_nanos = reserved_nanos - $2 FROM l WHERE keys.hash = l.key_hash
"""


class Lease:
    """One process's slice of one key's credit; `granted` mirrors the lease row's amount."""

    __slots__ = ("expires_at", "granted", "hold_id", "idle_since", "key_hash", "retired", "ttl", "used")

    def __init__(self, hold_id: str, key_hash: str) -> None:
        self.hold_id = hold_id
        self.key_hash = key_hash
        self.granted = 0  # nano-dollars the lease row holds
        self.used = 0  # nano-dollars held by this process's requests in flight on it
        self.expires_at = 0.0
        self.ttl = 0.0
        self.idle_since: float | None = None  # loop time since when nothing is in flight
        self.retired = False  # the key changed (or the row expired): admit nothing more on it


class CreditLeases:
    """A process's leases; see the module docstring. Touched only on the event loop."""

    def __init__(self, pool: GuardedPool, release_sql: str) -> None:
        self._pool = pool
        self._release_sql = release_sql  # drops one hold (by id) and gives its credit back
        self._leases: dict[str, Lease] = {}  # key hash -> the lease new requests take from
        self._retired: list[Lease] = []  # leases to give back once nothing is in flight on them
        self._holds: dict[str, tuple[Lease, int, float]] = {}  # hold id -> (lease, nanos, expires_at)
        self._locks: dict[str, asyncio.Lock] = {}
        self._unleasable: dict[str, float] = {}  # key hash -> until when
        self._ids = itertools.count()
        self._prefix = f"lease-{secrets.token_hex(6)}-"
        self._sweeper: asyncio.Task[None] | None = None
        self._returning: set[asyncio.Task[None]] = set()  # retired leases going back now

    # ---- admission ----
    async def reserve(self, key_hash: str, hold_id: str, nanos: int, expires_at: float, now: float) -> bool | None:
        """Admit from this process's lease of the key, growing it if needed: True, or None when the
        lease could not grow (out of credit, or a key that is not leased): reserve per request."""
        if self._unleasable.get(key_hash, 0.0) > now:
            return None
        lease = self._leases.get(key_hash)
        if lease is not None and lease.granted - lease.used >= nanos and lease.expires_at > now:
            self._take(lease, hold_id, nanos, expires_at)
            return True
        async with self._locks.setdefault(key_hash, asyncio.Lock()):
            lease = self._leases.get(key_hash)
            if lease is not None and lease.expires_at <= now:  # its row may have expired: never trust it
                self.forget(key_hash)
                lease = None
            if lease is None:
                lease = self._leases[key_hash] = Lease(f"{self._prefix}{next(self._ids):08x}", key_hash)
            free = lease.granted - lease.used
            if free >= nanos:  # grown by another request while this one waited
                self._take(lease, hold_id, nanos, expires_at)
                return True
            need = nanos - free
            for amount in dict.fromkeys((max(need, nanos * LEASE_REQUESTS), need)):
                if await self._grow(key_hash, amount, nanos * LOW_WATER, now, lease.hold_id, expires_at):
                    lease.granted += amount
                    lease.ttl = expires_at - now
                    lease.expires_at = expires_at
                    self._take(lease, hold_id, nanos, expires_at)
                    self._ensure_sweeper()
                    return True
            if lease.granted == 0 and self._leases.get(key_hash) is lease:
                del self._leases[key_hash]
            return None

    async def _grow(
        self, key_hash: str, amount: int, low_water: int, now: float, lease_id: str, expires_at: float
    ) -> bool:
        p = periods(now)
        args = (p.day, p.week, p.month, key_hash, amount, float(now), lease_id, float(expires_at), low_water)
        return await retrying_deadlocks(lambda: self._pool.fetchval(GROW, *args)) is not None

    def unleasable(self, key_hash: str, now: float) -> None:
        """The key was admitted per request where its lease could not grow: it is owned or limits
        its parallel requests, so do not offer it a lease for a while."""
        self._unleasable[key_hash] = now + UNLEASABLE_FOR
        if len(self._unleasable) > 4096:  # keep the map small: drop the lapsed entries
            self._unleasable = {k: t for k, t in self._unleasable.items() if t > now}

    def _take(self, lease: Lease, hold_id: str, nanos: int, expires_at: float) -> None:
        lease.used += nanos
        lease.idle_since = None
        self._holds[hold_id] = (lease, nanos, expires_at)

    # ---- the end of a request ----
    def lease_of(self, hold_id: str) -> str | None:
        """The lease row a local hold was taken from (its settle bills against it), or None."""
        held = self._holds.get(hold_id)
        return None if held is None else held[0].hold_id

    def settled(self, hold_id: str, cost_nanos: int) -> None:
        """The settle committed: the hold is gone and the cost left the lease row (at most all of it)."""
        held = self._holds.pop(hold_id, None)
        if held is not None:
            lease = held[0]
            lease.granted -= min(cost_nanos, lease.granted)
            self._drop(lease, held[1])

    def release(self, hold_id: str) -> bool:
        held = self._holds.pop(hold_id, None)
        if held is None:
            return False
        self._drop(held[0], held[1])
        return True

    def owns(self, hold_id: str) -> bool:
        return hold_id in self._holds

    def _drop(self, lease: Lease, nanos: int) -> None:
        lease.used -= nanos
        if lease.used <= 0:
            lease.used = 0
            lease.idle_since = asyncio.get_running_loop().time()
            if lease.retired:
                self._return_retired()

    def expire(self, now: float) -> int:
        """Drop this process's holds past their expiry (as expire_holds does with the database's),
        and retire the leases whose rows may have expired with them."""
        for key_hash in [k for k, lease in self._leases.items() if lease.expires_at <= now]:
            self.forget(key_hash)
        gone = [h for h, (_, _, exp) in self._holds.items() if exp <= now]
        for hold_id in gone:
            self.release(hold_id)
        return len(gone)

    def forget(self, key_hash: str | None) -> None:
        """The key changed (None: any key may have): its lease admits nothing more and goes back as
        soon as its requests are done, so the next request is checked against the new row."""
        for h in [key_hash] if key_hash is not None else list(self._leases):
            self._unleasable.pop(h, None)
            lease = self._leases.pop(h, None)
            if lease is not None:
                lease.retired = True
                self._retired.append(lease)
                self._return_retired()

    def _return_retired(self) -> None:
        """Give back, now, the retired leases' unused credit, and the whole of those that have
        nothing in flight (a task: called from synchronous code)."""
        task = asyncio.get_running_loop().create_task(self._give_back_retired())
        self._returning.add(task)
        task.add_done_callback(self._returning.discard)

    async def _give_back_retired(self) -> None:
        for lease in list(self._retired):
            try:
                if lease.used == 0:
                    if lease not in self._retired:  # another call is giving it back
                        continue
                    self._retired.remove(lease)
                    await self._give_back(lease)
                else:
                    unused, lease.granted = lease.granted - lease.used, lease.used
                    if unused > 0:  # taken off first: nothing admits against it while it goes back
                        await self._pool.execute(SHRINK, lease.hold_id, unused)
            except Exception:  # the database is away: its row expires if no later sweep gives it back
                log.debug("giving back a retired credit lease failed", exc_info=True)

    # ---- giving back ----
    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="keeprouter-pg-leases")

    async def _sweep(self) -> None:
        while self._leases or self._retired:
            await asyncio.sleep(IDLE_RETURN / 2)
            try:
                await self.sweep()
            except Exception:  # the database may be briefly away: the next round tries again
                log.debug("sweeping credit leases failed", exc_info=True)

    async def sweep(self, *, everything: bool = False) -> None:
        """Give back the leases idle for IDLE_RETURN (every idle one if `everything`) and the
        retired ones nothing is in flight on; renew the rest before their rows expire."""
        loop_now = asyncio.get_running_loop().time()
        for key_hash, lease in list(self._leases.items()):
            if lease.used == 0 and (everything or (lease.idle_since or loop_now) <= loop_now - IDLE_RETURN):
                async with self._locks.setdefault(key_hash, asyncio.Lock()):
                    if lease.used == 0 and self._leases.get(key_hash) is lease:
                        del self._leases[key_hash]
                        self._locks.pop(key_hash, None)
                        await self._give_back(lease)
        await self._give_back_retired()
        await self._renew()

    async def _renew(self) -> None:
        now = time.time()
        for lease in list(self._leases.values()):
            if lease.expires_at - now < lease.ttl / 2:
                if await self._pool.fetchval(RENEW, lease.hold_id, now + lease.ttl) is None:
                    # the row expired (a stalled process): its credit went back; start a new lease
                    self.forget(lease.key_hash)
                else:
                    lease.expires_at = now + lease.ttl

    async def _give_back(self, lease: Lease) -> None:
        lease.retired = True
        await self._pool.fetch(self._release_sql, lease.hold_id)

    async def close(self) -> None:
        """Give every lease back (requests are done by now); a lease not given back expires."""
        for task in [self._sweeper, *self._returning]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for lease in [*self._leases.values(), *self._retired]:
            with contextlib.suppress(Exception):
                await self._give_back(lease)
        self._leases.clear()
        self._retired.clear()

"""Endpoint circuits shared by every instance through Redis; rolling health stays in process.

`SharedHealth` is a `HealthTracker` whose closed -> open decision is taken in Redis, where every
instance's outcomes are counted (circuit_outcome.lua, one atomic step per call): N instances
send the same number of requests to a dead endpoint before its circuit opens as one would.

Off the hot path: a failure is sent at once in a background task (its answer opens the circuit
here without waiting for the next refresh); successes are only summed in memory and sent with the
refresh, every REFRESH_EVERY seconds, which also reads every open circuit (circuit_open.lua), so
an instance learns of a circuit opened anywhere within about a second. Routing itself never waits
for Redis. Each instance lets its own half-open probe through `cooldown` seconds after the shared
opening (so N instances probe at most N times per cooldown); the first success closes the circuit
everywhere, a failure re-opens it everywhere.

Redis gone (a call fails or times out): ONE warning, and the inherited per-process circuit takes
over; the refresh keeps trying every REFRESH_EVERY seconds and sharing resumes once Redis answers
(circuits opened locally meanwhile stay open until their own probe). Without `redis:` in the
config none of this exists: app.py builds a plain HealthTracker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from keeprouter.routing.health import HealthTracker

log = logging.getLogger("keeprouter.health")
REFRESH_EVERY = 1.0  # seconds between two reads of the shared circuits (and success flushes)
DEFAULT_PREFIX = "keeprouter:hl:"
_GONE = (RedisError, OSError, asyncio.TimeoutError)


def _text(name: str) -> str:
    return (resources.files("keeprouter.routing") / name).read_text()


class SharedHealth(HealthTracker):
    """`HealthTracker` with circuits decided in Redis. The client is the caller's (not closed
    here); `start()` launches the refresher, `close()` stops it and waits for the sends in flight."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        refresh_every: float = REFRESH_EVERY,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.local_circuit = False  # Redis decides while it answers
        self.up = True
        self._client = client
        tag = f"{prefix}{{circuit}}"  # one hash tag: a Redis Cluster keeps every key on one shard
        self._open_key = tag + ":open"
        self._counts_prefix = tag + ":n:"
        self._refresh_every = refresh_every
        self._outcome = client.register_script(_text("circuit_outcome.lua"))
        self._open = client.register_script(_text("circuit_open.lua"))
        self._ok: dict[str, int] = {}  # successes not yet counted in Redis
        self._mirrored: set[str] = set()  # endpoints whose open circuit here is Redis's
        self._sends: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None

    # ---- outcomes (the hot path: memory only, a send is a background task) ----
    def success(self, key: str, latency: float | None, throughput: float | None, total: float | None = None) -> None:
        ep = self._eps.get(key)
        was_open = ep is not None and ep.opened_at is not None
        super().success(key, latency, throughput, total)
        self._mirrored.discard(key)
        if not self.up:
            return
        if was_open:  # a half-open probe succeeded: close the circuit everywhere
            self._send(key, "close", 0, 0)
        else:
            self._ok[key] = self._ok.get(key, 0) + 1

    def failure(self, key: str, *, rate_limited: bool = False) -> None:
        ep = self._eps.get(key)
        probing = ep is not None and ep.probing
        super().failure(key, rate_limited=rate_limited)
        if rate_limited or not self.up:  # a 429 is no failure of the endpoint (health.py)
            return
        self._send(key, "reopen" if probing else "count", self._ok.pop(key, 0), 1)

    def _send(self, key: str, mode: str, ok: int, failed: int) -> None:
        task = asyncio.ensure_future(self._call(key, mode, ok, failed))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _call(self, key: str, mode: str, ok: int, failed: int) -> None:
        try:
            res = await self._outcome(keys=self._keys(key), args=self._args(key, mode, ok, failed))
        except _GONE as e:
            self._gone(e)
            return
        self._apply(key, *res)

    def _keys(self, key: str) -> list[str]:
        return [self._open_key, self._counts_prefix + key]

    def _args(self, key: str, mode: str, ok: int, failed: int) -> list[Any]:
        return [key, mode, ok, failed, int(self.window), self.min_requests, repr(self.failure_ratio)]

    def _apply(self, key: str, is_open: int, opened_ms: int, now_ms: int) -> None:
        """Mirror Redis's answer for one endpoint; a probe in flight here is left to report."""
        ep = self._eps.get(key)
        if is_open:
            if ep is None:
                ep = self._ep(key)
            if not ep.probing:
                ep.opened_at = self.clock() - max(0, now_ms - opened_ms) / 1000
                self._mirrored.add(key)
        elif key in self._mirrored:
            self._mirrored.discard(key)
            if ep is not None and not ep.probing:
                ep.opened_at = None

    # ---- refresh (a background task) ----
    async def refresh(self) -> None:
        """Send the successes counted since the last refresh and mirror every open circuit."""
        ok, self._ok = self._ok, {}
        keep_ms = int(max(self.cooldown * 10, 60.0) * 1000)
        async with self._client.pipeline(transaction=False) as pipe:  # one round trip
            for key, n in ok.items():
                await self._outcome(keys=self._keys(key), args=self._args(key, "count", n, 0), client=pipe)
            await self._open(keys=[self._open_key], args=[keep_ms], client=pipe)
            results = await pipe.execute()
        now_ms, *flat = results[-1]
        shared = {flat[i].decode(): int(float(flat[i + 1])) for i in range(0, len(flat), 2)}
        for key, opened in shared.items():
            self._apply(key, 1, opened, now_ms)
        for key in self._mirrored - shared.keys():
            self._apply(key, 0, 0, now_ms)

    async def start(self) -> None:
        self._refresher = asyncio.get_running_loop().create_task(self._watch(), name="keeprouter-circuit-refresh")

    async def _watch(self) -> None:
        while True:
            try:
                await self.refresh()
            except _GONE as e:
                self._gone(e)
            else:
                if not self.up:
                    self.up = True
                    self.local_circuit = False
                    log.info("redis answers again: endpoint circuits are shared across instances again")
            await asyncio.sleep(self._refresh_every)

    def _gone(self, e: BaseException) -> None:
        if self.up:
            self.up = False
            self.local_circuit = True
            self._ok.clear()
            log.warning(
                "redis does not answer (%s: %s): endpoint circuits are per instance until it does",
                type(e).__name__, e,
            )  # fmt: skip

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self._sends:
            await asyncio.wait(list(self._sends), timeout=2.0)

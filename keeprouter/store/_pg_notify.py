"""Key changes across processes on PostgreSQL: every write that changes what authenticating a key
returns (a key's update or deletion, a user moved to another team, a user or team deleted) sends
`NOTIFY keeprouter_keys` in its own transaction, so it is delivered when it commits; each process
LISTENs on one dedicated connection and drops its cached records (keys.KeyService.forget) at once,
rather than when their short TTL runs out.

The payload is the key's hash, or empty for "any key may have changed" (people writes, which touch
several keys). While the listening connection is down no notification can arrive: on losing it the
whole cache is dropped, and it reconnects with backoff, dropping everything again once back (what
changed meanwhile was not heard). The TTL stays the backstop throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from keeprouter.store._pg_pool import CONNECT_TIMEOUT

CHANNEL = "keeprouter_keys"
NOTIFY_KEY = f"SELECT pg_notify('{CHANNEL}', $1)"  # in the writer's transaction: sent on commit
NOTIFY_ANY = f"SELECT pg_notify('{CHANNEL}', '')"
RETRY_FIRST, RETRY_MAX = 0.5, 30.0  # seconds between two attempts to listen again
log = logging.getLogger("keeprouter.store")

OnChange = Callable[[str | None], None]  # a key's hash, or None: any key


class KeyChanges:
    """The listening side: `start()` once; `close()` at shutdown."""

    def __init__(self, url: str, on_change: OnChange) -> None:
        self._url = url
        self._on_change = on_change
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._listen()  # the first attempt inline: a failure here is the caller's to see
        self._task = asyncio.get_running_loop().create_task(self._keep(), name="keeprouter-key-changes")

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT)
        await conn.add_listener(CHANNEL, self._heard)
        conn.add_termination_listener(self._terminated)
        self._conn = conn
        self._lost.clear()
        self._on_change(None)  # whatever changed before we listened

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._on_change(payload or None)

    def _terminated(self, _conn: Any) -> None:
        self._on_change(None)
        self._lost.set()

    async def _keep(self) -> None:
        while True:
            await self._lost.wait()
            self._conn = None
            delay = RETRY_FIRST
            while True:
                try:
                    await self._listen()
                    break
                except Exception as e:  # whatever it is, keep trying: the TTL covers us meanwhile
                    log.debug("listening for key changes again failed (%s); retrying in %.1fs", e, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.close(timeout=CONNECT_TIMEOUT)

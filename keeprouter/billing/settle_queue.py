"""Settles the database refused, kept until it takes them: the generations already delivered to a
client during a database outage are recorded once it returns.

    queue = SettleQueue(ledger, spool_dir)   # create_app owns it: start() at boot, close() last
    await queue.put(hold, gen)               # after a settle failed; returns once it is spooled

Durable: each queued settle is appended to this process's spool file (one JSON line, fsync'ed, in
a worker thread) before `put` returns, so a crash during the outage loses nothing: at start-up a
process takes over the spool files of processes that are gone (a live process holds an exclusive
flock on its own file) and retries their settles as its own. Retried in order with backoff
(RETRY_FIRST doubling to RETRY_MAX seconds) by one background task; a settle is idempotent on the
generation id (ledger.settle), so replaying one that did commit, e.g. before a crash, bills nothing
twice, which is why the file is only truncated once everything in it is committed.

Bounded: at most `max_pending` settles are kept; beyond that a record is logged whole (an
operator can replay it) and dropped, as at a shutdown whose deadline passed without a spool file.
The spool directory is per database (create_app names it after the URL), so two deployments on one
host never replay each other's settles.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import IO

import msgspec

from keeprouter.billing.ledger import Hold, Ledger
from keeprouter.errors import StoreUnavailable
from keeprouter.store.base import GenerationRecord

log = logging.getLogger("keeprouter.billing")
MAX_PENDING = 100_000
RETRY_FIRST = 0.05  # seconds before the first retry
RETRY_MAX = 5.0  # seconds between two retries, at most


class Pending(msgspec.Struct, frozen=True):
    hold: Hold
    gen: GenerationRecord


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Pending).decode


class SettleQueue:
    def __init__(
        self, ledger: Ledger, spool_dir: Path | None = None, *, max_pending: int = MAX_PENDING,
        retry_max: float = RETRY_MAX,
    ) -> None:  # fmt: skip
        self._ledger = ledger
        self._dir = spool_dir
        self._max = max_pending
        self._retry_max = retry_max
        self._pending: dict[str, Pending] = {}  # by generation id, oldest first
        self._file: IO[bytes] | None = None  # this process's spool, opened at the first put
        # Spool writes run in worker threads and concurrent puts overlap: one file, whole lines.
        self._file_lock = threading.Lock()
        self._path: Path | None = None
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Settles queued and not yet committed."""
        return len(self._pending)

    # ---- queueing ----
    async def put(self, hold: Hold, gen: GenerationRecord) -> None:
        if gen.id in self._pending:
            return
        if len(self._pending) >= self._max:
            log.error("settle queue full (%d): generation %s NOT recorded: %r", self._max, gen.id, gen)
            return
        item = Pending(hold, gen)
        self._pending[gen.id] = item
        self._empty.clear()
        if self._dir is not None:
            try:
                await asyncio.to_thread(self._append, [_encode(item)])
            except OSError:  # the disk failed too: the settle is still retried while we live
                log.exception("could not spool the settle of %s", gen.id)
        if self._task is None:  # a queue nobody started (a Gateway built without an app)
            self._task = asyncio.get_running_loop().create_task(self._run(), name="keeprouter-settle-queue")
        self._wake.set()

    def _append(self, lines: list[bytes]) -> None:
        with self._file_lock:
            if self._file is None:
                self._file = self._create()
            self._file.write(b"".join(line + b"\n" for line in lines))
            self._file.flush()
            os.fsync(self._file.fileno())

    def _create(self) -> IO[bytes]:
        """This process's spool file, locked before it gets the name other processes look for."""
        assert self._dir is not None
        self._dir.mkdir(parents=True, exist_ok=True)
        name = f"settle-{os.getpid()}-{secrets.token_hex(4)}"
        tmp = self._dir / (name + ".new")
        f = open(tmp, "ab")  # held open (and locked) for the process's life
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        self._path = self._dir / (name + ".jsonl")
        tmp.rename(self._path)
        return f

    def _truncate(self) -> None:
        with self._file_lock:
            if self._file is not None:
                self._file.truncate(0)
                self._file.flush()
                os.fsync(self._file.fileno())

    # ---- recovery of dead processes' spools ----
    def _claim_orphans(self) -> list[Pending]:
        if self._dir is None or not self._dir.is_dir():
            return []
        found: list[Pending] = []
        for path in sorted(self._dir.glob("settle-*.jsonl")):
            if path == self._path:
                continue
            try:
                f = open(path, "rb")  # closed below, after the lock is released
            except FileNotFoundError:
                continue  # another process claimed it meanwhile
            with f:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process is alive
                for line in f.read().splitlines():
                    try:
                        found.append(_decode(line))
                    except msgspec.DecodeError:  # a line torn by the crash: it never was acknowledged
                        log.warning("skipping an unreadable line in %s", path)
                if found:
                    self._append([_encode(p) for p in found])  # ours now, durably, before the unlink
                path.unlink()
        return found

    async def start(self) -> None:
        for p in await asyncio.to_thread(self._claim_orphans):
            self._pending.setdefault(p.gen.id, p)
        if self._pending:
            self._empty.clear()
            log.warning("retrying %d settles left by a gateway that stopped during an outage", len(self._pending))
            self._wake.set()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="keeprouter-settle-queue")

    # ---- retrying ----
    async def flush(self) -> bool:
        """Try every queued settle once, in order, stopping while the database is unavailable
        (one that fails for another reason is kept and skipped, so it never blocks the others).
        True when none is left."""
        for gen_id, item in list(self._pending.items()):
            try:
                await self._ledger.settle(item.hold, item.gen)
            except ValueError:  # a hold of another key: a bug, retrying cannot help
                log.error("dropping the settle of %s (%r)", gen_id, item)
            except StoreUnavailable as e:
                log.debug("settle of %s still refused: %s", gen_id, e)
                return False
            except Exception:
                log.exception("settle of %s failed; kept for the next round", gen_id)
                continue
            self._pending.pop(gen_id, None)
        if self._pending:  # kept, or put() while we settled: the retrier goes on
            return False
        if self._file is not None:
            await asyncio.to_thread(self._truncate)
        self._empty.set()
        return True

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            delay = RETRY_FIRST
            while self._pending and not await self.flush():
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)

    async def wait_empty(self, seconds: float) -> bool:
        """Wait (while the retrier works) until nothing is queued, for up to `seconds`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._empty.wait(), seconds)
        return not self._pending

    async def close(self, seconds: float = 0.0) -> bool:
        """Stop retrying (after trying for up to `seconds` more); True when nothing is left. What
        is left stays in the spool file for the next start, or is logged whole without one."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        delay = RETRY_FIRST
        while self._pending and not await self.flush() and loop.time() + delay < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max)
        left = len(self._pending)
        if left and self._path is not None:
            log.error("%d settles not recorded yet, kept in %s for the next start", left, self._path)
        elif left:
            for item in self._pending.values():
                log.error("generation %s NOT recorded at shutdown: %r", item.gen.id, item.gen)
        if self._file is not None:
            self._file.close()  # releases the lock: the next start claims what is left
            if not left and self._path is not None:
                self._path.unlink(missing_ok=True)
            self._file = None
        return not left

"""The settle queue's spool survives a crash: a real process queues settles while its database is
unreachable (a closed port) and is killed -9; the next queue started on the same spool directory
takes its file over (never a live process's) and records every settle exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from store.backends import T0, Clock
from support.redis_server import free_port

from keeprouter.billing.ledger import Hold, Ledger
from keeprouter.billing.settle_queue import Pending, SettleQueue
from keeprouter.store import open_store
from keeprouter.store.base import GenerationRecord, KeyRecord
from keeprouter.store.postgres import PostgresStore

N = 5
KEY = "k" * 64

# A process that queues N settles against a database that does not answer, then waits to be killed.
CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from decimal import Decimal
    from pathlib import Path
    from keeprouter.billing.ledger import Hold, Ledger
    from keeprouter.billing.settle_queue import SettleQueue
    from keeprouter.store.base import GenerationRecord
    from keeprouter.store.postgres import PostgresStore

    async def main():
        store = await PostgresStore.open("postgresql://postgres@127.0.0.1:" + sys.argv[2] + "/x", min_size=0)
        queue = SettleQueue(Ledger(store), Path(sys.argv[1]))
        await queue.start()
        for i in range({n}):
            hold = Hold(id=f"hold-{{i}}", key_hash="{key}", amount=Decimal("0.01"), expires_at=2e9)
            gen = GenerationRecord(id=f"gen-{{i}}", key_hash="{key}", model="m", provider="p",
                                   upstream_model="u", api="openai", created_at={t0}, cost=Decimal("0.000017"))
            await queue.put(hold, gen)
        print("spooled", flush=True)
        await asyncio.sleep(120)

    asyncio.run(main())
    """
).format(n=N, key=KEY, t0=T0)


async def spool_in_child(spool: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(spool), str(free_port()), stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    assert line.strip() == b"spooled"
    return proc


async def test_settles_spooled_by_a_killed_process_are_recorded_once_by_the_next(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    store = await open_store(f"sqlite:///{tmp_path / 'kr.db'}")
    try:
        await store.insert_key(KeyRecord(hash=KEY, name="k", label="k", created_at=T0))
        ledger = Ledger(store, Clock())
        proc = await spool_in_child(spool)
        try:
            alive = SettleQueue(ledger, spool)
            await alive.start()
            assert alive.pending == 0, "a live process's spool is never taken over"
            await alive.close()
        finally:
            os.kill(proc.pid, signal.SIGKILL)  # the pid this test started
            await asyncio.wait_for(proc.wait(), 10)
        files = list(spool.glob("settle-*.jsonl"))
        assert len(files) == 1 and len(files[0].read_bytes().splitlines()) == N

        heir = SettleQueue(ledger, spool)
        await heir.start()
        assert await heir.wait_empty(10.0)
        for i in range(N):
            assert await store.get_generation(f"gen-{i}") is not None
        u = await store.key_usage(KEY)
        assert u is not None and u.generations == N and u.usage == u.settled == Decimal("0.000017") * N
        assert await heir.close()

        again = SettleQueue(ledger, spool)  # nothing left to replay, and a replay would bill nothing
        await again.start()
        assert again.pending == 0
        await again.close()
        assert not list(spool.glob("settle-*.jsonl")), "an emptied spool is removed at close"
    finally:
        await store.close()


def record(i: int, key_hash: str = KEY) -> tuple[Hold, GenerationRecord]:
    hold = Hold(id=f"hold-{i}", key_hash=KEY, amount=Decimal("0.01"), expires_at=T0 + 900)
    gen = GenerationRecord(id=f"gen-{i}", key_hash=key_hash, model="m", provider="p", upstream_model="u",
                           api="openai", created_at=T0, cost=Decimal("0.000017"))  # fmt: skip
    return hold, gen


async def test_without_a_spool_what_the_database_still_refuses_at_shutdown_is_logged_whole(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = await PostgresStore.open(f"postgresql://postgres@127.0.0.1:{free_port()}/x", min_size=0)
    try:
        queue = SettleQueue(Ledger(store, Clock()), None, max_pending=2)
        await queue.start()
        for i in range(3):
            await queue.put(*record(i))
        await queue.put(*record(0))  # the same generation twice is queued once
        assert queue.pending == 2
        assert any("queue full" in r.message and "gen-2" in r.message for r in caplog.records)
        assert not await queue.wait_empty(0.2)
        assert not await queue.close(0.2)
        lost = [r.message for r in caplog.records if "NOT recorded at shutdown" in r.message]
        assert len(lost) == 2 and "tokens_prompt" in lost[0], "logged whole, so an operator can replay it"
    finally:
        await store.close()


async def test_a_torn_line_is_skipped_and_a_settle_of_another_keys_hold_is_dropped(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    good, bad = record(1), record(2, key_hash="other")
    orphan = spool / "settle-1-dead.jsonl"
    lines = [msgspec.json.encode(Pending(*good)), msgspec.json.encode(Pending(*bad)), b'{"hold": {"id"']
    orphan.write_bytes(b"\n".join(lines))
    store = await open_store(f"sqlite:///{tmp_path / 'kr.db'}")
    try:
        await store.insert_key(KeyRecord(hash=KEY, name="k", label="k", created_at=T0))
        queue = SettleQueue(Ledger(store, Clock()), spool)
        await queue.start()
        assert queue.pending == 2, "the torn last line was never acknowledged: skipped"
        assert await queue.wait_empty(10.0)
        assert await store.get_generation("gen-1") is not None
        assert await store.get_generation("gen-2") is None, "a hold of another key is a bug, not retried"
        assert not orphan.exists()
        await queue.close()
    finally:
        await store.close()

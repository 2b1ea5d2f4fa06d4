"""The SQLite store's thread (keeprouter.store._sqlite_worker): every job runs on that one thread in
submission order, every result or exception reaches its caller (however many finish per wake-up
of the loop), a cancelled caller costs nobody else their result, and closing finishes the queue."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from keeprouter.store._sqlite_worker import SqliteWorker


def _create(c: sqlite3.Connection) -> None:
    c.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")


def _insert(c: sqlite3.Connection, n: int) -> int:
    c.execute("INSERT INTO t (n) VALUES (?)", (n,))
    return n


def _all(c: sqlite3.Connection) -> list[int]:
    return [n for (n,) in c.execute("SELECT n FROM t ORDER BY rowid")]


def _thread(_: sqlite3.Connection) -> int:
    return threading.get_ident()


async def _opened(tmp_path: Path) -> SqliteWorker:
    worker = await SqliteWorker.open(str(tmp_path / "w.db"))
    await worker.run(_create)
    return worker


async def test_jobs_run_in_order_on_one_thread_that_is_not_the_loops(tmp_path: Path) -> None:
    worker = await _opened(tmp_path)
    try:
        futures = [worker.run(_insert, n) for n in range(500)]  # all queued before any result is read
        assert await asyncio.gather(*futures) == list(range(500))
        assert await worker.run(_all) == list(range(500)), "run in submission order"
        threads = {await worker.run(_thread) for _ in range(3)}
        assert len(threads) == 1 and threading.get_ident() not in threads
    finally:
        await worker.close()


async def test_an_exception_reaches_its_caller_and_the_next_job_runs(tmp_path: Path) -> None:
    worker = await _opened(tmp_path)
    try:
        await worker.run(_insert, 1)
        with pytest.raises(sqlite3.IntegrityError):
            await worker.run(_insert, 1)
        assert await worker.run(_insert, 2) == 2
    finally:
        await worker.close()


async def test_results_finished_while_the_loop_is_busy_all_arrive(tmp_path: Path) -> None:
    """The thread writes one wake-up byte until the loop reads it: results finished meanwhile
    must still all be handed over by that one wake-up."""
    worker = await _opened(tmp_path)
    try:
        futures = [worker.run(_insert, n) for n in range(50)]
        time.sleep(0.2)  # noqa: ASYNC251  # on purpose: the thread finishes them all before any is delivered
        assert await asyncio.wait_for(asyncio.gather(*futures), 5) == list(range(50))
        # And the flag is cleared again: later results wake the loop too.
        assert await asyncio.wait_for(worker.run(_insert, 50), 5) == 50
    finally:
        await worker.close()


async def test_a_cancelled_caller_does_not_lose_anyone_elses_result(tmp_path: Path) -> None:
    worker = await _opened(tmp_path)
    gate = threading.Event()
    try:
        blocked = worker.run(lambda c: gate.wait(5))
        gone = asyncio.ensure_future(worker.run(_insert, 1))
        kept = worker.run(_insert, 2)
        await asyncio.sleep(0)
        gone.cancel()
        gate.set()
        assert await blocked is True
        assert await kept == 2
        assert gone.cancelled()
        assert await worker.run(_all) == [1, 2], "a cancelled caller's job still ran"
    finally:
        await worker.close()


async def test_close_runs_the_queued_jobs_then_refuses_more(tmp_path: Path) -> None:
    worker = await _opened(tmp_path)
    queued = [worker.run(_insert, n) for n in range(20)]
    await worker.close()
    assert [f.result() for f in queued] == list(range(20))
    with pytest.raises(ValueError, match="closed"):
        worker.run(_all)
    await worker.close()  # twice is fine
    again = await SqliteWorker.open(str(tmp_path / "w.db"))
    try:
        assert await again.run(_all) == list(range(20)), "committed and closed cleanly"
    finally:
        await again.close()


async def test_a_database_that_cannot_be_opened_raises_and_stops_the_thread(tmp_path: Path) -> None:
    def ours() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "keeprouter-sqlite"}

    before = ours()  # other tests' stores may still be open
    with pytest.raises(sqlite3.OperationalError):
        await SqliteWorker.open(str(tmp_path / "no-such-dir" / "w.db"))
    assert ours() == before


async def test_a_loop_that_cannot_watch_a_pipe_gets_its_results_by_call_soon_threadsafe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(*_: object) -> None:
        raise NotImplementedError  # as Windows' proactor loop does

    monkeypatch.setattr(asyncio.get_running_loop(), "add_reader", unsupported)
    worker = await _opened(tmp_path)
    try:
        assert await asyncio.gather(*(worker.run(_insert, n) for n in range(100))) == list(range(100))
        with pytest.raises(sqlite3.IntegrityError):
            await worker.run(_insert, 1)
    finally:
        await worker.close()

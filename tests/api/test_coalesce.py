"""`next_or_flush`: events already at hand are taken without a write; the buffer is written before
the iterator waits, so no event ever waits in it for the next one; a failed write stops the
pending upstream step cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable

import pytest

from keeprouter.api.coalesce import next_or_flush


class Log:
    def __init__(self) -> None:
        self.entries: list[str] = []
        self.pending: list[str] = []

    def flush(self) -> Awaitable[None] | None:
        if not self.pending:
            return None
        batch = "+".join(self.pending)
        self.pending.clear()

        async def write() -> None:
            await asyncio.sleep(0)  # a real write may suspend (drain)
            self.entries.append(f"write {batch}")

        return write()


async def drain(it: AsyncGenerator[str, None], log: Log) -> None:
    while True:
        try:
            ev = await next_or_flush(it, log.flush)
        except StopAsyncIteration:
            break
        log.pending.append(ev)
    writing = log.flush()
    if writing is not None:
        await writing


async def test_events_read_together_go_out_in_one_write() -> None:
    gate = asyncio.Event()
    log = Log()

    async def upstream() -> AsyncGenerator[str, None]:
        for ev in ("a", "b", "c"):  # one read's events: no suspension between them
            yield ev
        log.entries.append("upstream waits")
        await gate.wait()
        yield "d"

    task = asyncio.create_task(drain(upstream(), log))
    for _ in range(5):
        await asyncio.sleep(0)
    # a, b and c were written together, and before the upstream's wait was over
    assert log.entries == ["upstream waits", "write a+b+c"]
    gate.set()
    await task
    assert log.entries == ["upstream waits", "write a+b+c", "write d"]


async def test_an_event_is_written_before_the_next_wait_every_time() -> None:
    log = Log()

    async def upstream() -> AsyncGenerator[str, None]:
        for ev in ("a", "b", "c"):
            await asyncio.sleep(0)  # one event per read
            yield ev

    await drain(upstream(), log)
    assert log.entries == ["write a", "write b", "write c"]


async def test_an_upstream_error_propagates_with_the_buffer_intact() -> None:
    log = Log()

    async def upstream() -> AsyncGenerator[str, None]:
        yield "a"
        raise ValueError("upstream broke")

    with pytest.raises(ValueError, match="upstream broke"):
        await drain(upstream(), log)
    assert log.pending == ["a"]  # the caller writes it with its in-band error


async def test_a_failed_write_cancels_the_pending_upstream_step_and_raises_the_write_error() -> None:
    cleaned: list[str] = []

    async def upstream() -> AsyncGenerator[str, None]:
        try:
            yield "a"
            await asyncio.Event().wait()  # would wait forever: the write fails meanwhile
            yield "never"
        finally:
            await asyncio.sleep(0)  # cleanup that awaits (closing the upstream response)
            cleaned.append("closed")

    def broken_flush() -> Awaitable[None]:
        async def write() -> None:
            raise ConnectionResetError("client gone")

        return write()

    it = upstream()
    assert await next_or_flush(it, broken_flush) == "a"
    with pytest.raises(ConnectionResetError):
        await next_or_flush(it, broken_flush)
    assert cleaned == ["closed"]


async def test_cancelling_the_waiting_caller_reaches_the_upstream() -> None:
    cleaned: list[str] = []
    started = asyncio.Event()

    async def upstream() -> AsyncGenerator[str, None]:
        try:
            started.set()
            await asyncio.Event().wait()
            yield "never"
        finally:
            cleaned.append("closed")

    async def consume() -> str:
        return await next_or_flush(upstream(), lambda: None)

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["closed"]

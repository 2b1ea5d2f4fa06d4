"""`settled_within`: an answer waits for its settle, bounded, and never cancels it."""

from __future__ import annotations

import asyncio

from keeprouter.gateway import settled_within


def pending_settle() -> tuple[asyncio.Event, asyncio.Task[None]]:
    """A settle that runs until its gate is set."""
    gate = asyncio.Event()

    async def settle() -> None:
        await gate.wait()

    return gate, asyncio.ensure_future(settle())


async def test_returns_once_the_settle_is_done() -> None:
    gate, task = pending_settle()
    waiting = asyncio.ensure_future(settled_within(task, 60.0))
    await asyncio.sleep(0)
    assert not waiting.done()  # the settle is not committed yet: the answer waits
    gate.set()
    await waiting
    assert task.done() and not task.cancelled()


async def test_past_the_wait_the_answer_goes_and_the_settle_keeps_running() -> None:
    gate, task = pending_settle()
    await settled_within(task, 0.0)
    assert not task.done()  # not cancelled: recorded late
    gate.set()
    await task
    assert not task.cancelled()


async def test_a_finished_or_failed_settle_returns_at_once_and_raises_nothing() -> None:
    async def fails() -> None:
        raise RuntimeError("database refused")

    task = asyncio.ensure_future(fails())
    await asyncio.sleep(0)
    await settled_within(task, 60.0)  # its failure is the settle's own to handle, as with asyncio.wait
    assert isinstance(task.exception(), RuntimeError)


async def test_a_cancelled_waiter_leaves_the_settle_running() -> None:
    gate, task = pending_settle()
    waiting = asyncio.ensure_future(settled_within(task, 60.0))
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert not task.done()
    gate.set()
    await task

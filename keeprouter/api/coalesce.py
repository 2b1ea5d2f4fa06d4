"""One socket write per upstream read, not per event.

A fast upstream's read carries several events; writing each one to the client costs a syscall
apiece (most of a long stream's CPU). `next_or_flush` takes the next event from the stream's async
iterator without suspending when the upstream already has it, and only when the iterator would
have to wait (the upstream has nothing more buffered) flushes what was encoded so far, then waits.
So an event never waits in our buffer for the next one to arrive: the time to first token and
every later token are what they were.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Flush = Callable[[], Awaitable[None] | None]


class next_or_flush(Generic[T]):  # lower case: used as a function, `await next_or_flush(it, flush)`
    """`await anext(it)`, calling `flush()` (and awaiting what it returns) first if the iterator
    would suspend. Raises StopAsyncIteration at the end, like `anext`. If the flush fails (the
    client went away), the iterator's pending step is cancelled (its `finally` blocks run, awaits
    included) and the flush's error is raised."""

    __slots__ = ("_flush", "_it")

    def __init__(self, it: AsyncIterator[T], flush: Flush) -> None:
        self._it = it
        self._flush = flush

    def __await__(self) -> Generator[Any, Any, T]:
        step = self._it.__anext__().__await__()
        try:
            waiting = step.send(None)
        except StopIteration as ready:  # the upstream had it buffered: no suspension, no flush
            return ready.value  # type: ignore[no-any-return]
        try:
            flushing = self._flush()
            if flushing is not None:
                yield from _await(flushing)
        except BaseException as e:  # the client is gone: stop the pending upstream step cleanly
            try:
                yield from _drive(step, waiting, asyncio.CancelledError())
            except (asyncio.CancelledError, StopAsyncIteration):
                pass
            raise e from None
        return (yield from _drive(step, waiting, None))


def _await(aw: Awaitable[None]) -> Generator[Any, Any, None]:
    return aw.__await__()


def _drive(step: Generator[Any, Any, T], waiting: Any, throw: BaseException | None) -> Generator[Any, Any, T]:
    """Go on with a started step as `await` would: hand its futures to the event loop, pass back
    what the loop sends or throws (a cancellation reaches the iterator)."""
    while True:
        try:
            if throw is not None:
                exc, throw = throw, None
                waiting = step.throw(exc)
            else:
                try:
                    sent = yield waiting
                except BaseException as e:
                    throw = e
                    continue
                waiting = step.send(sent)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

"""A stream's events read a list per upstream read.

An adapter decodes each upstream read in one synchronous step and yields its events as one list.
`Batched` is that source as the plain async generator of events every reader takes (the gateway
takes the first event from it; tests and the other APIs iterate it); the client relay instead takes
what is left of the current read (`take`) and then whole lists from `source`, with one async step
per read rather than per event.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any

from keeprouter.formats.canonical import StreamEvent


class Batched(AsyncGenerator[StreamEvent, None]):
    """Events one by one from `source`, an async generator of non-empty event lists."""

    __slots__ = ("_batch", "_pos", "source")

    def __init__(self, source: AsyncGenerator[list[StreamEvent], None]) -> None:
        self.source = source
        self._batch: list[StreamEvent] = []
        self._pos = 0

    async def __anext__(self) -> StreamEvent:
        while self._pos >= len(self._batch):
            self._batch = await anext(self.source)  # StopAsyncIteration at the end
            self._pos = 0
        self._pos += 1
        return self._batch[self._pos - 1]

    def take(self) -> list[StreamEvent]:
        """The events of the current read not yet returned one by one."""
        rest = self._batch[self._pos :]
        self._batch, self._pos = [], 0
        return rest

    async def asend(self, value: None) -> StreamEvent:
        return await self.__anext__()

    async def athrow(self, typ: Any, val: Any = None, tb: TracebackType | None = None) -> StreamEvent:
        self._batch, self._pos = await self.source.athrow(typ, val, tb), 0
        return await self.__anext__()

    async def aclose(self) -> None:
        self._batch, self._pos = [], 0
        await self.source.aclose()

"""`Batched`: the events of a per-read source one by one, or what is left of a read as a list."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from keeprouter.formats.batches import Batched
from keeprouter.formats.canonical import StreamEvent, TextDelta


def t(text: str) -> TextDelta:
    return TextDelta(text=text)


async def reads(log: list[str]) -> AsyncGenerator[list[StreamEvent], None]:
    try:
        yield [t("a"), t("b"), t("c")]
        yield [t("d")]
    finally:
        log.append("closed")


async def test_events_come_one_by_one_across_reads() -> None:
    log: list[str] = []
    assert [ev async for ev in Batched(reads(log))] == [t("a"), t("b"), t("c"), t("d")]
    assert log == ["closed"]


async def test_take_returns_the_rest_of_the_read_then_the_source_goes_on() -> None:
    events = Batched(reads([]))
    assert await anext(events) == t("a")
    assert events.take() == [t("b"), t("c")]
    assert events.take() == []
    assert [b async for b in events.source] == [[t("d")]]


async def test_closing_closes_the_source() -> None:
    log: list[str] = []
    events = Batched(reads(log))
    assert await events.asend(None) == t("a")
    await events.aclose()
    assert log == ["closed"]
    with pytest.raises(StopAsyncIteration):
        await anext(events)


async def test_a_throw_reaches_the_source() -> None:
    log: list[str] = []
    events = Batched(reads(log))
    await anext(events)
    with pytest.raises(KeyError):
        await events.athrow(KeyError("x"))
    assert log == ["closed"]

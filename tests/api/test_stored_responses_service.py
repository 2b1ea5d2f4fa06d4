"""`StoredResponses` through a fake `ResponseStore`: a failing save never fails the answer, and a
request naming a response whose save is still running here waits for it instead of a 404."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from keeprouter.api.stored_responses import StoredResponses
from keeprouter.errors import NotFound
from keeprouter.store.base import KeyRecord, StoredResponse

KEY = KeyRecord(hash="k1", name="k", label="sk-...", created_at=0.0)


class MemoryResponses:
    def __init__(self, fail: bool = False) -> None:
        self.rows: dict[str, StoredResponse] = {}
        self.fail = fail

    async def insert_response(self, resp: StoredResponse, items: Sequence[tuple[str, str]]) -> None:
        if self.fail:
            raise ConnectionError("database away")
        self.rows[resp.id] = resp

    async def get_response(self, owner: str, response_id: str) -> StoredResponse | None:
        r = self.rows.get(response_id)
        return r if r is not None and r.owner == owner else None

    async def get_items(self, owner: str, item_ids: Sequence[str]) -> dict[str, str]:
        return {}

    async def delete_response(self, owner: str, response_id: str) -> bool:
        return self.rows.pop(response_id, None) is not None

    async def delete_responses_before(self, created_before: float, limit: int) -> int:
        return 0


RESPONSE = {"id": "resp_1", "object": "response", "output": [{"id": "msg_1_0", "type": "message",
            "role": "assistant", "content": [{"type": "output_text", "text": "Hi."}]}]}  # fmt: skip


async def test_a_failed_save_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    stored = StoredResponses(MemoryResponses(fail=True), 30)
    ticket = await stored.prepare(KEY, {"input": "hi"})
    save = stored.answered(ticket, RESPONSE)
    assert save is not None
    await save
    assert "storing response resp_1 failed" in caplog.text
    with pytest.raises(NotFound):  # and nothing waits for it any more
        await stored.get(KEY, "resp_1")


async def test_a_chained_request_waits_for_a_save_in_flight() -> None:
    store = MemoryResponses()
    stored = StoredResponses(store, 30)
    ticket = await stored.prepare(KEY, {"input": "hi"})
    save = stored.answered(ticket, RESPONSE)
    assert save is not None
    body: dict[str, Any] = {"input": "and?", "previous_response_id": "resp_1"}
    waiting = asyncio.ensure_future(stored.prepare(KEY, body))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # the save has not run yet: no 404, a wait
    await save
    await waiting
    assert [i.get("role") for i in body["input"]] == ["user", "assistant", "user"]
    assert orjson.loads(store.rows["resp_1"].input_items)[0]["content"] == [{"type": "input_text", "text": "hi"}]


async def test_store_false_and_no_input_save_nothing() -> None:
    stored = StoredResponses(MemoryResponses(), 30)
    assert stored.answered(await stored.prepare(KEY, {"input": "hi", "store": False}), RESPONSE) is None
    assert stored.answered(await stored.prepare(KEY, {"input": 3}), RESPONSE) is None

"""Stored Responses API responses on both backends: per owner, their items indexed for
item_reference, deleted with their items, swept after the retention in bounded rounds."""

from __future__ import annotations

from keeprouter.store.base import Store, StoredResponse


def _resp(id: str, owner: str = "k1", created: float = 1000.0) -> StoredResponse:
    return StoredResponse(
        id=id, owner=owner, created_at=created, input_items='[{"id":"msg_in"}]', response=f'{{"id":"{id}"}}'
    )


async def test_insert_get_is_per_owner_and_idempotent(store: Store) -> None:
    await store.insert_response(_resp("resp_1"), [("msg_in", '{"a":1}'), ("fc_1", '{"b":2}')])
    await store.insert_response(_resp("resp_1", created=5.0), [("msg_in", '{"changed":1}')])  # again: no-op
    assert await store.get_response("k1", "resp_1") == _resp("resp_1")
    assert await store.get_response("k2", "resp_1") is None  # another owner's is invisible
    assert await store.get_response("k1", "resp_nope") is None
    assert await store.get_items("k1", ["fc_1", "msg_in", "nope", "fc_1"]) == {"fc_1": '{"b":2}', "msg_in": '{"a":1}'}
    assert await store.get_items("k2", ["fc_1"]) == {}
    assert await store.get_items("k1", []) == {}


async def test_an_item_in_two_responses_survives_deleting_one(store: Store) -> None:
    await store.insert_response(_resp("resp_1"), [("msg_x", '"one"')])
    await store.insert_response(_resp("resp_2"), [("msg_x", '"one"')])
    assert await store.delete_response("k1", "resp_1") is True
    assert await store.get_items("k1", ["msg_x"]) == {"msg_x": '"one"'}


async def test_delete_is_per_owner_and_drops_items(store: Store) -> None:
    await store.insert_response(_resp("resp_1"), [("fc_1", "{}")])
    assert await store.delete_response("k2", "resp_1") is False
    assert await store.get_response("k1", "resp_1") is not None
    assert await store.delete_response("k1", "resp_1") is True
    assert await store.delete_response("k1", "resp_1") is False
    assert await store.get_response("k1", "resp_1") is None
    assert await store.get_items("k1", ["fc_1"]) == {}


async def test_sweep_drops_the_oldest_in_bounded_rounds(store: Store) -> None:
    for i in range(5):
        await store.insert_response(_resp(f"resp_{i}", created=1000.0 + i), [(f"msg_{i}", "{}")])
    assert await store.delete_responses_before(1003.0, 2) == 2  # bounded: two of the three
    assert await store.get_response("k1", "resp_0") is None and await store.get_response("k1", "resp_1") is None
    assert await store.get_response("k1", "resp_2") is not None
    assert await store.delete_responses_before(1003.0, 2) == 1
    assert await store.delete_responses_before(1003.0, 2) == 0
    assert await store.get_items("k1", ["msg_2", "msg_3"]) == {"msg_3": "{}"}
    assert await store.get_response("k1", "resp_4") is not None

"""Items as a storing server keeps them: every input item with an id, pages of input items."""

from __future__ import annotations

from typing import Any

import pytest

from keeprouter.clients.openai_responses.stored import input_items, item_page
from keeprouter.errors import InvalidRequest


def test_input_items_get_ids_and_content_parts() -> None:
    assert input_items("hi", "t") == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}], "id": "msg_t_in0"}
    ]
    items = input_items(
        [
            {"role": "assistant", "content": "Hello"},
            {"type": "function_call_output", "call_id": "c", "output": "x", "id": "fco_mine"},
            {"type": "item_reference", "id": "fc_1"},
        ],
        "t",
    )
    assert items == [
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello"}],
            "id": "msg_t_in0",
        },
        {"type": "function_call_output", "call_id": "c", "output": "x", "id": "fco_mine"},  # the client's id kept
        {"type": "item_reference", "id": "fc_1"},
    ]
    assert input_items(None, "t") is None and input_items(["x"], "t") is None


ITEMS: list[dict[str, Any]] = [{"id": f"i{n}"} for n in range(5)]


def ids(page: dict[str, Any]) -> list[str]:
    return [i["id"] for i in page["data"]]


def test_pages_newest_first_by_default_with_after_cursor() -> None:
    page = item_page(ITEMS, after=None, limit="2", order=None)
    assert ids(page) == ["i4", "i3"] and page["has_more"] is True
    assert (page["first_id"], page["last_id"], page["object"]) == ("i4", "i3", "list")
    page = item_page(ITEMS, after="i1", limit=None, order="desc")
    assert ids(page) == ["i0"] and page["has_more"] is False
    page = item_page(ITEMS, after="i2", limit="2", order="asc")
    assert ids(page) == ["i3", "i4"] and page["has_more"] is False
    empty = item_page([], after=None, limit=None, order=None)
    assert empty["data"] == [] and empty["first_id"] is None and empty["has_more"] is False


@pytest.mark.parametrize(
    ("kw", "param"),
    [({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "x"}, "limit"),
     ({"order": "up"}, "order"), ({"after": "nope"}, "after")],
)  # fmt: skip
def test_bad_page_parameters_name_the_param(kw: dict[str, str], param: str) -> None:
    args: dict[str, str | None] = {"after": None, "limit": None, "order": None, **kw}
    with pytest.raises(InvalidRequest) as e:
        item_page(ITEMS, **args)
    assert e.value.param == param

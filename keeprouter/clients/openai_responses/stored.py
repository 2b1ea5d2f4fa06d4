"""Responses API items as a server that stores responses keeps them (pure): a request's `input`
as a list of items each with its own id, and pages of a response's input items.

The route layer (`api.stored_responses`) does the storing; this module only shapes JSON.
"""

from __future__ import annotations

from typing import Any, Literal

from keeprouter.errors import InvalidRequest

# Id prefixes of the items a client sends without one (as OpenAI names its own items).
_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco",
    "reasoning": "rs",
}
_INPUT_ROLES = frozenset({"user", "system", "developer"})
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
Order = Literal["asc", "desc"]


def input_items(raw: Any, tail: str) -> list[dict[str, Any]] | None:
    """`input` (a string or a list of items) as a list of items, each with an id (a new one ending
    in `tail` and its position, for an item sent without one) and message content as a list of parts.
    None when `input` has neither shape (the request parser names the problem)."""
    if isinstance(raw, str):
        raw = [{"type": "message", "role": "user", "content": raw}]
    if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
        return None
    out: list[dict[str, Any]] = []
    for n, item in enumerate(raw):
        kind = item.get("type", "message")
        it = {"type": kind, **item}
        if kind == "message" and isinstance(it.get("content"), str):
            part = "input_text" if it.get("role") in _INPUT_ROLES else "output_text"
            it["content"] = [{"type": part, "text": it["content"]}]
        if kind != "item_reference" and not isinstance(it.get("id"), str):
            it["id"] = f"{_PREFIX.get(str(kind), 'item')}_{tail}_in{n}"
        out.append(it)
    return out


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_LIMIT:
        raise InvalidRequest(f"`limit` must be an integer from 1 to {MAX_LIMIT}", param="limit")
    return n


def item_page(
    items: list[dict[str, Any]], *, after: str | None, limit: str | None, order: str | None
) -> dict[str, Any]:
    """OpenAI's list object over `items` (in the order they were given to the model): `order` "desc"
    (the default) newest first, `after` an item id to continue after, `limit` 1-100 (default 20)."""
    if order not in (None, "asc", "desc"):
        raise InvalidRequest('`order` must be "asc" or "desc"', param="order")
    n = _limit(limit)
    ordered = items if order == "asc" else items[::-1]
    start = 0
    if after is not None:
        ids = [i.get("id") for i in ordered]
        if after not in ids:
            raise InvalidRequest(f"`after`: no item with id {after!r} in this response's input", param="after")
        start = ids.index(after) + 1
    data = ordered[start : start + n]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0].get("id") if data else None,
        "last_id": data[-1].get("id") if data else None,
        "has_more": start + n < len(ordered),
    }

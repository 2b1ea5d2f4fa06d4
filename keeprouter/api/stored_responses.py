"""The Responses API's stored state, as OpenAI's own server keeps it: `store: true` (the default)
keeps a response per owner; `previous_response_id` continues its conversation; `item_reference`
input items name items of stored responses; GET / DELETE `/v1/responses/{id}` and
`/v1/responses/{id}/input_items` read them back. Another owner's response is a 404, as an unknown one.

Around one `POST /v1/responses` (see `api.inference.chat_handler`'s `stateful`):
- `prepare` runs before the body is parsed: it loads what the request names and rewrites `input`
  into the whole conversation, so the translators and the gateway stay stateless.
- `answered` / `streamed` give the save to run with the generation's settle (the answer waits for
  both together, bounded by the settle wait, so a client that chains at once finds its response;
  a save still running then is awaited by a `prepare` in this process that names it).
- A failed stream is not stored; a save that fails is logged and never fails the answer.
Retention: `sweep` drops responses older than the configured days, in bounded rounds.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import orjson

from keeprouter.clients.openai_responses.stored import input_items
from keeprouter.errors import InvalidRequest, NotFound
from keeprouter.store.base import SECONDS_PER_DAY, KeyRecord, ResponseStore, StoredResponse

log = logging.getLogger("keeprouter")
SWEEP_EVERY = 3600.0  # seconds between two retention sweeps
SWEEP_BATCH = 500  # responses dropped per transaction; a sweep repeats until none is left
SAVE_WAIT = 5.0  # how long a request naming a response still being saved here waits for it


def owner_of(key: KeyRecord) -> str:
    """Who may read a stored response back: the key's user where keys belong to users, else the key."""
    user = getattr(key, "user_id", None)
    return user if isinstance(user, str) and user else key.hash


@dataclass(slots=True)
class Ticket:
    """What `prepare` learnt of one request, for its save."""

    owner: str
    store: bool
    context: list[dict[str, Any]]  # every item the response is generated from, earlier turns first
    added: list[dict[str, Any]]  # this request's own input items (references resolved)


def _not_found(rid: str) -> NotFound:
    return NotFound(f"Response with id '{rid}' not found.")


class StoredResponses:
    """Stored responses of every owner, over the store's `ResponseStore` seam."""

    def __init__(self, store: ResponseStore, retention_days: float, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self.retention = retention_days * SECONDS_PER_DAY
        self._clock = clock
        self._saving: dict[str, asyncio.Event] = {}  # response id -> set once its save is over

    # ---- around a POST -----------------------------------------------------------------------
    async def prepare(self, key: KeyRecord, body: dict[str, Any]) -> Ticket:
        """Resolve `previous_response_id` and `item_reference` items in `body` (rewriting its
        `input`); NotFound for what this owner has not stored."""
        owner = owner_of(key)
        history: list[dict[str, Any]] = []
        prev_id = body.get("previous_response_id")
        if isinstance(prev_id, str):
            prev = await self._load(owner, prev_id)
            if prev is None:
                raise NotFound(f"Previous response with id '{prev_id}' not found.", param="previous_response_id")
            history = [*orjson.loads(prev.input_items), *orjson.loads(prev.response).get("output", [])]
        # Ids for the items sent without one: unique per request, before the generation has its id.
        items = input_items(body.get("input"), secrets.token_hex(12))
        if items is None:  # not an input at all: the parser names the problem
            return Ticket(owner, False, [], [])
        referenced = any(i.get("type") == "item_reference" for i in items)
        if referenced:
            items = await self._resolve(owner, items, history)
        if history or referenced:
            body["input"] = [*history, *items]
        return Ticket(owner, body.get("store") is not False, [*history, *items], items)

    async def _resolve(
        self, owner: str, items: list[dict[str, Any]], history: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """`item_reference` items replaced by the items they name (the conversation's first)."""
        wanted: list[str] = []
        for n, item in enumerate(items):
            if item.get("type") == "item_reference":
                if not isinstance(item.get("id"), str) or not item["id"]:
                    raise InvalidRequest("an item_reference needs the `id` of a stored item", param=f"input[{n}].id")
                wanted.append(item["id"])
        known = {i["id"]: i for i in history if isinstance(i.get("id"), str)}
        missing = [w for w in wanted if w not in known]
        if missing:
            for item_id, raw in (await self._store.get_items(owner, missing)).items():
                known[item_id] = orjson.loads(raw)
        out: list[dict[str, Any]] = []
        for n, item in enumerate(items):
            if item.get("type") != "item_reference":
                out.append(item)
            elif (found := known.get(item["id"])) is not None:
                out.append(found)
            else:
                raise NotFound(f"Item with id '{item['id']}' not found.", param=f"input[{n}]")
        return out

    async def _load(self, owner: str, rid: str) -> StoredResponse | None:
        found = await self._store.get_response(owner, rid)
        saving = self._saving.get(rid)
        if found is None and saving is not None:  # answered, its save still running: wait for it
            try:
                await asyncio.wait_for(saving.wait(), SAVE_WAIT)
            except TimeoutError:
                return None
            found = await self._store.get_response(owner, rid)
        return found

    def answered(self, ticket: Ticket, response: dict[str, Any]) -> Coroutine[Any, Any, None] | None:
        """The save of a whole answer (None when not to be stored), to run with its settle."""
        if not ticket.store or not ticket.context:
            return None
        self._saving[response["id"]] = asyncio.Event()
        return self._save(ticket, response)

    def streamed(self, ticket: Ticket, encoder: Any) -> Coroutine[Any, Any, None] | None:
        """The same for a stream that ran to its end (its encoder holds the final object)."""
        final = getattr(encoder, "final", None)
        return self.answered(ticket, final) if isinstance(final, dict) else None

    async def _save(self, ticket: Ticket, response: dict[str, Any]) -> None:
        rid = response["id"]
        try:
            added = [*ticket.added, *response.get("output", [])]
            items = [(i["id"], orjson.dumps(i).decode()) for i in added if isinstance(i.get("id"), str)]
            rec = StoredResponse(
                id=rid,
                owner=ticket.owner,
                created_at=self._clock(),
                input_items=orjson.dumps(ticket.context).decode(),
                response=orjson.dumps(response).decode(),
            )
            await self._store.insert_response(rec, items)
        except Exception:  # the answer is out already; a lost save is a 404 later, never a failure now
            log.exception("storing response %s failed", rid)
        finally:
            event = self._saving.pop(rid, None)
            if event is not None:
                event.set()

    # ---- reads ---------------------------------------------------------------------------------
    async def get(self, key: KeyRecord, rid: str) -> dict[str, Any]:
        found = await self._load(owner_of(key), rid)
        if found is None:
            raise _not_found(rid)
        out: dict[str, Any] = orjson.loads(found.response)
        return out

    async def input_items(self, key: KeyRecord, rid: str) -> list[dict[str, Any]]:
        found = await self._load(owner_of(key), rid)
        if found is None:
            raise _not_found(rid)
        out: list[dict[str, Any]] = orjson.loads(found.input_items)
        return out

    async def delete(self, key: KeyRecord, rid: str) -> dict[str, Any]:
        """OpenAI's deletion answer; NotFound when this owner has no such response."""
        if not await self._store.delete_response(owner_of(key), rid):
            raise _not_found(rid)
        return {"id": rid, "object": "response", "deleted": True}

    # ---- retention -----------------------------------------------------------------------------
    async def sweep_once(self) -> int:
        """Drop every response past the retention, one bounded batch per transaction."""
        before = self._clock() - self.retention
        total = 0
        while (n := await self._store.delete_responses_before(before, SWEEP_BATCH)) > 0:
            total += n
            if n < SWEEP_BATCH:
                break
        return total

    async def sweeper(self, every: float = SWEEP_EVERY) -> None:
        """The retention sweep, forever (create_app owns the task and cancels it at shutdown)."""
        while True:
            try:
                n = await self.sweep_once()
                if n:
                    log.info("dropped %d stored responses past their retention", n)
            except Exception:  # the database may be briefly away; try again next round
                log.exception("sweeping stored responses failed")
            await asyncio.sleep(every)

"""OpenAI Responses client API: `POST /v1/responses` for any model on either upstream format (the
translators are `clients.openai_responses`), and the stored responses' routes: GET and DELETE
`/v1/responses/{id}`, GET `/v1/responses/{id}/input_items` (the state is `api.stored_responses`)."""

from __future__ import annotations

from aiohttp import web

from keeprouter.api.http import authenticate, json_response, with_errors
from keeprouter.api.inference import chat_handler
from keeprouter.api.stored_responses import StoredResponses
from keeprouter.clients.openai_responses.stored import item_page
from keeprouter.clients.registry import OPENAI_RESPONSES

STORED: web.AppKey[StoredResponses] = web.AppKey("keeprouter_stored_responses", StoredResponses)

create = chat_handler(OPENAI_RESPONSES, lambda request: request.app[STORED])


@with_errors(OPENAI_RESPONSES.name)
async def retrieve(request: web.Request) -> web.StreamResponse:
    key = await authenticate(request)
    return json_response(await request.app[STORED].get(key, request.match_info["response_id"]))


@with_errors(OPENAI_RESPONSES.name)
async def delete(request: web.Request) -> web.StreamResponse:
    key = await authenticate(request)
    return json_response(await request.app[STORED].delete(key, request.match_info["response_id"]))


@with_errors(OPENAI_RESPONSES.name)
async def input_items(request: web.Request) -> web.StreamResponse:
    key = await authenticate(request)
    items = await request.app[STORED].input_items(key, request.match_info["response_id"])
    q = request.query
    return json_response(item_page(items, after=q.get("after"), limit=q.get("limit"), order=q.get("order")))


def add_routes(router: web.UrlDispatcher, prefixes: tuple[str, ...]) -> None:
    """Every route under each of `prefixes` (as the POST is)."""
    for p in prefixes:
        router.add_post(f"{p}/responses", create)
        router.add_get(p + "/responses/{response_id}", retrieve)
        router.add_delete(p + "/responses/{response_id}", delete)
        router.add_get(p + "/responses/{response_id}/input_items", input_items)

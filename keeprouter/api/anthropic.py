"""Anthropic-compatible client API: `POST /v1/messages` and `POST /v1/messages/count_tokens` (the translators
are `clients.anthropic_messages`)."""

from __future__ import annotations

from aiohttp import web

from keeprouter.api.http import STATE, authenticate, json_response, read_json, with_errors
from keeprouter.api.inference import chat_handler
from keeprouter.clients.anthropic_messages.request import parse_request
from keeprouter.clients.registry import ANTHROPIC_MESSAGES
from keeprouter.errors import NotFound

messages = chat_handler(ANTHROPIC_MESSAGES)


@with_errors("anthropic")
async def count_tokens(request: web.Request) -> web.StreamResponse:
    """The exact count from the model's Anthropic-format upstream when it has one (Claude models),
    else with the model's shipped tokenizer (OpenAI family), else an offline estimate; every block
    type counts (system, tools, tool_use, tool_result, images, thinking). Never a 404 for an unknown
    model: Claude Code treats that as an error."""
    await authenticate(request)
    body = await read_json(request)
    req = parse_request(body, require_max_tokens=False)
    gateway = request.app[STATE].gateway
    try:
        models = gateway.route(body, req).models
    except NotFound:
        models = []
    return json_response({"input_tokens": await gateway.count_input(models, req, request.headers)})

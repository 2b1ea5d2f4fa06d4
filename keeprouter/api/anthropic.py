"""Anthropic-compatible client API: `POST /v1/messages` and `POST /v1/messages/count_tokens`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from keeprouter.api.http import STATE, authenticate, json_response, read_json, with_errors
from keeprouter.api.inference import ClientApi, Encoder, chat_handler
from keeprouter.errors import NotFound
from keeprouter.formats import anthropic as fmt
from keeprouter.formats.anthropic_stream import AnthropicStreamEncoder
from keeprouter.formats.canonical import Start, StreamEvent, Usage
from keeprouter.gateway import Completion, LiveStream


def _respond(done: Completion, gen_id: str) -> dict[str, Any]:
    return fmt.build_response(done.response, id=gen_id, model=done.candidate.model.id)


class _Encoder(AnthropicStreamEncoder):
    """Fills message_start's input count from our estimate when the upstream gives none there
    (OpenAI-format upstreams report usage only at the end; Claude Code reads it at the start)."""

    def __init__(self, gen_id: str, model: str, prompt_estimate: int) -> None:
        super().__init__(id=gen_id, model=model)
        self._estimate = prompt_estimate

    def feed(self, ev: StreamEvent) -> list[bytes]:
        if isinstance(ev, Start) and ev.usage is None:
            ev.usage = Usage(input_tokens=self._estimate)
        return super().feed(ev)


def _encoder(gen_id: str, model: str, live: LiveStream | None) -> Encoder:
    return _Encoder(gen_id, model, live.prompt_estimate if live else 0)


def _end(enc: Encoder, live: LiveStream) -> list[bytes]:
    assert isinstance(enc, AnthropicStreamEncoder)
    return enc.end()


ANTHROPIC = ClientApi("anthropic", fmt.parse_request, _respond, _encoder, _end)
messages = chat_handler(ANTHROPIC)


@with_errors("anthropic")
async def count_tokens(request: web.Request) -> web.StreamResponse:
    """The exact count from the model's Anthropic-format upstream when it has one (Claude models),
    else with the model's shipped tokenizer (OpenAI family), else an offline estimate; every block
    type counts (system, tools, tool_use, tool_result, images, thinking). Never a 404 for an unknown
    model: Claude Code treats that as an error."""
    await authenticate(request)
    body = await read_json(request)
    req = fmt.parse_request(body, require_max_tokens=False)
    gateway = request.app[STATE].gateway
    try:
        models = gateway.route(body, req).models
    except NotFound:
        models = []
    return json_response({"input_tokens": await gateway.count_input(models, req, request.headers)})

"""OpenAI-compatible client API: `POST /v1/chat/completions` and its bindings."""

from __future__ import annotations

from typing import Any

from keeprouter.api.inference import ClientApi, Encoder, chat_handler, now
from keeprouter.formats import openai as fmt
from keeprouter.formats.openai_stream import OpenAIStreamEncoder
from keeprouter.gateway import Completion, LiveStream


def _respond(done: Completion, gen_id: str) -> dict[str, Any]:
    return fmt.build_response(
        done.response,
        id=gen_id,
        model=done.candidate.model.id,
        created=now(),
        provider=done.candidate.endpoint.provider,
        cost=done.cost,
    )


def _encoder(gen_id: str, model: str, live: LiveStream | None) -> Encoder:
    include_usage = bool(live and live.meter.request.include_usage)
    provider = live.candidate.endpoint.provider if live else None
    return OpenAIStreamEncoder(id=gen_id, model=model, created=now(), provider=provider, include_usage=include_usage)


def _end(enc: Encoder, live: LiveStream) -> list[bytes]:
    assert isinstance(enc, OpenAIStreamEncoder)
    return enc.end(live.cost())


OPENAI = ClientApi("openai", fmt.parse_request, _respond, _encoder, _end)
chat_completions = chat_handler(OPENAI)

"""OpenAI Responses client API: `POST /v1/responses` (stateless), for any model on either upstream format."""

from __future__ import annotations

from typing import Any

from keeprouter.api.inference import ClientApi, Encoder, chat_handler, now
from keeprouter.formats import openai_responses as fmt
from keeprouter.formats.openai_responses_stream import ResponsesStreamEncoder
from keeprouter.gateway import Completion, LiveStream


def _respond(done: Completion, gen_id: str) -> dict[str, Any]:
    return fmt.build_response(
        done.response,
        id=fmt.response_id(gen_id),
        model=done.candidate.model.id,
        created=now(),
        echo=fmt.echo_of(done.meter.request),
        cost=done.cost,
    )


def _encoder(gen_id: str, model: str, live: LiveStream | None) -> Encoder:
    echo = fmt.echo_of(live.meter.request if live else None)
    return ResponsesStreamEncoder(id=fmt.response_id(gen_id), model=model, created=now(), echo=echo)


def _end(enc: Encoder, live: LiveStream) -> list[bytes]:
    assert isinstance(enc, ResponsesStreamEncoder)
    usage = live.final_usage()
    return enc.end(usage, live.cost(usage))


RESPONSES = ClientApi("responses", fmt.parse_request, _respond, _encoder, _end)
create = chat_handler(RESPONSES)

"""`POST /v1/embeddings` (OpenAI's shape) and `POST /v1/rerank` (Cohere's v2 shape): decode -> one
gateway call -> encode, with the keys, limits, credit and recording of chat.

Errors: embeddings answer in OpenAI's error shape (its SDKs raise from it). Rerank answers with
Cohere's top-level `message` and OpenRouter's `error` object side by side
(`clients.cohere_rerank.response.render_error`): rerank callers are Cohere's SDK and
Cohere-shaped HTTP clients (which read `message`) and gateway clients (which read `error`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from keeprouter.api.http import STATE, authenticate, error_response, json_response, log, read_json
from keeprouter.api.inference import app_headers, span_served
from keeprouter.clients.cohere_rerank import request as rerank_request
from keeprouter.clients.cohere_rerank import response as rerank_response
from keeprouter.clients.openai_embeddings import request as embeddings_request
from keeprouter.clients.openai_embeddings import response as embeddings_response
from keeprouter.clients.registry import OPENAI_CHAT
from keeprouter.errors import GatewayError
from keeprouter.gateway import Caller, Gateway, Retrieved, settled_within

EMBEDDINGS = "embeddings"  # the `api` of their generations, metrics and traces
RERANK = "rerank"


def _error(err: GatewayError, api: str) -> web.Response:
    resp = error_response(err, OPENAI_CHAT)  # OpenAI's error body, status and retry headers
    if api == RERANK:
        resp.body = orjson.dumps(rerank_response.render_error(err))
    return resp


Answer = Callable[[Gateway, dict[str, Any], Caller], Awaitable[tuple[Retrieved[Any], dict[str, Any]]]]


async def _traced(request: web.Request, api: str, answer: Answer) -> web.StreamResponse:
    """The request's span around `_serve`, when traces are on (as chat's)."""
    tracing = request.app[STATE].gateway.tracing
    if tracing is None:
        return await _serve(request, api, answer, None)
    span, token = tracing.start_request(api, api)  # GenAI operation names: embeddings, rerank
    status = 500
    try:
        resp = await _serve(request, api, answer, span)
        status = resp.status
        return resp
    finally:
        tracing.end_request(span, token, status)


async def _serve(request: web.Request, api: str, answer: Answer, span: Any) -> web.StreamResponse:
    state = request.app[STATE]
    gateway = state.gateway
    model = ""
    try:
        key = await authenticate(request)
        body = await read_json(request)
        model = str(body.get("model") or "")
        app, title = app_headers(request)
        done, out = await answer(gateway, body, Caller(api, key, request.headers, app, title))
    except GatewayError as e:
        if gateway.metrics is not None:
            gateway.metrics.refused(model, api, e.status)
        return _error(e, api)
    except Exception:  # a bug of ours: log it, answer in the caller's format, never a stack trace
        log.exception("unhandled error on %s %s", request.method, request.path)
        if gateway.metrics is not None:
            gateway.metrics.refused(model, api, 500)
        return _error(GatewayError("internal error"), api)
    gen_id = done.meter.gen_id
    if span is not None:
        span_served(gateway, span, done.meter, done.response.usage, None, api)
    resp = json_response(
        out, headers={"X-Generation-Id": gen_id, "X-KeepRouter-Provider": done.candidate.endpoint.provider}
    )
    # Recorded before the answer leaves, bounded, as chat answers are (api.inference).
    settling = gateway.settle_later(gateway.settle_retrieved(done))
    await settled_within(settling, gateway.settle_wait)
    return resp


async def _embed(gateway: Gateway, body: dict[str, Any], caller: Caller) -> tuple[Retrieved[Any], dict[str, Any]]:
    req = embeddings_request.parse_request(body)
    done = await gateway.embed(caller, req, gateway.route_for(body, req.model, "text->embedding"))
    out = embeddings_response.render(
        done.response,
        model=done.candidate.model.id,
        encoding_format=req.encoding_format,
        id=done.meter.gen_id,
        provider=done.candidate.endpoint.provider,
        cost=done.cost,
    )
    return done, out


async def _rerank(gateway: Gateway, body: dict[str, Any], caller: Caller) -> tuple[Retrieved[Any], dict[str, Any]]:
    req = rerank_request.parse_request(body)
    done = await gateway.rerank(caller, req, gateway.route_for(body, req.model, "text->rerank"))
    out = rerank_response.render(
        done.response,
        req,
        id=done.meter.gen_id,
        model=done.candidate.model.id,
        provider=done.candidate.endpoint.provider,
        cost=done.cost,
    )
    return done, out


async def embeddings(request: web.Request) -> web.StreamResponse:
    return await _traced(request, EMBEDDINGS, _embed)


async def rerank(request: web.Request) -> web.StreamResponse:
    return await _traced(request, RERANK, _rerank)


def add_routes(r: web.UrlDispatcher) -> None:
    for p in ("/v1", "", "/api/v1"):
        r.add_post(f"{p}/embeddings", embeddings)
        r.add_post(f"{p}/rerank", rerank)
    r.add_post("/v2/rerank", rerank)  # Cohere's own path, for clients pointed at a Cohere base URL

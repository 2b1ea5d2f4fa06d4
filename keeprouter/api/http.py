"""Shared HTTP plumbing for the routes: the app's state, JSON bodies, auth, errors in each API's shape."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from keeprouter.clients import registry
from keeprouter.clients.base import ClientApi
from keeprouter.config import Config
from keeprouter.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    PayloadTooLarge,
    PermissionDenied,
)
from keeprouter.gateway import Gateway
from keeprouter.keys import KeyService
from keeprouter.routing.health import HealthTracker
from keeprouter.store.base import KeyRecord, Store

JSON = "application/json"
BODY_READ_TIMEOUT = 120.0  # seconds a request body may take to arrive
log = logging.getLogger("keeprouter")


@dataclass(slots=True)
class State:
    config: Config
    gateway: Gateway
    keys: KeyService
    store: Store
    health: HealthTracker


STATE: web.AppKey[State] = web.AppKey("keeprouter_state", State)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


DROPPED_HEADER = "X-KeepRouter-Dropped"


def note_dropped(headers: MutableMapping[str, str], fields: Iterable[str]) -> None:
    """Name request fields the serving upstream could not honour in the response's
    X-KeepRouter-Dropped header (comma-separated, each once), merging with what is there already.
    Every dropped field goes through here, so a caller never loses one silently."""
    have = [f for f in headers.get(DROPPED_HEADER, "").split(",") if f]
    for f in fields:
        if f not in have:
            have.append(f)
    if have:
        headers[DROPPED_HEADER] = ",".join(have)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=JSON, headers=headers)


def error_response(err: GatewayError, api: ClientApi[Any]) -> web.Response:
    """`err` rendered in the caller's own API format, with its status and retry hints."""
    status, body = api.render_error(err)
    headers = dict(err.headers) if err.headers else {}
    if err.retry_after:
        headers["retry-after"] = err.retry_after
    if err.status >= 500 and err.status not in (502, 503, 504):
        headers["x-should-retry"] = "false"
    return json_response(body, status, headers)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, whatever its Content-Type (as OpenAI accepts). A declared length
    over the limit is refused before reading any of it; a body that does not arrive within
    BODY_READ_TIMEOUT is a 408, so a stalled client cannot hold a handler forever."""
    if (request.content_length or 0) > request.client_max_size:
        raise PayloadTooLarge(f"request body is too large (limit {request.client_max_size} bytes)")
    try:
        if request.content.is_eof():  # all of it has arrived (a small body comes with its headers): no wait
            raw = await request.read()
        else:
            async with asyncio.timeout(BODY_READ_TIMEOUT):
                raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"request body is too large (limit {request.client_max_size} bytes)") from None
    except TimeoutError:
        raise InvalidRequest("timed out reading the request body", status=408) from None
    if not raw:
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(f"request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body


def presented_key(request: web.Request) -> str:
    """The API key from `Authorization: Bearer KEY` or `x-api-key: KEY` (never the query string).
    Both present and different is refused rather than one picked silently."""
    headers = request.headers
    bearer = ""
    auth = headers.get("Authorization")
    if auth:
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() == "bearer":
            bearer = token.strip()
    key = (headers.get("x-api-key") or "").strip()
    if bearer and key and bearer != key:  # both the caller's own: nothing secret to time
        raise AuthenticationFailed("Conflicting credentials: 'Authorization' and 'x-api-key' carry different keys")
    token = bearer or key
    if not token:
        raise AuthenticationFailed("Missing API key: send 'Authorization: Bearer KEY' or 'x-api-key: KEY'")
    if not (token.isascii() and token.isprintable()):  # headers that were not UTF-8, control bytes
        raise AuthenticationFailed("Invalid API key")
    return token


async def authenticate(request: web.Request) -> KeyRecord:
    """The caller's key record (the admin key's is the stored "admin" row, `is_admin` set)."""
    return await request.app[STATE].keys.authenticate(presented_key(request))


async def require_admin(request: web.Request) -> None:
    if not (await authenticate(request)).is_admin:
        raise PermissionDenied("this endpoint needs the admin key")


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own refusals (unknown path 404, wrong method 405, ...) as JSON errors in the caller's
    format rather than text/plain; handlers render their own errors and never reach this."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        api = registry.for_request(request.path, request.headers)
        resp = error_response(GatewayError(e.reason, status=e.status), api)
        if "Allow" in e.headers:
            resp.headers["Allow"] = e.headers["Allow"]
        return resp


def with_errors(name: str) -> Callable[[Handler], Handler]:
    """Decorator: any GatewayError becomes an error response in the shape of the client API called
    `name` (see `clients.registry`); nothing else leaks."""
    api = registry.by_name(name)

    def wrap(fn: Handler) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                return await fn(request)
            except GatewayError as e:
                return error_response(e, api)
            except Exception:  # a bug of ours: log it, never show a stack trace to the caller
                log.exception("unhandled error on %s %s", request.method, request.path)
                return error_response(GatewayError("internal error"), api)

        handler.__name__ = fn.__name__
        handler.__doc__ = fn.__doc__
        return handler

    return wrap

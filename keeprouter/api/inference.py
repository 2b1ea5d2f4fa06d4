"""The chat handler shared by every client API: decode -> one gateway call -> encode.

A `ClientApi` row (`keeprouter.clients`) binds one client wire format (its parser, response
renderer, stream encoder and error shape); everything else is the same for every caller.

Streaming rules:
- Failures before the first upstream event fall back or become a normal HTTP error.
- While waiting for the first event, after KEEPALIVE_AFTER seconds the 200 is committed and SSE
  comments are sent every KEEPALIVE_EVERY seconds (load balancers cut silent streams at 60 s).
- After that, an upstream failure ends the stream with an in-band error in the caller's format.
- A client that goes away cancels the upstream request; what was produced is still billed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import aclosing, suppress
from typing import Any, Protocol

from aiohttp import web

from keeprouter.api.coalesce import next_or_flush
from keeprouter.api.http import STATE, authenticate, error_response, json_response, log, note_dropped, read_json
from keeprouter.clients.base import ClientApi, Reply
from keeprouter.errors import GatewayError
from keeprouter.formats.batches import Batched
from keeprouter.formats.canonical import ChatRequest, Usage
from keeprouter.formats.sse import KEEPALIVE
from keeprouter.gateway import Caller, Completion, Gateway, LiveStream, Metering, settled_within
from keeprouter.store.base import GenerationStatus, KeyRecord

KEEPALIVE_AFTER = 3.0
KEEPALIVE_EVERY = 10.0
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # tell nginx not to buffer the stream
}


def app_headers(request: web.Request) -> tuple[str | None, str | None]:
    h = request.headers
    return h.get("HTTP-Referer") or h.get("Referer"), h.get("X-Title") or h.get("X-OpenRouter-Title")


class Stateful(Protocol):
    """A client API's server-side state around a request (the Responses API's stored responses):
    `prepare` may rewrite the body before it is parsed and returns a ticket; `answered` / `streamed`
    return the work to run with the generation's settle once the answer is complete (or None)."""

    def prepare(self, key: KeyRecord, body: dict[str, Any]) -> Awaitable[Any]: ...

    def answered(self, ticket: Any, response: dict[str, Any]) -> Coroutine[Any, Any, None] | None: ...

    def streamed(self, ticket: Any, encoder: Any) -> Coroutine[Any, Any, None] | None: ...


async def _together(*work: Coroutine[Any, Any, None]) -> None:
    await asyncio.gather(*work)


def chat_handler(
    api: ClientApi[Any], stateful: Callable[[web.Request], Stateful] | None = None
) -> Callable[[web.Request], Any]:
    """The route of one client API; `stateful(request)` gives the API's stored state, if it keeps any."""

    async def traced(request: web.Request) -> web.StreamResponse:
        """The request's span around `handle`, when traces are on."""
        tracing = request.app[STATE].gateway.tracing
        if tracing is None:
            return await handle(request, None)
        span, token = tracing.start_request(api.name)
        status = 500
        try:
            resp = await handle(request, span)
            status = resp.status
            return resp
        finally:
            tracing.end_request(span, token, status)

    async def handle(request: web.Request, span: Any) -> web.StreamResponse:
        state = request.app[STATE]
        req: ChatRequest | None = None
        try:
            key = await authenticate(request)
            body = await read_json(request)
            state_of = stateful(request) if stateful is not None else None
            ticket = await state_of.prepare(key, body) if state_of is not None else None
            req = api.parse_request(body)
            gateway = state.gateway
            route = gateway.route(body, req)
            app, title = app_headers(request)
            caller = Caller(api.name, key, request.headers, app, title)
            if req.stream:
                after = None if state_of is None else (lambda enc: state_of.streamed(ticket, enc))
                return await _stream(request, api, caller, req, route, span, after)
            done = await gateway.complete(caller, req, route)
        except GatewayError as e:
            _refused(state.gateway, api.name, req, e.status)
            return error_response(e, api)
        except Exception:  # a bug of ours: log it, answer in the caller's format, never a stack trace
            log.exception("unhandled error on %s %s", request.method, request.path)
            _refused(state.gateway, api.name, req, 500)
            return error_response(GatewayError("internal error"), api)
        gen_id = done.meter.gen_id
        if span is not None:
            span_served(gateway, span, done.meter, done.response.usage, done.response.stop_reason)
        rendered = api.render_response(done.response, _reply(done))
        headers = {"X-Generation-Id": gen_id, "X-KeepRouter-Provider": done.candidate.endpoint.provider}
        if done.meter.served is not None:
            note_dropped(headers, done.meter.served.dropped)
        if done.meter.cache is not None:  # the response cache is on for this request: HIT or MISS
            headers["X-KeepRouter-Cache"] = done.meter.cache.header
        resp = json_response(rendered, headers=headers)
        work = gateway.settle(done)
        if state_of is not None and (save := state_of.answered(ticket, rendered)) is not None:
            work = _together(work, save)
        # Recorded BEFORE the answer leaves (aiohttp writes `resp` once we return): a client that
        # received its answer in full is never missing from the ledger, even if this process is
        # killed right after. Bounded: past `settle_wait` the answer goes anyway and the settle task
        # (which survives the client going away and is drained at shutdown) records it late.
        settling = gateway.settle_later(work)
        await settled_within(settling, gateway.settle_wait)
        return resp

    return traced


def _reply(done: Completion) -> Reply:
    cand = done.candidate
    return Reply(
        id=done.meter.gen_id,
        model=cand.model.id,
        created=now(),
        provider=cand.endpoint.provider,
        request=done.meter.request,
        cost=done.cost,
    )


def _stream_reply(live: LiveStream) -> Reply:
    cand = live.candidate
    return Reply(
        id=live.gen_id,
        model=cand.model.id,
        created=now(),
        provider=cand.endpoint.provider,
        request=live.meter.request,
        prompt_estimate=live.prompt_estimate,
    )


def _refused(gateway: Gateway, api: str, req: ChatRequest | None, status: int) -> None:
    """Count a request no endpoint served (the settled ones are counted by the gateway)."""
    if gateway.metrics is not None:
        gateway.metrics.refused(req.model if req is not None else "", api, status)


def span_served(
    gateway: Gateway, span: Any, meter: Metering, usage: Usage, finish: str | None, operation: str = "chat"
) -> None:
    assert gateway.tracing is not None and meter.candidate is not None
    cand = meter.candidate
    gateway.tracing.served(span, meter.gen_id, cand.model.id, cand.endpoint.provider, cand.endpoint.model, operation)
    gateway.tracing.usage(span, usage.input_tokens, usage.output_tokens, finish)


After = Callable[[Any], Coroutine[Any, Any, None] | None]  # the encoder of a finished stream -> work to settle with


async def _stream(
    request: web.Request,
    api: ClientApi[Any],
    caller: Caller,
    req: ChatRequest,
    route: Any,
    span: Any,
    after: After | None,
) -> web.StreamResponse:
    gateway = request.app[STATE].gateway
    metrics = gateway.metrics
    if metrics is not None:
        metrics.streams.inc()
    try:
        return await _relay(request, api, caller, req, route, span, after)
    finally:
        if metrics is not None:
            metrics.streams.dec()


async def _relay(
    request: web.Request,
    api: ClientApi[Any],
    caller: Caller,
    req: ChatRequest,
    route: Any,
    span: Any,
    after: After | None,
) -> web.StreamResponse:
    gateway = request.app[STATE].gateway
    resp = web.StreamResponse(headers=SSE_HEADERS)
    # Keep-alives only for slow starts: a timer spawns the writer task, so a fast first token costs
    # no extra task. The writer is stopped (and awaited) before anything else is written.
    keepalive: asyncio.Task[None] | None = None

    def start_keepalive() -> None:
        nonlocal keepalive
        keepalive = asyncio.ensure_future(_keepalive(request, resp))

    timer = asyncio.get_running_loop().call_later(KEEPALIVE_AFTER, start_keepalive)
    try:
        live = await gateway.open_stream(caller, req, route)
    except GatewayError as e:
        await _stop(timer, keepalive)
        _refused(gateway, api.name, req, e.status)
        if not resp.prepared:
            return error_response(e, api)
        enc = api.encoder(Reply(id="gen-failed", model=req.model, created=now()))
        await resp.write(b"".join(enc.error(e)))
        return resp
    finally:
        await _stop(timer, keepalive)
    prepared = resp.prepared

    enc = api.encoder(_stream_reply(live))
    if not prepared:
        resp.headers["X-Generation-Id"] = live.gen_id
        resp.headers["X-KeepRouter-Provider"] = live.candidate.endpoint.provider
        note_dropped(resp.headers, live.served.dropped)
        if live.meter.cache is not None:
            resp.headers["X-KeepRouter-Cache"] = live.meter.cache.header
        await resp.prepare(request)
    status: GenerationStatus = "ok"
    error: GatewayError | None = None
    settling: asyncio.Future[None] | None = None  # finish() runs exactly once
    pending: list[bytes] = []  # encoded, not yet written: one socket write per upstream read

    def flush() -> Awaitable[None] | None:
        if not pending:
            return None
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        return resp.write(data)

    observe, feed = live.observe, enc.feed
    try:
        # The first event goes out at once, with the headers: coalescing starts after it, so a
        # stream whose first read holds many events does not hold its first byte back for them.
        pending.extend(feed(live.start()))
        writing = flush()
        if writing is not None:
            await writing
        async with aclosing(live.rest) as events:
            if type(events) is Batched:  # a list of events per upstream read: one write per read
                for ev in events.take():
                    pending += feed(observe(ev))
                source = events.source
                while True:
                    try:
                        batch = await next_or_flush(source, flush)
                    except StopAsyncIteration:
                        break
                    for ev in batch:
                        pending += feed(observe(ev))
            else:
                while True:
                    try:
                        ev = await next_or_flush(events, flush)
                    except StopAsyncIteration:
                        break
                    frames = feed(observe(ev))
                    if frames:
                        pending.extend(frames)
        writing = flush()
        if writing is not None:
            await writing
        tail = b"".join(api.end(enc, live))
        # Recorded BEFORE the final event goes out (one short transaction; the content is already
        # delivered): a client that saw its stream end is never missing from the ledger, even if
        # this process is killed right after. Bounded, so a slow database cannot hold the end back.
        work = live.finish("ok")
        if after is not None and (save := after(enc)) is not None:
            work = _together(work, save)
        settling = gateway.settle_later(work)
        await asyncio.wait((settling,), timeout=gateway.settle_wait)
        await resp.write(tail)
    except GatewayError as e:  # the upstream failed mid-stream: tell the caller in-band
        status, error = "error", e
        with suppress(ConnectionError):
            await resp.write(b"".join([*pending, *enc.error(e)]))
    except ConnectionError:  # the client went away while we wrote
        if settling is None:
            gateway.settle_later(live.finish("cancelled"))
        return resp
    except asyncio.CancelledError:  # the client went away while we waited (handler cancelled)
        if settling is None:
            gateway.settle_later(live.finish("cancelled"))
        raise
    except Exception:  # a bug of ours: end the stream cleanly and still settle what was produced
        log.exception("stream %s failed", live.gen_id)
        status, error = "error", GatewayError("internal error")
        with suppress(ConnectionError):
            await resp.write(b"".join([*pending, *enc.error(error)]))
    if settling is None:
        gateway.settle_later(live.finish(status, error))
    if span is not None:
        span_served(gateway, span, live.meter, live.final_usage(), live.finish_reason)
    return resp


async def _keepalive(request: web.Request, resp: web.StreamResponse) -> None:
    """Commit the 200 and send SSE comments until stopped (load balancers cut silent streams)."""
    await resp.prepare(request)
    while True:
        await resp.write(KEEPALIVE)
        await asyncio.sleep(KEEPALIVE_EVERY)


async def _stop(timer: asyncio.TimerHandle, task: asyncio.Task[None] | None) -> None:
    timer.cancel()
    if task is not None and not task.done():
        task.cancel()
        with suppress(asyncio.CancelledError, ConnectionError):
            await task


def now() -> int:
    return int(time.time())

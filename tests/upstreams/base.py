"""Machinery shared by the emulated upstreams: lifecycle, request recording, the script queue and faults.

Subclasses add routes, auth/validation and the wire rendering (``render`` for JSON answers,
``plan_stream`` for SSE). Everything listens on 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

from .prompt_cache import CacheRejected, PromptCache
from .script import Fault, Item, Reply

HANG_MAX = 120.0  # a hanging answer gives up after this many seconds, whatever the client does
MAX_BODY = 64 * 1024 * 1024

Handler = Callable[[web.Request, "Received"], Awaitable[web.StreamResponse]]


class _ServerClosing(Exception):
    """Raised inside a handler when the server shuts down while the handler waits."""


@dataclass(eq=False)
class Received:
    """One request as the upstream saw it. Times are ``time.monotonic()`` seconds."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None when the body was empty or not JSON
    raw: bytes
    received_at: float
    item: Item | None = None  # the scripted item that answered it (generation requests only)
    chunks_sent: int = 0  # SSE events written so far
    completed: bool = False  # the whole response (including the terminal event) was handed to the socket
    disconnected: bool = False  # the client went away before the response finished
    disconnected_at: float | None = None
    aborted: bool = False  # the emulator itself cut/reset the connection (a Fault)
    finished_at: float | None = None
    _done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def api_key(self) -> str | None:
        """The credential sent: ``x-api-key``, else the token of ``Authorization: Bearer``."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None

    async def wait_done(self, seconds: float = 5.0) -> None:
        """Wait until the handler finished (answered, failed, or saw the client disconnect)."""
        await asyncio.wait_for(self._done.wait(), seconds)


@dataclass
class StreamPlan:
    """A fully rendered SSE answer: the events in order (terminal one last) and the fault variants."""

    events: list[bytes]
    error_event: bytes  # in-stream error (Fault.stream_error_after)
    broken_event: bytes  # an event whose data is not valid JSON (Fault.malformed == "json")


def sse(data: Any, event: str | None = None) -> bytes:
    """Frame one SSE event; ``data`` is JSON-encoded unless it is already a str."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def glue(first: bytes, second: bytes) -> bytes:
    """Two events without the blank line between them: one event whose data is two JSON documents."""
    return first.rstrip(b"\n") + b"\n" + second


class EmulatedUpstream:
    """Base class: an aiohttp server on 127.0.0.1 with a FIFO script of ``Reply``/``Fault`` items."""

    DEFAULT_KEY = "sk-upstream-test"

    def __init__(self, *, expected_key: str | None = DEFAULT_KEY, host: str = "127.0.0.1", port: int = 0):
        self.expected_key = expected_key
        self.host = host
        self.port = port
        self.requests: list[Received] = []
        self.default: Item = Reply()  # answers when the script is empty; a Fault makes every request fail
        self._queue: deque[Item] = deque()
        self._closing = asyncio.Event()
        self._released = asyncio.Event()
        self.held = asyncio.Event()  # set while a stream waits at its Fault.hold_before
        # Provider-side prompt caching (upstreams.prompt_cache): when set, it computes each served
        # reply's cache reads and writes from the request body; a rule it refuses is a 400.
        self.prompt_cache: PromptCache | None = None
        self._app = web.Application(client_max_size=MAX_BODY)
        self._runner: web.AppRunner | None = None

    # ----- script -------------------------------------------------------------------------------
    def script(self, *items: Item) -> None:
        """Queue answers for the next generation requests, one item per request (FIFO)."""
        self._queue.extend(items)

    def release(self) -> None:
        """Let a stream held at its ``Fault.hold_before`` go on."""
        self._released.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def next_item(self) -> Item:
        return self._queue.popleft() if self._queue else self.default

    def default_reply(self) -> Reply:
        """The reply for an item without one: the default, unless that is a Fault."""
        return self.default if isinstance(self.default, Reply) else Reply()

    # ----- lifecycle ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url

    async def start(self) -> Self:
        # unknown paths are recorded too (a wrong base URL shows up in ``requests``) and get a 404
        self.add_route("*", "/{tail:.*}", self._unknown_path)
        runner = web.AppRunner(self._app, handler_cancellation=True, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_for_requests(self, count: int, seconds: float = 5.0) -> list[Received]:
        """Wait until at least ``count`` requests arrived (TimeoutError after ``seconds``)."""
        deadline = time.monotonic() + seconds
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} requests, got {len(self.requests)}")
            await asyncio.sleep(0.005)
        return self.requests

    # ----- recording ----------------------------------------------------------------------------
    def add_route(self, method: str, path: str, handler: Handler) -> None:
        async def recorded(request: web.Request) -> web.StreamResponse:
            return await self._recorded(request, handler)

        self._app.router.add_route(method, path, recorded)

    async def _recorded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        rec = Received(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            raw=raw,
            received_at=time.monotonic(),
        )
        self.requests.append(rec)
        try:
            resp = await handler(request, rec)
            if isinstance(resp, web.Response) and not rec.aborted:
                rec.completed = True
            return resp
        except asyncio.CancelledError:
            if not self._closing.is_set():
                self._mark_disconnected(rec)
            raise
        except ConnectionError:
            self._mark_disconnected(rec)
            return web.Response(status=499)  # never delivered: the transport is gone
        except _ServerClosing:
            rec.aborted = True
            _drop(request, rst=False)
            return web.Response(status=503)
        finally:
            rec.finished_at = time.monotonic()
            rec._done.set()

    async def _unknown_path(self, request: web.Request, rec: Received) -> web.StreamResponse:
        return self.error_response(404, f"Unknown request URL: {request.method} {request.path}")

    @staticmethod
    def _mark_disconnected(rec: Received) -> None:
        rec.disconnected = True
        rec.disconnected_at = time.monotonic()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up (and abandon the request) when the server closes."""
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            return
        raise _ServerClosing

    # ----- provider hooks -----------------------------------------------------------------------
    def error_body(self, status: int, message: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def render(self, reply: Reply, rec: Received) -> dict[str, Any]:
        raise NotImplementedError

    def plan_stream(self, reply: Reply, fault: Fault, rec: Received) -> StreamPlan:
        raise NotImplementedError

    def response_headers(self) -> dict[str, str]:
        return {}

    def error_response(self, status: int, message: str | None = None, **extra: str) -> web.Response:
        headers = {**self.response_headers(), **extra}
        return web.json_response(self.error_body(status, message), status=status, headers=headers)

    # ----- generation ---------------------------------------------------------------------------
    async def generate(self, request: web.Request, rec: Received, *, stream: bool) -> web.StreamResponse:
        """Consume one scripted item and answer with it (faults applied)."""
        item = self.next_item()
        rec.item = item
        fault = item if isinstance(item, Fault) else Fault()
        reply = item if isinstance(item, Reply) else (fault.reply or self.default_reply())
        if fault.reset:
            rec.aborted = True
            _drop(request, rst=True)
            return web.Response()
        if fault.hang:
            await self._sleep(HANG_MAX)
            raise _ServerClosing
        await self._sleep(fault.delay_first_byte)
        headers = {**self.response_headers(), **fault.headers}
        if fault.status is not None:
            return self._fault_response(fault, headers)
        if self.prompt_cache is not None and isinstance(rec.body, dict):
            try:
                reply = self.prompt_cache.apply(reply, rec.body)
            except CacheRejected as e:
                return self.error_response(400, str(e))
        if stream:
            return await self._stream(request, rec, reply, fault, headers)
        payload = json.dumps(self.render(reply, rec)).encode()
        if fault.malformed is not None:
            payload = payload[: len(payload) // 2]
        return web.Response(body=payload, headers={"content-type": "application/json", **headers})

    def _fault_response(self, fault: Fault, headers: dict[str, str]) -> web.Response:
        assert fault.status is not None
        if fault.body is None:
            body: bytes = json.dumps(self.error_body(fault.status)).encode()
        elif isinstance(fault.body, str):
            body = fault.body.encode()
        else:
            body = json.dumps(fault.body).encode()
        lower = {k.lower() for k in headers}
        if "content-type" not in lower:
            headers = {"content-type": "application/json", **headers}
        return web.Response(status=fault.status, body=body, headers=headers)

    async def _stream(
        self, request: web.Request, rec: Received, reply: Reply, fault: Fault, headers: dict[str, str]
    ) -> web.StreamResponse:
        plan = self.plan_stream(reply, fault, rec)
        resp = web.StreamResponse(
            status=200,
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                **headers,
            },
        )
        await resp.prepare(request)
        events = plan.events
        for i, event in enumerate(events):
            if i and fault.drip_interval:
                await self._sleep(fault.drip_interval)
            if fault.cut_after_chunks is not None and i >= fault.cut_after_chunks:
                rec.aborted = True
                if fault.cut_clean:
                    await resp.write_eof()
                else:
                    _drop(request, rst=False)
                return resp
            if fault.stream_error_after is not None and i >= fault.stream_error_after:
                await self._write(resp, rec, plan.error_event)
                await resp.write_eof()
                return resp
            if fault.malformed is not None and i >= fault.malformed_after:
                bad = (
                    plan.broken_event if fault.malformed == "json" else glue(event, events[min(i + 1, len(events) - 1)])
                )
                await self._write(resp, rec, bad)
                await resp.write_eof()
                return resp
            if fault.hold_before is not None and fault.hold_before in event and not self._released.is_set():
                self.held.set()
                waits = [asyncio.ensure_future(self._released.wait()), asyncio.ensure_future(self._closing.wait())]
                await asyncio.wait(waits, timeout=HANG_MAX, return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
                self.held.clear()
                if self._closing.is_set():
                    raise _ServerClosing
            await self._write(resp, rec, event)
        await resp.write_eof()
        rec.completed = True
        return resp

    @staticmethod
    async def _write(resp: web.StreamResponse, rec: Received, data: bytes) -> None:
        await resp.write(data)
        rec.chunks_sent += 1


def _drop(request: web.Request, *, rst: bool) -> None:
    """Close the client connection now: ``rst`` sends a TCP reset, otherwise a FIN mid-body."""
    transport = request.transport
    if transport is None:
        return
    if rst:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()

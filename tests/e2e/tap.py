"""Two small 127.0.0.1 helpers for client acceptance tests.

- ``GatewayTap``: a transparent reverse proxy in front of the gateway that records every exchange
  (method, path, query, selected headers, status, and the body of non-2xx answers), streaming answers
  through unbuffered. It shows exactly which paths a client hit and what the gateway answered, without
  touching the gateway's code.
- ``EgressTrap``: an HTTP(S) proxy that refuses everything and records what it was asked for. Point the
  client's HTTP(S)_PROXY at it (NO_PROXY=127.0.0.1): any request to a non-local host lands here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
KEPT_HEADERS = ("anthropic-beta", "anthropic-version", "user-agent", "x-app", "x-claude-code-session-id")
MAX_BODY = 64 * 1024 * 1024
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=180, sock_connect=5)


@dataclass
class Exchange:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # KEPT_HEADERS only, lower-cased
    request_body: bytes
    status: int | None = None
    content_type: str = ""
    error_body: str | None = None  # the answer's body when the status is not 2xx (first 4 kB)
    failure: str | None = None  # the tap could not reach the gateway
    generation_id: str | None = None  # the answer's X-Generation-Id
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def line(self) -> str:
        q = f"?{self.query}" if self.query else ""
        tail = f" body={self.error_body!r}" if self.error_body else ""
        tail += f" failure={self.failure}" if self.failure else ""
        return f"{self.method} {self.path}{q} -> {self.status}{tail}"


class GatewayTap:
    def __init__(self, target: str, host: str = "127.0.0.1"):
        self.target = target.rstrip("/")
        self.host = host
        self.port = 0
        self.exchanges: list[Exchange] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._session = aiohttp.ClientSession(timeout=UPSTREAM_TIMEOUT, auto_decompress=False)
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self._runner = runner
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def summary(self) -> str:
        return "\n".join(e.line() for e in self.exchanges) or "(no requests)"

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        ex = Exchange(
            method=request.method,
            path=request.path,
            query=request.query_string,
            headers={k: request.headers[k] for k in KEPT_HEADERS if k in request.headers},
            request_body=body,
        )
        self.exchanges.append(ex)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        assert self._session is not None
        try:
            async with self._session.request(
                request.method,
                self.target + request.path_qs,
                headers=headers,
                data=body if body else None,
                allow_redirects=False,
            ) as up:
                ex.status = up.status
                ex.content_type = up.headers.get("content-type", "")
                ex.generation_id = up.headers.get("x-generation-id")
                out_headers = {k: v for k, v in up.headers.items() if k.lower() not in HOP_BY_HOP}
                if not ex.ok or request.method == "HEAD":
                    data = await up.read()
                    if not ex.ok:
                        ex.error_body = data[:4096].decode(errors="replace")
                    return web.Response(status=up.status, body=data or None, headers=out_headers)
                resp = web.StreamResponse(status=up.status, headers=out_headers)
                await resp.prepare(request)
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
        except (aiohttp.ClientError, TimeoutError) as exc:
            ex.failure = f"{type(exc).__name__}: {exc}"
            return web.Response(status=502, text=f"tap: gateway unreachable: {exc}")
        finally:
            ex.finished = time.monotonic()


@dataclass
class Attempt:
    first_line: str  # e.g. "CONNECT api.anthropic.com:443 HTTP/1.1"
    at: float


class EgressTrap:
    """A proxy that answers every request ``403`` and records its request line."""

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.port = 0
        self.attempts: list[Attempt] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            self.attempts.append(Attempt(line.decode(errors="replace").strip(), time.monotonic()))
            writer.write(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await asyncio.wait_for(writer.drain(), 5)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 5)

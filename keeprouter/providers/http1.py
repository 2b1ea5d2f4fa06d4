"""The upstream HTTP/1.1 client: pooled keep-alive connections on asyncio protocols, parsed by httptools.

    client = Http1Client(connect_timeout=10.0)      # one per Transport, made inside the running loop
    resp = await client.send("POST", url, body, headers)   # once the status and headers arrived
    chunk = await resp.readany()                    # b"" at the body's end
    await resp.aclose()                             # the connection back to the pool, or closed

Why not aiohttp's client, which KeepRouter's other outbound calls (sign-in, catalogue import) use:
on the request path it cost about 85 us of CPU per small request at 8 in flight, this about 12 us
(the same local server, one process). A gateway's own overhead is what it sells, and this was the
largest single part of it. The HTTP parsing itself is llhttp (Node's parser) through httptools.

What it does: TLS with the system's default verification; addresses raced (happy eyeballs, by
aiohappyeyeballs, as aiohttp does); a pool per origin with an idle timeout
and a bound on open connections; bodies framed by length, chunked or ended by the close; gzip and
deflate bodies; one retry of a request whose reused connection the server had already closed (no
byte of the answer read: the request never reached it); back-pressure on a body its reader leaves
unread. What it leaves out, because no upstream call needs it: proxies, cookies, redirects, HTTP/2.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import zlib
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohappyeyeballs
import httptools
from multidict import CIMultiDict, CIMultiDictProxy

_HIGH_WATER = 256 * 1024  # unread body bytes at which the socket stops being read
_MAX_HEAD = 256 * 1024  # an answer's status line and headers, at most
_TARGETS_MAX = 4096  # a safety bound on the parsed-URL cache: a deployment's endpoints use far fewer
_NO_BODY = frozenset((204, 304))


class HttpError(Exception):
    """The exchange failed below HTTP: no connection, a connection cut, an answer that is not HTTP."""


class ConnectFailed(HttpError):
    """No connection could be opened (refused, unresolvable, TLS refused)."""


class ConnectTimeout(ConnectFailed):
    """Opening the connection took longer than the connect timeout."""


class Disconnected(HttpError):
    """The connection ended or broke before the answer did."""


_ssl_context: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    global _ssl_context
    if _ssl_context is None:  # loading the system's CAs takes milliseconds: once per process
        _ssl_context = ssl.create_default_context()
    return _ssl_context


# url -> ((scheme, host, port), the request target, the Host header); adapters build a few URLs each.
_TARGETS: dict[str, tuple[tuple[str, str, int], str, str]] = {}


def _target(url: str) -> tuple[tuple[str, str, int], str, str]:
    found = _TARGETS.get(url)
    if found is None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectFailed(f"not an http(s) URL: {url!r}")
        default = 443 if parts.scheme == "https" else 80
        port = parts.port or default
        host = parts.hostname
        # Sent exactly as built: adapters percent-encode their paths, and a signature covers them.
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        shown = f"[{host}]" if ":" in host else host
        if len(_TARGETS) >= _TARGETS_MAX:
            _TARGETS.clear()
        found = _TARGETS[url] = ((parts.scheme, host, port), target, shown if port == default else f"{shown}:{port}")
    return found


class Http1Response:
    """One answer: `status` and `headers` are there once `Http1Client.send` returns; the body is
    read with `read` or `readany`. `aclose()` gives the connection back (or closes it)."""

    __slots__ = (
        "_chunks", "_conn", "_decoder", "_done", "_error", "_fed", "_finish", "_loop", "_size", "_started",
        "_until_close", "_waiter", "headers", "status",
    )  # fmt: skip

    def __init__(self, conn: _Connection) -> None:
        self._conn: _Connection | None = conn
        self._loop = conn.loop
        self._started: asyncio.Future[None] = conn.loop.create_future()
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._done = False  # the whole body arrived
        self._error: HttpError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._decoder: Any = None  # a zlib decompressor for a compressed body
        self._fed = False  # the decompressor got bytes (an empty body has no compressed stream)
        self._until_close = False  # the body ends when the connection does
        self._finish = False
        self.status = 0
        self.headers: CIMultiDictProxy[str] = _EMPTY

    # ---- the reader's side ----
    async def readany(self) -> bytes:
        """All body bytes that arrived and were not read yet, waiting for some; b"" at the end."""
        if not self._chunks:
            if self._done:
                return b""
            if self._error is not None:
                raise self._error
            self._waiter = waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
            if not self._chunks:
                if self._error is not None:
                    raise self._error
                return b""
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        if self._size >= _HIGH_WATER and self._conn is not None and self._conn.transport is not None:
            self._conn.transport.resume_reading()  # paused by _feed
        self._size = 0
        return data

    async def read(self, limit: int = -1) -> bytes:
        """The body, or its first `limit` bytes (then the response is only fit to be closed)."""
        parts: list[bytes] = []
        got = 0
        while limit < 0 or got < limit:
            chunk = await self.readany()
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        return data if limit < 0 or len(data) <= limit else data[:limit]

    def finish_in_background(self) -> None:
        self._finish = True

    async def aclose(self) -> None:
        """Release the connection: to the pool if the body ended (or, after `finish_in_background`,
        once it ends, within _DRAIN_SECONDS), else closed: an unread body is how a stream stops."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done:
            conn.pool.release(conn)
        elif self._finish and self._error is None:
            conn.drain()
        else:
            conn.abort()

    # ---- the connection's side (called from its protocol callbacks) ----
    def _feed(self, data: bytes) -> None:
        if self._conn is None:  # released while its tail is drained: the tail is dropped
            return
        if self._decoder is not None:
            self._fed = True
            try:
                data = self._decoder.decompress(data)
            except zlib.error as e:
                self._fail(Disconnected(f"invalid compressed body: {e}"))
                return
            if not data:
                return
        self._chunks.append(data)
        self._size += len(data)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._size >= _HIGH_WATER and self._conn is not None and self._conn.transport is not None:
            self._conn.transport.pause_reading()

    def _end(self) -> None:
        if self._error is not None:  # a body that failed (bad compressed bytes) never ends well
            return
        decoder = self._decoder
        if decoder is not None:
            rest = decoder.flush()
            if rest:
                self._chunks.append(rest)
            if self._fed and not decoder.eof:
                self._fail(Disconnected("the compressed body ended before its end"))
                return
        self._done = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: HttpError) -> None:
        if self._done or self._error is not None:
            return
        self._error = error
        if not self._started.done():
            self._started.set_exception(error)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


_EMPTY: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries one exchange at a time (`resp`)."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.loop: asyncio.AbstractEventLoop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.resp: Http1Response | None = None
        self.reused = False  # it carried an exchange before this one
        self.idle_since = 0.0
        self.received = False  # a byte of the current answer arrived
        self._head: list[tuple[str, str]] = []
        self._head_bytes = 0
        self._interim = False  # parsing a 1xx answer, which a final one follows
        self._keep = False
        self._drain_timer: asyncio.TimerHandle | None = None

    # ---- asyncio.Protocol ----
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.resp is None:  # bytes nobody asked for, on an idle connection
            self.abort()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self.fail(Disconnected(f"invalid HTTP answer: {e}"))
            self.abort()

    def eof_received(self) -> bool:
        return False  # close our side too: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.pool.lost(self)
        resp = self.resp
        if resp is not None and not resp._done:
            if resp._until_close and resp._started.done() and exc is None:
                resp._end()  # a body without length or chunks ends with the connection
            else:
                resp._fail(Disconnected("the upstream closed the connection" + (f": {exc}" if exc else "")))

    # ---- httptools callbacks ----
    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > _MAX_HEAD:
            raise httptools.HttpParserError("the answer's headers are too large")
        self._head.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        head, self._head, self._head_bytes = self._head, [], 0
        if 100 <= status < 200:
            self._interim = True  # 100 Continue, 103 Early Hints: the final answer follows
            return
        resp = self.resp
        if resp is None:
            return
        headers = CIMultiDict(head)
        resp.status = status
        resp.headers = CIMultiDictProxy(headers)
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            resp._decoder = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)  # zlib or gzip header
        if status not in _NO_BODY and "content-length" not in headers and "transfer-encoding" not in headers:
            resp._until_close = True
        resp._started.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.resp is not None:
            self.resp._feed(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._keep = self.parser.should_keep_alive()
        resp = self.resp
        if resp is None:
            return
        resp._end()
        if resp._conn is None and resp._finish:  # closed while draining: now it can be reused
            self.finish_drain()

    # ---- the pool's side ----
    def start(self, resp: Http1Response, data: bytes) -> None:
        self.resp = resp
        self.received = False
        self._keep = False
        assert self.transport is not None
        self.transport.write(data)

    def reusable(self) -> bool:
        return self._keep and self.transport is not None and not self.transport.is_closing()

    def fail(self, error: HttpError) -> None:
        if self.resp is not None:
            self.resp._fail(error)

    def drain(self) -> None:
        """The reader stopped after the stream's end event: read the rest, then back to the pool."""
        resp = self.resp
        if resp is None or self.transport is None:
            return
        resp._chunks.clear()  # _feed drops what comes from now on
        resp._size = 0
        self.transport.resume_reading()
        self._drain_timer = self.loop.call_later(_DRAIN_SECONDS, self.abort)

    def finish_drain(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        self.pool.release(self)

    def abort(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        self.resp = None
        if self.transport is not None:
            self.transport.abort()  # connection_lost follows, which tells the pool


# A stream's reader stops at its end event (`[DONE]`, `message_stop`), often a read before the
# body's own end (the chunked terminator comes in the next TCP segment). Closing the connection
# then would make the next request pay a new one (a TLS handshake before its first token), so after
# `finish_in_background` the tail is read and dropped for at most this long, and the connection goes
# back to the pool once the body ended. A response closed otherwise (a client gone) is hung up at
# once: the upstream bills what it produces.
_DRAIN_SECONDS = 1.0


class _Pool:
    """The connections to one origin: idle ones reused newest first, at most `limit` open."""

    def __init__(self, client: Http1Client, origin: tuple[str, str, int]) -> None:
        self.client = client
        self.loop: asyncio.AbstractEventLoop = client.loop
        self.scheme, self.host, self.port = origin
        self.idle: list[_Connection] = []
        self.open = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False  # the client closed: connections in use are closed when released
        self._sweep: asyncio.TimerHandle | None = None

    async def acquire(self) -> _Connection:
        idle = self.idle
        while True:
            now = self.loop.time()
            while idle:
                conn = idle.pop()
                if conn.transport is not None and now - conn.idle_since < self.client.keepalive:
                    conn.reused = True
                    return conn
                conn.abort()
            if self.open < self.client.limit:
                break
            waiter = self.loop.create_future()  # woken when a connection is released or lost
            self.waiters.append(waiter)
            try:
                await waiter
            except BaseException:  # woken, then cancelled before it ran: the turn passes on
                if waiter.done() and not waiter.cancelled():
                    self._wake()
                raise
            finally:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)
        self.open += 1
        try:
            return await self._connect()
        except BaseException:
            self.open -= 1
            self._wake()
            raise

    async def _connect(self) -> _Connection:
        tls = self.scheme == "https"
        try:
            async with asyncio.timeout(self.client.connect_timeout):
                sock = await _open_socket(self.loop, self.host, self.port)
                try:
                    _, conn = await self.loop.create_connection(
                        lambda: _Connection(self), sock=sock,
                        ssl=_tls() if tls else None, server_hostname=self.host if tls else None,
                    )  # fmt: skip
                except BaseException:
                    sock.close()
                    raise
        except TimeoutError:
            raise ConnectTimeout(f"connecting to {self.host}:{self.port} timed out") from None
        except (OSError, ssl.SSLError) as e:
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {e}") from None
        return conn

    def release(self, conn: _Connection) -> None:
        """`conn`'s exchange is over: keep it for the next if it can carry one, else close it."""
        conn.resp = None
        if not conn.reusable() or self.closed:
            conn.abort()
            return
        conn.transport.resume_reading()  # type: ignore[union-attr]  # paused by an unread body's _feed
        conn.idle_since = self.loop.time()
        self.idle.append(conn)
        if self._sweep is None:
            self._sweep = self.loop.call_later(self.client.keepalive, self._expire)
        self._wake()

    def lost(self, conn: _Connection) -> None:
        self.open -= 1  # asyncio calls connection_lost once per connection
        if conn in self.idle:
            self.idle.remove(conn)
        self._wake()

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _expire(self) -> None:
        """Close the connections idle past the keep-alive time (servers drop theirs about then)."""
        self._sweep = None
        now = self.loop.time()
        for conn in [c for c in self.idle if now - c.idle_since >= self.client.keepalive]:
            conn.abort()  # connection_lost takes it out of `idle`
        if self.idle:
            self._sweep = self.loop.call_later(self.client.keepalive, self._expire)

    def close(self) -> None:
        self.closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for conn in list(self.idle):
            conn.abort()


async def _open_socket(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    """A connected socket to `host`, its addresses raced as RFC 8305 says (a host whose IPv6 route is
    broken still answers over IPv4 after 250 ms; uvloop's own connect tries one address at a time)."""
    try:  # an address already (a local upstream's 127.0.0.1): no resolver thread to ask
        ip = ipaddress.ip_address(host)
    except ValueError:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    else:
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        infos = [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]  # type: ignore[list-item]
    if not infos:
        raise OSError(f"{host} has no address")
    return await aiohappyeyeballs.start_connection(infos, happy_eyeballs_delay=0.25, interleave=1)


class Http1Client:
    """Pools of connections, one per origin. Create inside the running loop; `close()` at shutdown."""

    def __init__(self, *, connect_timeout: float | None = None, limit: int = 1000, keepalive: float = 60.0) -> None:
        self.loop = asyncio.get_running_loop()
        self.connect_timeout = connect_timeout
        self.limit = limit
        self.keepalive = keepalive
        self._pools: dict[tuple[str, str, int], _Pool] = {}

    async def send(self, method: str, url: str, body: bytes, headers: Mapping[str, str]) -> Http1Response:
        """Send one request; returns once the answer's status and headers arrived. Raises HttpError."""
        origin, target, host = _target(url)
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = _Pool(self, origin)
        data = _head(method, target, host, body, headers)
        while True:
            conn = await pool.acquire()
            resp = Http1Response(conn)
            try:
                conn.start(resp, data)
                await resp._started
            except Disconnected:
                # A reused connection the server closed while idle (no byte of an answer came):
                # the request never reached it, so sending it again on a new one is safe.
                if conn.reused and not conn.received:
                    conn.abort()
                    continue
                conn.abort()
                raise
            except BaseException:  # a timeout or a cancel: the answer will never be read
                conn.abort()
                raise
            return resp

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def _head(method: str, target: str, host: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    """The request's bytes: head and body in one buffer, so one write sends the request."""
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    given = {k.lower() for k in headers}
    if "host" not in given:
        lines.append(f"Host: {host}\r\n")
    if "accept-encoding" not in given:
        lines.append("Accept-Encoding: gzip, deflate\r\n")
    lines.append(f"Content-Length: {len(body)}\r\n")
    for name, value in headers.items():
        if name.lower() not in ("content-length", "transfer-encoding"):
            lines.append(f"{name}: {value}\r\n")
    head = "".join(lines)
    if head.count("\n") != len(lines) or head.count("\r") != len(lines):
        raise HttpError("a header name or value holds a line break")  # never a smuggled header
    return head.encode() + b"\r\n" + body

"""`http1.Http1Client` against real loopback servers: each test scripts the exact bytes its server
answers, and checks the bytes the client put on the wire and how many connections it opened."""

from __future__ import annotations

import asyncio
import gzip
import socket
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import pytest
from support.fake_transport import provider

from keeprouter.config import Timeouts
from keeprouter.errors import UpstreamError
from keeprouter.providers import http1
from keeprouter.providers.framing import Frame
from keeprouter.providers.http1 import (
    ConnectFailed,
    ConnectTimeout,
    Disconnected,
    Http1Client,
    Http1Response,
    HttpError,
)
from keeprouter.providers.transport import Transport, end_stream

WAIT = 0.5  # the bound of every wait: a test that hangs fails fast instead
RECV = 256 * 1024  # asyncio's selector transports read at most this much per data_received


# ---- the scripted server -----------------------------------------------------------------------


class Peer:
    """One accepted connection, as the server sees it: the raw requests it read, in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.requests: list[bytes] = []
        self.gone = asyncio.Event()  # the client closed (or reset) the connection

    async def request(self) -> bytes | None:
        """The next whole request (head and Content-Length body), or None once the client is gone."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            raw = head + await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.gone.set()
            return None
        self.requests.append(raw)
        return raw

    async def until_gone(self) -> None:
        """Read (and drop) until the client closes."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        self.gone.set()

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    def close(self) -> None:
        self.writer.close()


Handler = Callable[[Peer], Coroutine[Any, Any, None]]


class Server:
    """A raw HTTP server on 127.0.0.1: `handler` runs once per accepted connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.peers: list[Peer] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(reader, writer)
        self.peers.append(peer)
        self.tasks.append(asyncio.create_task(self.handler(peer)))

    @property
    def accepts(self) -> int:
        return len(self.peers)

    @property
    def requests(self) -> list[bytes]:
        return [r for p in self.peers for r in p.requests]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for peer in self.peers:
            peer.close()
        for task in self.tasks:
            task.cancel()
        results = await asyncio.gather(*self.tasks, return_exceptions=True)
        await self._server.wait_closed()
        errors = [r for r in results if isinstance(r, Exception)]
        assert not errors, f"the server's script failed: {errors!r}"


@dataclass(frozen=True, slots=True)
class Reply:
    """What `replies` does with one request: write `data`, then close the connection if `close`."""

    data: bytes = b""
    close: bool = False


CLOSE = Reply(close=True)  # close the connection without answering


def replies(*script: bytes | Reply) -> Handler:
    """A handler giving each request, on whichever connection it comes, the script's next reply."""
    left = [s if isinstance(s, Reply) else Reply(s) for s in script]

    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            reply = left.pop(0)
            peer.write(reply.data)
            if reply.close:
                await peer.writer.drain()
                peer.close()
                return

    return handler


def answer(
    body: bytes = b"",
    *,
    status: bytes = b"200 OK",
    headers: tuple[tuple[str, str], ...] = (),
    length: bool = True,
) -> bytes:
    """An HTTP/1.1 answer's bytes: `Content-Length` framing unless `length` is false."""
    lines = [b"HTTP/1.1 " + status]
    if length:
        lines.append(b"Content-Length: %d" % len(body))
    lines += [f"{k}: {v}".encode() for k, v in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def head_of(raw: bytes) -> list[bytes]:
    """A raw request's head lines (request line first)."""
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Server]]]:
    servers: list[Server] = []

    async def start(handler: Handler) -> Server:
        server = Server(handler)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[Http1Client]:
    c = Http1Client(connect_timeout=WAIT)
    yield c
    await c.close()


async def until(condition: Callable[[], bool]) -> None:
    """Wait (bounded) until `condition()` holds."""
    async with asyncio.timeout(WAIT):
        while True:  # the state polled is the client's own, which sets no event
            if condition():
                return
            await asyncio.sleep(0.001)


async def fetch(client: Http1Client, url: str, body: bytes = b"", headers: Any = None) -> tuple[Http1Response, bytes]:
    """One whole exchange: the answer (closed) and its body."""
    async with asyncio.timeout(WAIT):
        resp = await client.send("POST", url, body, headers or {})
        try:
            data = await resp.read()
        finally:
            await resp.aclose()
    return resp, data


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port bound but not listening: connecting to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


ServeFixture = Callable[[Handler], Awaitable[Server]]


# ---- 1. the request on the wire, a Content-Length answer ------------------------------------


async def test_a_content_length_answer_and_the_request_on_the_wire(serve: ServeFixture, client: Http1Client) -> None:
    server = await serve(replies(answer(b'{"ok":true}', headers=(("Content-Type", "application/json"), ("X-A", "1")))))
    url = server.url("/v1/models/a%3Ab:generate?alt=sse")
    resp, data = await fetch(client, url, b'{"q":1}', {"Authorization": "Bearer k", "X-Trace": "t-1"})

    assert resp.status == 200
    assert resp.headers["content-type"] == resp.headers["Content-Type"] == "application/json"
    assert resp.headers["x-a"] == "1"
    assert data == b'{"ok":true}'
    [raw] = server.requests
    lines = head_of(raw)
    assert lines[0] == b"POST /v1/models/a%3Ab:generate?alt=sse HTTP/1.1"  # sent exactly as given
    assert f"Host: 127.0.0.1:{server.port}".encode() in lines
    assert b"Content-Length: 7" in lines
    assert b"Authorization: Bearer k" in lines and b"X-Trace: t-1" in lines
    assert b"Accept-Encoding: gzip, deflate" in lines
    assert raw.endswith(b'\r\n\r\n{"q":1}')


async def test_a_caller_s_host_and_accept_encoding_are_not_duplicated(serve: ServeFixture, client: Http1Client) -> None:
    server = await serve(replies(answer(b"x")))
    headers = {
        "host": "upstream.example",
        "Accept-Encoding": "identity",
        "Content-Length": "999",  # the client's own length wins: the body is what it sends
        "Transfer-Encoding": "chunked",
    }
    await fetch(client, server.url("/"), b"abc", headers)
    lines = [line.lower() for line in head_of(server.requests[0])]
    assert [line for line in lines if line.startswith(b"host:")] == [b"host: upstream.example"]
    assert [line for line in lines if line.startswith(b"accept-encoding:")] == [b"accept-encoding: identity"]
    assert [line for line in lines if line.startswith(b"content-length:")] == [b"content-length: 3"]
    assert not [line for line in lines if line.startswith(b"transfer-encoding:")]
    assert lines[0] == b"post / http/1.1"  # an empty path is "/"


async def test_the_host_header_of_a_default_port_has_no_port(
    serve: ServeFixture, client: Http1Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await serve(replies(answer(b"x")))
    dial = http1._open_socket

    async def to_the_server(loop: asyncio.AbstractEventLoop, host: str, port: int) -> Any:
        assert (host, port) == ("127.0.0.1", 80)
        return await dial(loop, host, server.port)  # port 80 is not ours to listen on

    monkeypatch.setattr(http1, "_open_socket", to_the_server)
    _, data = await fetch(client, "http://127.0.0.1:80/p?q=1")
    assert data == b"x"
    assert head_of(server.requests[0])[:2] == [b"POST /p?q=1 HTTP/1.1", b"Host: 127.0.0.1"]


async def test_an_answer_without_body_is_empty_and_keeps_the_connection(
    serve: ServeFixture, client: Http1Client
) -> None:
    server = await serve(replies(b"HTTP/1.1 204 No Content\r\n\r\n", answer(b"after")))
    resp, data = await fetch(client, server.url())
    assert (resp.status, data) == (204, b"")
    assert (await fetch(client, server.url()))[1] == b"after"
    assert server.accepts == 1


# ---- 2. a chunked answer, read as it arrives ----------------------------------------------


async def test_a_chunked_answer_is_read_chunk_by_chunk_as_it_arrives(serve: ServeFixture, client: Http1Client) -> None:
    go_on = asyncio.Event()

    async def handler(peer: Peer) -> None:
        await peer.request()
        peer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"3\r\nfir", b"\r\n2\r\nst\r\n", b"6\r\nsec", b"ond\r\n"):
            await asyncio.sleep(0.01)
            peer.write(piece)
        await go_on.wait()  # the last chunk only once the client read the first ones
        for piece in (b"5\r\nthird\r\n", b"0\r\n", b"\r\n"):
            await asyncio.sleep(0.01)
            peer.write(piece)
        await peer.until_gone()

    server = await serve(handler)
    async with asyncio.timeout(WAIT):
        resp = await client.send("POST", server.url(), b"", {})
        early: list[bytes] = []
        while b"".join(early) != b"firstsecond":
            chunk = await resp.readany()
            assert chunk, "the body ended early"
            early.append(chunk)
        assert early == [b"fir", b"st", b"sec", b"ond"]  # each TCP write is its own read
        go_on.set()
        late = [await resp.readany(), await resp.readany()]
        assert late == [b"third", b""]
        assert await resp.readany() == b""  # and stays ended
        await resp.aclose()
    assert resp.status == 200 and resp.headers["transfer-encoding"] == "chunked"


# ---- 3. a body ended by the close; a body cut short ----------------------------------------


async def test_a_close_delimited_body_is_read_whole(serve: ServeFixture, client: Http1Client) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        peer.write(answer(b"part one, ", length=False))
        await asyncio.sleep(0.01)
        peer.write(b"part two")
        await peer.writer.drain()
        peer.close()

    server = await serve(handler)
    resp, data = await fetch(client, server.url())
    assert (resp.status, data) == (200, b"part one, part two")
    await fetch_then_count(client, server, expect_accepts=2)  # that connection is not reused


async def fetch_then_count(client: Http1Client, server: Server, *, expect_accepts: int) -> None:
    """After the exchanges so far, one more whole exchange takes the server to `expect_accepts`."""
    server.handler = replies(answer(b"next"))
    assert (await fetch(client, server.url()))[1] == b"next"
    assert server.accepts == expect_accepts


async def test_a_content_length_body_cut_short_raises_disconnected(serve: ServeFixture, client: Http1Client) -> None:
    server = await serve(replies(Reply(answer(b"0123456789")[:-4], close=True)))
    async with asyncio.timeout(WAIT):
        resp = await client.send("POST", server.url(), b"", {})
        assert resp.status == 200
        with pytest.raises(Disconnected, match="closed the connection"):
            await resp.read()
        await resp.aclose()


# ---- 4. keep-alive ------------------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection(serve: ServeFixture, client: Http1Client) -> None:
    server = await serve(replies(answer(b"one"), answer(b"two"), answer(b"three")))
    assert [(await fetch(client, server.url(f"/{i}")))[1] for i in range(3)] == [b"one", b"two", b"three"]
    assert server.accepts == 1
    assert [head_of(r)[0] for r in server.peers[0].requests] == [b"POST /%d HTTP/1.1" % i for i in range(3)]


async def test_an_answer_with_connection_close_is_not_reused(serve: ServeFixture, client: Http1Client) -> None:
    server = await serve(replies(answer(b"one", headers=(("Connection", "close"),)), answer(b"two")))
    assert (await fetch(client, server.url()))[1] == b"one"
    await until(lambda: server.peers[0].gone.is_set())  # the client closed it, the server did not
    assert (await fetch(client, server.url()))[1] == b"two"
    assert server.accepts == 2
    assert [len(p.requests) for p in server.peers] == [1, 1]


async def test_an_http_1_0_answer_is_not_reused(serve: ServeFixture, client: Http1Client) -> None:
    server = await serve(replies(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\none", answer(b"two")))
    assert (await fetch(client, server.url()))[1] == b"one"
    assert (await fetch(client, server.url()))[1] == b"two"
    assert server.accepts == 2


# ---- 5. a stale pooled connection ------------------------------------------------------------


def spy_on_starts(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each request written, in order: whether its connection had carried one before."""
    starts: list[bool] = []
    start = http1._Connection.start

    def spy(conn: http1._Connection, resp: Http1Response, data: bytes) -> None:
        starts.append(conn.reused)
        start(conn, resp, data)

    monkeypatch.setattr(http1._Connection, "start", spy)
    return starts


async def test_a_reused_connection_closed_unanswered_is_retried_once_on_a_new_one(
    serve: ServeFixture, client: Http1Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's idle close crosses request 2: it reads the request and hangs up without a byte.
    server = await serve(replies(answer(b"one"), CLOSE, answer(b"two")))
    starts = spy_on_starts(monkeypatch)
    assert (await fetch(client, server.url("/1")))[1] == b"one"
    resp, data = await fetch(client, server.url("/2"))
    assert (resp.status, data) == (200, b"two")
    assert starts == [False, True, False]  # request 2 on the pooled connection, then once on a new one
    assert server.accepts == 2
    assert [head_of(r)[0] for r in server.peers[1].requests] == [b"POST /2 HTTP/1.1"]  # exactly once


async def test_a_pooled_connection_closed_by_the_server_unnoticed_is_retried(
    serve: ServeFixture, client: Http1Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await serve(replies(answer(b"one"), answer(b"two")))
    starts = spy_on_starts(monkeypatch)
    assert (await fetch(client, server.url("/1")))[1] == b"one"
    [pool] = client._pools.values()
    assert len(pool.idle) == 1
    server.peers[0].close()  # the server drops the idle connection; the client has not seen it yet
    _, data = await fetch(client, server.url("/2"))
    assert data == b"two"
    assert starts == [False, True, False]
    assert [len(p.requests) for p in server.peers] == [1, 1]  # request 2 reached the server once


async def test_a_pooled_connection_the_server_closed_is_dropped_before_reuse(
    serve: ServeFixture, client: Http1Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await serve(replies(Reply(answer(b"one"), close=True), answer(b"two")))
    starts = spy_on_starts(monkeypatch)
    assert (await fetch(client, server.url()))[1] == b"one"
    [pool] = client._pools.values()
    await until(lambda: not pool.idle)  # the close was seen: the connection left the pool
    assert (await fetch(client, server.url()))[1] == b"two"
    assert starts == [False, False]  # no retry needed
    assert server.accepts == 2 and pool.open == 1


async def test_a_fresh_connection_closed_unanswered_is_disconnected_without_retry(
    serve: ServeFixture, client: Http1Client
) -> None:
    server = await serve(replies(CLOSE, CLOSE, CLOSE))
    async with asyncio.timeout(WAIT):
        with pytest.raises(Disconnected):
            await client.send("POST", server.url(), b"", {})
    assert server.accepts == 1
    assert len(server.requests) == 1


async def test_a_reused_connection_that_answered_partly_is_not_retried(
    serve: ServeFixture, client: Http1Client
) -> None:
    server = await serve(replies(answer(b"one"), Reply(b"HTTP/1.1 200 O", close=True), answer(b"never")))
    assert (await fetch(client, server.url()))[1] == b"one"
    async with asyncio.timeout(WAIT):
        with pytest.raises(Disconnected):
            await client.send("POST", server.url(), b"", {})  # the request may have been acted on
    assert server.accepts == 1


# ---- 6. compressed bodies ------------------------------------------------------------------------

BIG_TEXT = b"".join(b"line %d of a compressible body\n" % i for i in range(2000))


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress), ("GZip", gzip.compress)],
)
async def test_a_compressed_body_is_decoded(
    serve: ServeFixture, client: Http1Client, encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    packed = compress(BIG_TEXT)
    assert len(packed) < len(BIG_TEXT) // 4
    server = await serve(replies(answer(packed, headers=(("Content-Encoding", encoding),))))
    resp, data = await fetch(client, server.url())
    assert data == BIG_TEXT
    assert resp.headers["content-encoding"] == encoding


async def test_a_gzip_body_in_many_chunks_is_decoded_as_it_arrives(serve: ServeFixture, client: Http1Client) -> None:
    packed = gzip.compress(BIG_TEXT)

    async def handler(peer: Peer) -> None:
        await peer.request()
        peer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(packed), 97):
            piece = packed[i : i + 97]
            peer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await asyncio.sleep(0.001)
        peer.write(b"0\r\n\r\n")
        await peer.until_gone()

    server = await serve(handler)
    async with asyncio.timeout(WAIT):
        resp = await client.send("POST", server.url(), b"", {})
        reads = []
        while chunk := await resp.readany():
            reads.append(chunk)
        await resp.aclose()
    assert b"".join(reads) == BIG_TEXT
    assert len(reads) > 1


async def test_an_invalid_gzip_body_arriving_while_read_is_disconnected(
    serve: ServeFixture, client: Http1Client
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        peer.write(answer(b"", headers=(("Content-Encoding", "gzip"), ("Content-Length", "23")), length=False))
        await asyncio.sleep(0.02)  # the reader waits in readany when the bad bytes come
        peer.write(b"this is not gzip at all")
        await peer.until_gone()

    server = await serve(handler)
    async with asyncio.timeout(WAIT):
        resp = await client.send("POST", server.url(), b"", {})
        with pytest.raises(Disconnected, match="invalid compressed body"):
            await resp.read()
        await resp.aclose()


async def test_an_invalid_gzip_body_that_arrived_before_the_read_is_disconnected(
    serve: ServeFixture, client: Http1Client
) -> None:
    server = await serve(replies(answer(b"this is not gzip at all", headers=(("Content-Encoding", "gzip"),))))
    async with asyncio.timeout(WAIT):
        resp = await client.send("POST", server.url(), b"", {})
        await until(lambda: resp._done or resp._error is not None)
        try:
            with pytest.raises(Disconnected, match="invalid compressed body"):
                await resp.read()
        finally:
            await resp.aclose()


async def test_an_identity_body_is_not_decoded(serve: ServeFixture, client: Http1Client) -> None:
    packed = gzip.compress(b"raw")
    server = await serve(replies(answer(packed, headers=(("Content-Type", "application/gzip"),))))
    assert (await fetch(client, server.url()))[1] == packed


# ---- 7. interim answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "interim",
    [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"],
)
async def test_an_interim_answer_is_skipped_for_the_final_one(
    serve: ServeFixture, client: Http1Client, interim: bytes
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        peer.write(interim)
        await asyncio.sleep(0.01)
        peer.write(answer(b"final", headers=(("X-Final", "yes"),)))
        await peer.request()  # and the connection still works
        peer.write(answer(b"again"))
        await peer.until_gone()

    server = await serve(handler)
    resp, data = await fetch(client, server.url())
    assert (resp.status, data) == (200, b"final")
    assert resp.headers["x-final"] == "yes" and "link" not in resp.headers
    assert (await fetch(client, server.url()))[1] == b"again"
    assert server.accepts == 1


# ---- 8. connecting -------------------------------------------------------------------------------


async def test_a_refused_connection_is_connect_failed(client: Http1Client, refused_port: int) -> None:
    async with asyncio.timeout(WAIT):
        with pytest.raises(ConnectFailed, match=f"cannot connect to 127.0.0.1:{refused_port}") as info:
            await client.send("POST", f"http://127.0.0.1:{refused_port}/", b"", {})
    assert not isinstance(info.value, ConnectTimeout)
    assert next(iter(client._pools.values())).open == 0


async def test_a_connect_timeout_is_connect_timeout_and_frees_its_place(
    serve: ServeFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await serve(replies(answer(b"ok")))
    loop = asyncio.get_running_loop()
    started = asyncio.Event()

    async def never(*args: Any, **kw: Any) -> Any:
        started.set()
        await asyncio.sleep(10)

    monkeypatch.setattr(loop, "create_connection", never)
    client = Http1Client(connect_timeout=0.02, limit=1)
    try:
        async with asyncio.timeout(WAIT):
            with pytest.raises(ConnectTimeout, match="timed out"):
                await client.send("POST", server.url(), b"", {})
        assert started.is_set()
        monkeypatch.undo()
        assert (await fetch(client, server.url()))[1] == b"ok"  # limit=1: the failed connect freed its place
    finally:
        await client.close()


async def test_a_url_that_is_not_http_is_refused(client: Http1Client) -> None:
    with pytest.raises(ConnectFailed, match="not an http"):
        await client.send("POST", "ftp://127.0.0.1/x", b"", {})


# ---- 9. header injection -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"X-A": "v\r\nX-Injected: 1"}, {"X-A": "v\nX-Injected: 1"}, {"X-A": "v\r"}, {"X-A\r\nX-B": "v"}],
)
async def test_a_line_break_in_a_header_is_refused_before_anything_is_sent(
    serve: ServeFixture, client: Http1Client, headers: dict[str, str]
) -> None:
    server = await serve(replies(answer(b"never")))
    with pytest.raises(HttpError, match="line break"):
        await client.send("POST", server.url(), b"", headers)
    await asyncio.sleep(0.01)
    assert server.accepts == 0 and not client._pools[("http", "127.0.0.1", server.port)].open


# ---- 10. closing an answer ----------------------------------------------------------------------


async def test_closing_an_answer_before_its_body_ended_closes_the_connection(
    serve: ServeFixture, client: Http1Client
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        peer.write(answer(b"0123456789")[:-5])  # five body bytes of ten, and the rest never
        await peer.until_gone()

    server = await serve(handler)
    async with asyncio.timeout(WAIT):
        resp = await client.send("POST", server.url(), b"", {})
        assert await resp.readany() == b"01234"
        await resp.aclose()
        await resp.aclose()  # twice is harmless
        await server.peers[0].gone.wait()
    await fetch_then_count(client, server, expect_accepts=2)


def chunked_then_wait(release: asyncio.Event, *, then: bytes | None) -> Handler:
    """A chunked answer whose first chunk comes at once, its terminator (`then`) once `release` is set."""

    async def handler(peer: Peer) -> None:
        await peer.request()
        peer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await release.wait()
        if then is not None:
            peer.write(then)
        while await peer.request() is not None:
            peer.write(answer(b"reused"))

    return handler


async def test_finish_in_background_returns_the_connection_once_the_body_ends(
    serve: ServeFixture, client: Http1Client
) -> None:
    release = asyncio.Event()
    server = await serve(chunked_then_wait(release, then=b"4\r\ntail\r\n0\r\n\r\n"))
    async with asyncio.timeout(WAIT):
        resp = await client.send("POST", server.url(), b"", {})
        assert await resp.readany() == b"first"
        resp.finish_in_background()
        await resp.aclose()
    [pool] = client._pools.values()
    assert not pool.idle and pool.open == 1  # still draining
    release.set()
    await until(lambda: len(pool.idle) == 1)
    assert (await fetch(client, server.url()))[1] == b"reused"
    assert server.accepts == 1


async def test_finish_in_background_after_the_end_returns_the_connection_at_once(
    serve: ServeFixture, client: Http1Client
) -> None:
    server = await serve(replies(answer(b"whole"), answer(b"again")))
    async with asyncio.timeout(WAIT):
        resp = await client.send("POST", server.url(), b"", {})
        await until(lambda: resp._done)
        resp.finish_in_background()
        await resp.aclose()
    assert len(client._pools[("http", "127.0.0.1", server.port)].idle) == 1
    assert (await fetch(client, server.url()))[1] == b"again"
    assert server.accepts == 1


async def test_finish_in_background_closes_the_connection_when_the_body_never_ends(
    serve: ServeFixture, client: Http1Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http1, "_DRAIN_SECONDS", 0.05)
    release = asyncio.Event()  # never set
    server = await serve(chunked_then_wait(release, then=None))
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(WAIT):
        resp = await client.send("POST", server.url(), b"", {})
        assert await resp.readany() == b"first"
        resp.finish_in_background()
        await resp.aclose()
        closed_at = loop.time()
        await server.peers[0].until_gone()
    assert loop.time() - closed_at >= 0.04  # the drain waited for the tail first
    [pool] = client._pools.values()
    await until(lambda: pool.open == 0)
    await fetch_then_count(client, server, expect_accepts=2)


async def test_an_answer_closed_without_finishing_after_an_error_closes_the_connection(
    serve: ServeFixture, client: Http1Client
) -> None:
    server = await serve(replies(Reply(answer(b"0123456789")[:-5], close=True)))
    async with asyncio.timeout(WAIT):
        resp = await client.send("POST", server.url(), b"", {})
        with pytest.raises(Disconnected):
            await resp.read()
        resp.finish_in_background()  # a failed body is not drained
        await resp.aclose()
    assert not client._pools[("http", "127.0.0.1", server.port)].idle


# ---- 11. back-pressure ----------------------------------------------------------------------------


async def test_an_unread_body_pauses_reading_and_reading_resumes_it(serve: ServeFixture, client: Http1Client) -> None:
    body = bytes(range(256)) * (24 * 1024 * 1024 // 256)  # far more than the kernel's buffers hold
    all_written = asyncio.Event()

    async def handler(peer: Peer) -> None:
        await peer.request()
        sock = peer.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        peer.write(answer(body))
        await peer.writer.drain()
        all_written.set()
        await peer.until_gone()

    server = await serve(handler)
    async with asyncio.timeout(2 * WAIT):
        resp = await client.send("POST", server.url(), b"", {})
        await until(lambda: resp._size >= http1._HIGH_WATER)
        await asyncio.sleep(0.05)  # reading would go on here without back-pressure
        assert http1._HIGH_WATER <= resp._size < http1._HIGH_WATER + RECV
        assert not all_written.is_set()  # the server's writes stall
        assert server.peers[0].writer.transport.get_write_buffer_size() > 0
        data = await resp.read()
        await resp.aclose()
    assert len(data) == len(body) and data == body
    assert all_written.is_set()


async def test_a_connection_released_while_reading_is_paused_still_reads_the_next_answer(
    serve: ServeFixture, client: Http1Client
) -> None:
    first = answer(b"a" * (http1._HIGH_WATER + 10))
    cut = len(first) - 1010  # below the high-water mark, then the last 1010 bytes in one read

    async def handler(peer: Peer) -> None:
        await peer.request()
        peer.write(first[:cut])
        await asyncio.sleep(0.05)
        peer.write(first[cut:])
        await peer.request()
        peer.write(answer(b"second"))
        await peer.until_gone()

    server = await serve(handler)
    async with asyncio.timeout(WAIT):
        resp = await client.send("POST", server.url(), b"", {})
    await until(lambda: resp._done)
    assert resp._size >= http1._HIGH_WATER  # reading is paused, and the body ended
    await resp.aclose()  # unread (e.g. read(limit) of an error body, then aclose)
    async with asyncio.timeout(0.2):
        assert (await fetch(client, server.url()))[1] == b"second"
    assert server.accepts == 1


# ---- 12. the bound on open connections ------------------------------------------------------------


async def test_with_limit_one_a_second_request_waits_for_the_first_answer_and_reuses_its_connection(
    serve: ServeFixture,
) -> None:
    server = await serve(replies(answer(b"first"), answer(b"second")))
    client = Http1Client(connect_timeout=WAIT, limit=1)
    try:
        async with asyncio.timeout(WAIT):
            first = await client.send("POST", server.url("/1"), b"", {})
            second = asyncio.create_task(client.send("POST", server.url("/2"), b"", {}))
            await asyncio.sleep(0.02)
            assert not second.done() and len(server.requests) == 1  # waiting for a place
            assert await first.read() == b"first"
            assert not second.done()  # a body read to its end is not released until closed
            await first.aclose()
            resp = await second
            assert await resp.read() == b"second"
            await resp.aclose()
        assert server.accepts == 1
        assert [head_of(r)[0] for r in server.requests] == [b"POST /1 HTTP/1.1", b"POST /2 HTTP/1.1"]
    finally:
        await client.close()


async def test_with_limit_one_a_lost_connection_lets_a_waiting_request_open_one(serve: ServeFixture) -> None:
    server = await serve(replies(Reply(answer(b"first"), close=True), answer(b"second")))
    client = Http1Client(connect_timeout=WAIT, limit=1)
    try:
        async with asyncio.timeout(WAIT):
            first = await client.send("POST", server.url(), b"", {})
            second = asyncio.create_task(client.send("POST", server.url(), b"", {}))
            assert await first.read() == b"first"
            await until(lambda: server.accepts == 2)  # the server's close freed the place: no aclose needed
            await first.aclose()
            resp = await second
            assert await resp.read() == b"second"
            await resp.aclose()
        assert server.accepts == 2
    finally:
        await client.close()


async def test_with_limit_one_a_woken_request_cancelled_passes_its_turn_on(serve: ServeFixture) -> None:
    server = await serve(replies(answer(b"first"), answer(b"third")))
    client = Http1Client(connect_timeout=WAIT, limit=1)
    try:
        async with asyncio.timeout(WAIT):
            first = await client.send("POST", server.url(), b"", {})
        second = asyncio.create_task(client.send("POST", server.url(), b"", {}))
        third = asyncio.create_task(client.send("POST", server.url(), b"", {}))
        [pool] = client._pools.values()
        await until(lambda: len(pool.waiters) == 2)
        assert await first.read() == b"first"
        await first.aclose()  # wakes `second`, which has not run yet...
        second.cancel()  # ...and goes away: `third` should get the connection
        async with asyncio.timeout(0.2):
            resp = await third
        assert await resp.read() == b"third"
        await resp.aclose()
    finally:
        second.cancel()
        third.cancel()
        await asyncio.gather(second, third, return_exceptions=True)
        await client.close()


# ---- 13. cancelling a request ---------------------------------------------------------------------


async def test_a_request_cancelled_while_waiting_for_its_answer_closes_its_connection(
    serve: ServeFixture, client: Http1Client
) -> None:
    async def handler(peer: Peer) -> None:
        if len(server.peers) == 1:  # the first connection never answers
            await peer.request()
            await peer.until_gone()
        else:
            await replies(answer(b"later"))(peer)

    server = await serve(handler)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await client.send("POST", server.url(), b"", {})
    async with asyncio.timeout(WAIT):
        await server.peers[0].gone.wait()  # the server saw the close
    [pool] = client._pools.values()
    await until(lambda: pool.open == 0)
    assert (await fetch(client, server.url()))[1] == b"later"
    assert server.accepts == 2


# ---- 14. answers that are not HTTP ----------------------------------------------------------------


@pytest.mark.parametrize("garbage", [b"garbage\r\n\r\n", b"SSH-2.0-OpenSSH_9.6\r\n", b"HTTP/1.1 abc OK\r\n\r\n"])
async def test_an_answer_that_is_not_http_is_disconnected(
    serve: ServeFixture, client: Http1Client, garbage: bytes
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        peer.write(garbage)
        await peer.until_gone()

    server = await serve(handler)
    async with asyncio.timeout(WAIT):
        with pytest.raises(Disconnected, match="invalid HTTP answer"):
            await client.send("POST", server.url(), b"", {})
        await server.peers[0].gone.wait()  # and the client hung up
    assert server.accepts == 1


async def test_an_answer_whose_headers_are_too_large_is_disconnected(
    serve: ServeFixture, client: Http1Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http1, "_MAX_HEAD", 100)
    server = await serve(replies(answer(b"x", headers=(("X-Big", "y" * 200),))))
    async with asyncio.timeout(WAIT):
        with pytest.raises(Disconnected, match="invalid HTTP answer"):
            await client.send("POST", server.url(), b"", {})


async def test_bytes_on_an_idle_connection_close_it(serve: ServeFixture, client: Http1Client) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        peer.write(answer(b"one"))
        await asyncio.sleep(0.02)
        peer.write(b"HTTP/1.1 200 OK\r\n")  # nobody asked
        await peer.until_gone()

    server = await serve(handler)
    assert (await fetch(client, server.url()))[1] == b"one"
    async with asyncio.timeout(WAIT):
        await server.peers[0].gone.wait()
    [pool] = client._pools.values()
    assert not pool.idle


# ---- 15. through the Transport ---------------------------------------------------------------------

TIMEOUTS = Timeouts(connect=WAIT, first_byte=WAIT, idle=WAIT)


async def test_transport_post_json_end_to_end(serve: ServeFixture) -> None:
    body = b'{"id":"r1","choices":[]}'
    server = await serve(replies(answer(gzip.compress(body), headers=(("Content-Encoding", "gzip"),))))
    transport = Transport(provider("openai", base_url=server.url("/v1")))
    try:
        data = await transport.post_json(server.url("/v1/chat/completions"), b'{"m":1}', {"X-K": "v"}, TIMEOUTS)
    finally:
        await transport.close()
    assert data == {"id": "r1", "choices": []}
    lines = head_of(server.requests[0])
    assert lines[0] == b"POST /v1/chat/completions HTTP/1.1" and b"X-K: v" in lines
    assert server.requests[0].endswith(b'{"m":1}')


async def test_transport_post_json_maps_an_error_status(serve: ServeFixture) -> None:
    server = await serve(replies(answer(b'{"error":{"message":"no such model"}}', status=b"404 Not Found")))
    transport = Transport(provider("openai", base_url=server.url()))
    try:
        with pytest.raises(UpstreamError, match="failed with HTTP 404: no such model"):
            await transport.post_json(server.url("/x"), b"{}", {}, TIMEOUTS)
    finally:
        await transport.close()


async def test_transport_post_stream_reads_end_to_end_and_reuses_the_connection(serve: ServeFixture) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        peer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for event in (b"data: 1\n\n", b"data: 2\n\n", b"data: [DONE]\n\n"):
            await asyncio.sleep(0.01)
            peer.write(b"%x\r\n%s\r\n" % (len(event), event))
        await asyncio.sleep(0.01)  # the body's end comes after the end event, in a read of its own
        peer.write(b"0\r\n\r\n")
        await peer.request()
        peer.write(answer(b'{"again":true}'))
        await peer.until_gone()

    server = await serve(handler)
    transport = Transport(provider("openai", base_url=server.url()))
    try:
        frames: list[Frame] = []
        async with asyncio.timeout(WAIT):
            reads = transport.post_stream_reads(server.url("/s"), b"{}", {}, TIMEOUTS)
            async with aclosing(reads):
                async for got in reads:
                    frames += got
                    if got[-1][1] == b"[DONE]":
                        await end_stream(reads)
                        break
        assert transport._client is not None
        [pool] = transport._client._pools.values()
        await until(lambda: len(pool.idle) == 1)  # the body's end arrived: the connection is back
        assert frames == [(None, b"1"), (None, b"2"), (None, b"[DONE]")]
        assert await transport.post_json(server.url("/j"), b"{}", {}, TIMEOUTS) == {"again": True}
        assert server.accepts == 1  # the stream's connection was drained and reused
    finally:
        await transport.close()


async def test_transport_maps_a_refused_connection(refused_port: int) -> None:
    url = f"http://127.0.0.1:{refused_port}"
    transport = Transport(provider("openai", base_url=url))
    try:
        with pytest.raises(UpstreamError, match="could not connect to provider fake-openai"):
            await transport.post_json(url + "/x", b"{}", {}, TIMEOUTS)
        with pytest.raises(UpstreamError, match="could not connect to provider fake-openai"):
            async with aclosing(transport.post_stream_reads(url + "/x", b"{}", {}, TIMEOUTS)) as reads:
                async for _ in reads:
                    pass
    finally:
        await transport.close()


async def test_transport_maps_a_cut_body(serve: ServeFixture) -> None:
    server = await serve(replies(Reply(answer(b'{"a": 1}')[:-3], close=True)))
    transport = Transport(provider("openai", base_url=server.url()))
    try:
        with pytest.raises(UpstreamError, match="connection to provider fake-openai failed: Disconnected"):
            await transport.post_json(server.url(), b"{}", {}, TIMEOUTS)
    finally:
        await transport.close()


# ---- TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for the IP address 127.0.0.1 and its key, as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keeprouter test upstream")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


async def _tls_server(cert: str, key: str) -> tuple[asyncio.Server, list[bytes]]:
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(v)
                    for n, _, v in (ln.partition(b":") for ln in head.split(b"\r\n"))
                    if n.lower() == b"content-length"
                )
                seen.append(head + await reader.readexactly(length))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsecured")
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx), seen


async def test_an_https_upstream_is_spoken_to_over_verified_tls(
    tls_pair: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssl

    trusting = ssl.create_default_context(cafile=tls_pair[0])
    monkeypatch.setattr(http1, "_ssl_context", trusting)  # the test's CA instead of the system's
    server, seen = await _tls_server(*tls_pair)
    port = server.sockets[0].getsockname()[1]
    client = Http1Client()
    try:
        async with asyncio.timeout(WAIT * 4):
            for _ in range(2):
                resp = await client.send("POST", f"https://127.0.0.1:{port}/v1/x", b"{}", {"A": "b"})
                assert (resp.status, await resp.read()) == (200, b"secured")
                await resp.aclose()
        assert len(seen) == 2 and seen[0].startswith(b"POST /v1/x HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{port}\r\n".encode() in seen[0]
    finally:
        await client.close()
        server.close()


async def test_a_certificate_the_system_does_not_trust_is_refused(tls_pair: tuple[str, str]) -> None:
    server, seen = await _tls_server(*tls_pair)
    port = server.sockets[0].getsockname()[1]
    client = Http1Client()
    try:
        with pytest.raises(ConnectFailed, match="certificate"):
            async with asyncio.timeout(WAIT * 4):
                await client.send("POST", f"https://127.0.0.1:{port}/v1/x", b"{}", {})
        assert seen == []  # nothing was sent to it
    finally:
        await client.close()
        server.close()


async def test_a_host_name_is_resolved_and_its_addresses_raced(serve: ServeFixture, client: Http1Client) -> None:
    # "localhost" may resolve to ::1 first, where nothing listens: the race still reaches 127.0.0.1
    server = await serve(replies(answer(b"named")))
    resp, data = await fetch(client, f"http://localhost:{server.port}/n")
    assert (resp.status, data) == (200, b"named")
    assert head_of(server.requests[0])[1] == f"Host: localhost:{server.port}".encode()

"""A transport without a socket, for adapter unit tests: a handler gets each request and scripts the
answer (status, headers, and the body as bytes or as chunks cut wherever the test likes).

It is the real `Transport` with its `Send` replaced, so timeouts, stream framing, error mapping and
credential redaction run as in production; only the network is gone. The end-to-end tests keep the
emulated upstreams of `tests/upstreams/`.

    def handler(req: FakeRequest) -> FakeResponse:
        assert req.url.endswith("/chat/completions")
        return FakeResponse(body=cut(sse_body(...), 1))   # one byte per chunk

    transport = FakeTransport(provider, handler)
    adapter = build_adapter(provider, transport)
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from keeprouter.config import EndpointConfig, Pricing, ProviderConfig, Timeouts
from keeprouter.formats.sse import sse_data, sse_event
from keeprouter.providers.http1 import Disconnected
from keeprouter.providers.registry import kind_of
from keeprouter.providers.transport import Transport


@dataclass(frozen=True, slots=True)
class FakeRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(slots=True)
class FakeResponse:
    """`body`: the whole body, or its chunks as they should arrive (an iterable or async iterable;
    an async one may sleep between chunks to play a slow host). `cut`: after the last chunk the
    connection breaks instead of ending cleanly. `delay`: seconds before the status arrives."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] | AsyncIterator[bytes] = b""
    cut: bool = False
    delay: float = 0.0

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> FakeResponse:
        return cls(status, {"Content-Type": "application/json", **(headers or {})}, orjson.dumps(data))


Handler = Callable[[FakeRequest], FakeResponse | Awaitable[FakeResponse]]


class _Answer:
    """A `transport.Response` over a `FakeResponse`; remembers whether it was closed."""

    def __init__(self, fake: FakeResponse) -> None:
        self.status = fake.status
        self.headers: Mapping[str, str] = fake.headers
        self.closed = False
        self.finished = False  # the consumer saw the stream's end event (end_stream)
        self._cut = fake.cut
        body = fake.body
        self._chunks: Iterator[bytes] | AsyncIterator[bytes]
        if isinstance(body, bytes):
            self._chunks = iter([body])
        elif isinstance(body, AsyncIterator):
            self._chunks = body
        else:
            self._chunks = iter(body)
        self._left = b""  # what a bounded read did not take

    async def _next(self) -> bytes:
        while True:
            if isinstance(self._chunks, AsyncIterator):
                chunk = await anext(self._chunks, None)
            else:
                chunk = next(self._chunks, None)
            if chunk is None:
                if self._cut:
                    raise Disconnected("connection cut by the fake upstream")
                return b""
            if chunk:
                return chunk

    def finish_in_background(self) -> None:
        self.finished = True

    async def readany(self) -> bytes:
        if self._left:
            out, self._left = self._left, b""
            return out
        return await self._next()

    async def read(self, limit: int = -1) -> bytes:
        out = b""
        while limit < 0 or len(out) < limit:
            chunk = await self.readany()
            if not chunk:
                break
            out += chunk
        if limit >= 0 and len(out) > limit:
            out, self._left = out[:limit], out[limit:]
        return out

    async def aclose(self) -> None:
        self.closed = True
        if isinstance(self._chunks, AsyncIterator) and hasattr(self._chunks, "aclose"):
            await self._chunks.aclose()


class FakeTransport(Transport):
    """`Transport` whose requests go to `handler`. `requests` and `answers` record each exchange in
    order (an answer's `closed` says whether the transport released it). Stream framing is the one
    of the provider kind's registry row, as `build_adapter` gives a real transport."""

    def __init__(self, provider: ProviderConfig, handler: Handler) -> None:
        super().__init__(provider, framing=kind_of(provider).framing, send=self._fake_send)
        self.handler = handler
        self.requests: list[FakeRequest] = []
        self.answers: list[_Answer] = []

    async def _fake_send(self, method: str, url: str, body: bytes, headers: Mapping[str, str]) -> _Answer:
        req = FakeRequest(method, url, dict(headers), body)
        self.requests.append(req)
        got = self.handler(req)
        fake = await got if inspect.isawaitable(got) else got
        if fake.delay:
            await asyncio.sleep(fake.delay)
        answer = _Answer(fake)
        self.answers.append(answer)
        return answer


# ---- bodies ------------------------------------------------------------------------------------


def sse_body(*events: Mapping[str, Any] | tuple[str, Mapping[str, Any]] | str) -> bytes:
    """An SSE body: a mapping is one `data:` JSON frame, `(event, mapping)` an `event:` + `data:`
    frame (Anthropic style), a string a raw `data:` line (`"[DONE]"`)."""
    out = []
    for ev in events:
        if isinstance(ev, str):
            out.append(sse_data(ev.encode()))
        elif isinstance(ev, tuple):
            out.append(sse_event(ev[0], orjson.dumps(ev[1])))
        else:
            out.append(sse_data(orjson.dumps(ev)))
    return b"".join(out)


def cut(body: bytes, size: int) -> list[bytes]:
    """`body` in chunks of `size` bytes: 1 cuts inside every line and every UTF-8 sequence."""
    return [body[i : i + size] for i in range(0, len(body), size)]


def cut_inside(body: bytes, needle: bytes) -> list[bytes]:
    """`body` in two chunks, cut in the middle of the first `needle` (a multi-byte character, a
    `data:` prefix, a line end)."""
    at = body.index(needle) + max(1, len(needle) // 2)
    return [body[:at], body[at:]]


async def drip(chunks: Iterable[bytes], interval: float) -> AsyncIterator[bytes]:
    """The chunks with `interval` seconds before each: a slow host."""
    for chunk in chunks:
        await asyncio.sleep(interval)
        yield chunk


# ---- configs -----------------------------------------------------------------------------------

KEY = "sk-fake-0123456789abcdef"


def provider(api: str, base_url: str = "https://upstream.test/v1", **kw: Any) -> ProviderConfig:
    return ProviderConfig(id=f"fake-{api}", api=api, base_url=base_url, api_key=KEY, **kw)


def endpoint(p: ProviderConfig, model: str = "m-1", *, first_byte: float = 5.0, idle: float = 5.0) -> EndpointConfig:
    return EndpointConfig(
        provider=p.id,
        model=model,
        pricing=Pricing(input=Decimal(1), output=Decimal(2)),
        capabilities=frozenset({"streaming"}),
        context_length=100_000,
        max_output_tokens=None,
        timeout=Timeouts(connect=1.0, first_byte=first_byte, idle=idle),
    )

"""The one network seam: a pooled HTTP client per provider, per-phase timeouts, error mapping.

Every upstream call goes through `Transport.post_json` (whole body) or `Transport.post_stream_reads`
(an async iterator of the frames of each read, cut by the provider kind's `Framing`). Both raise only
`errors.UpstreamError` subclasses, and both close the upstream response on every path, including
cancellation (the client went away).

Below them sits `Send`: one HTTP exchange, up to the answer's status and headers, the body read on
demand. The default sends with `http1.Http1Client`; a test passes its own (`tests/support/fake_transport.py`), so
an adapter's unit tests run the real timeouts, framing and error mapping without a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import Any, Protocol

import orjson

from keeprouter.config import ProviderConfig, Timeouts
from keeprouter.errors import UpstreamError, UpstreamTimeout
from keeprouter.providers.framing import SSE, Frame, FramingFactory
from keeprouter.providers.http1 import ConnectFailed, ConnectTimeout, Http1Client, HttpError

_MAX_ERROR_BODY = 64 * 1024


class Response(Protocol):
    """An upstream answer whose status and headers have arrived. `aclose()` releases it, closing the
    connection when the body was not read to its end (that is how a cancelled stream stops)."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def read(self, limit: int = -1) -> bytes:
        """The body, or its first `limit` bytes."""
        ...

    def readany(self) -> Awaitable[bytes]:
        """The next bytes that arrived, cut anywhere; b"" at the end of the body."""
        ...

    async def aclose(self) -> None: ...

    def finish_in_background(self) -> None:
        """The consumer saw the stream's end event: `aclose()` may read the rest of the body in the
        background, so the connection can be reused, instead of closing it."""
        ...


class StreamEnded(Exception):
    """Thrown into `post_stream_reads` by `end_stream`: the stream's end event was read."""


async def end_stream(reads: AsyncGenerator[list[Frame], None]) -> None:
    """Close `post_stream_reads` after the stream's end event: its connection is kept for reuse."""
    with contextlib.suppress(StopAsyncIteration):
        await reads.athrow(StreamEnded())


# (method, url, body, headers) -> the answer. Connection failures raise http1.HttpError.
Send = Callable[[str, str, bytes, Mapping[str, str]], Awaitable[Response]]
# A kind's own reading of an error answer (status, body, headers), or None: mapped by status.
ErrorMap = Callable[[int, bytes, Mapping[str, str]], UpstreamError | None]


class RequestAuth(Protocol):
    """Credentials a transport adds to every request it sends (`Transport.authorise`): for a kind
    whose credentials change over time (Vertex's OAuth tokens), so its adapters stay unaware."""

    async def headers(self) -> Mapping[str, str]:
        """The headers to add to the next request (awaited per request: a token may be refreshed)."""
        ...

    def refused(self) -> None:
        """The upstream answered 401 to these credentials: do not send them again as they are."""


class Transport:
    """Owns one provider's connection pool. Create once at start-up, `close()` at shutdown.

    `framing` makes the framer of each stream (the provider kind's registry row passes its own;
    SSE when not given); `send` replaces the network (tests); `errors` (set by an adapter whose
    upstream names its errors, e.g. Bedrock's `x-amzn-errortype`) maps an error answer first."""

    def __init__(
        self,
        provider: ProviderConfig,
        *,
        framing: FramingFactory = SSE,
        send: Send | None = None,
        limit: int = 1000,
    ) -> None:
        self.provider = provider
        self.secrets = provider_secrets(provider)
        self.framing = framing
        self.errors: ErrorMap | None = None
        self._send: Send = send or self._send_http1
        self._client: Http1Client | None = None
        self._limit = limit

    def authorise(self, auth: RequestAuth) -> None:
        """Add `auth`'s headers to every request from now on (over the caller's, which they win),
        and tell it of every 401. Set once at start-up: a transport without it pays nothing."""
        send = self._send

        async def authorised(method: str, url: str, body: bytes, headers: Mapping[str, str]) -> Response:
            resp = await send(method, url, body, {**headers, **await auth.headers()})
            if resp.status == 401:
                auth.refused()
            return resp

        self._send = authorised

    def scrub(self, e: UpstreamError) -> UpstreamError:
        """`e` with this provider's credentials cut out of its message (for in-stream errors; HTTP
        errors are scrubbed here already)."""
        e.message = redact(e.message, self.secrets)
        e.args = (e.message,)
        return e

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _send_http1(self, method: str, url: str, body: bytes, headers: Mapping[str, str]) -> Response:
        client = self._client
        if client is None:  # created lazily inside the running loop
            client = self._client = Http1Client(connect_timeout=self.provider.timeout.connect, limit=self._limit)
        return await client.send(method, url, body, headers)

    def _error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError:
        mapped = self.errors(status, raw, headers) if self.errors is not None else None
        if mapped is not None:
            return self.scrub(mapped)
        return _status_error(self.provider.id, status, raw, headers, self.secrets)

    async def post_json(self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts) -> dict[str, Any]:
        """POST and return the parsed JSON answer, an object; non-2xx raises UpstreamError."""
        data = await self.post_json_value(url, body, headers, timeouts)
        if not isinstance(data, dict):
            raise UpstreamError(f"provider {self.provider.id} returned invalid JSON")
        return data

    async def post_json_value(self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts) -> Any:
        """`post_json` for answers that need not be an object (TEI's rerank answers a bare list)."""
        data, _ = await self.post_json_headers(url, body, headers, timeouts)
        return data

    async def post_json_headers(
        self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
    ) -> tuple[Any, Mapping[str, str]]:
        """`post_json_value` with the answer's headers, for upstreams that report usage in a
        header (Bedrock's InvokeModel: `x-amzn-bedrock-input-token-count`)."""
        try:
            async with asyncio.timeout(timeouts.first_byte):
                resp = await self._send("POST", url, body, headers)
                try:  # `async with aclosing(resp)`, without its two extra awaits per request
                    raw = await resp.read()
                    if resp.status >= 400:
                        raise self._error(resp.status, raw, resp.headers)
                    answer_headers = resp.headers
                finally:
                    await resp.aclose()
        except TimeoutError:
            raise UpstreamTimeout(f"provider {self.provider.id} timed out") from None
        except HttpError as e:
            raise _connection_error(self.provider.id, e) from None
        try:
            return orjson.loads(raw), answer_headers
        except orjson.JSONDecodeError:
            raise UpstreamError(f"provider {self.provider.id} returned invalid JSON") from None

    async def post_stream_reads(
        self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
    ) -> AsyncGenerator[list[Frame], None]:
        """POST and yield the frames of each read as they arrive, one non-empty list per read
        (first_byte, then idle timeout between reads that completed frames). A read's frames come
        together so a decoder loops over them without an async step per frame."""
        loop = asyncio.get_running_loop()
        feed = self.framing().feed
        # One timeout per read, entered and left inside this frame: a timeout held across `yield`
        # would belong to whichever task read the first event, not to the one reading now.
        deadline = loop.time() + timeouts.first_byte
        try:
            async with asyncio.timeout_at(deadline):
                resp = await self._send("POST", url, body, headers)
            async with aclosing(resp):
                if resp.status >= 400:
                    async with asyncio.timeout_at(deadline):
                        raw = await resp.read(_MAX_ERROR_BODY)
                    raise self._error(resp.status, raw, resp.headers)
                readany = resp.readany
                while True:
                    async with asyncio.timeout_at(deadline):
                        chunk = await readany()
                    frames = feed(chunk)  # b"" at the end: a framing raises what it deferred
                    if not chunk:
                        if frames:
                            with contextlib.suppress(StreamEnded):  # the body has ended already
                                yield frames
                        return
                    if frames:
                        try:
                            yield frames
                        except StreamEnded:
                            resp.finish_in_background()
                            return
                        deadline = loop.time() + timeouts.idle
        except TimeoutError:
            raise UpstreamTimeout(f"provider {self.provider.id} timed out") from None
        except HttpError as e:
            raise _connection_error(self.provider.id, e) from None
        except ValueError as e:  # bytes the framing cannot frame (an SSE line over the bound)
            raise UpstreamError(f"provider {self.provider.id} sent an invalid stream: {e}") from None


def _connection_error(provider: str, e: HttpError) -> UpstreamError:
    if isinstance(e, ConnectTimeout):
        return UpstreamTimeout(f"provider {provider} timed out")
    if isinstance(e, ConnectFailed):
        return UpstreamError(f"could not connect to provider {provider}")
    return UpstreamError(f"connection to provider {provider} failed: {type(e).__name__}")


def provider_secrets(provider: ProviderConfig) -> tuple[str, ...]:
    """The credentials KeepRouter sends this provider: its api_key, any configured header that
    looks like one (Azure's `api-key`, a proxy's `Authorization`), and any of its kind's own keys
    that does (`aws_secret_access_key`, `aws_session_token`)."""
    found = [provider.api_key or ""]
    for name, value in (*provider.headers.items(), *provider.options.items()):
        if any(w in name.lower() for w in ("key", "auth", "token", "secret")):
            found.append(value)
            found.append(value.partition(" ")[2])  # "Bearer sk-...": the token alone too
    return tuple(sorted({s for s in found if len(s) >= 8}, key=len, reverse=True))


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` (an upstream's error message) with every occurrence of a provider credential replaced:
    upstreams echo the key they refused ("Incorrect API key provided: sk-...")."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "[REDACTED]")
    return text


def _status_error(
    provider: str, status: int, raw: bytes, headers: Mapping[str, str], secrets: tuple[str, ...] = ()
) -> UpstreamError:
    message = redact(_error_message(raw) or f"HTTP {status}", secrets)
    retry_after = headers.get("retry-after")
    meta: dict[str, object] = {"provider_name": provider, "provider_code": status}
    if status in (401, 403):
        # The caller's key is fine; ours for the provider is not. Never a 401 to the caller.
        return UpstreamError(f"provider {provider} rejected KeepRouter's credentials: {message}", metadata=meta)
    if status == 429:
        return UpstreamError(message, status=429, retry_after=retry_after, metadata=meta)
    if status in (400, 413, 422):
        return UpstreamError(message, status=status, metadata=meta)
    if status == 408:
        return UpstreamTimeout(f"provider {provider} timed out: {message}", metadata=meta)
    if status in (503, 529):
        return UpstreamError(f"provider {provider} is overloaded: {message}", retry_after=retry_after, metadata=meta)
    return UpstreamError(f"provider {provider} failed with HTTP {status}: {message}", metadata=meta)


def _error_message(raw: bytes) -> str | None:
    """The upstream's own error message (OpenAI and Anthropic shapes), verbatim."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw[:500].decode("utf-8", "replace").strip()
        return text or None
    if isinstance(data, list) and data and isinstance(data[0], dict):  # Gemini's `[{"error": {...}}]`
        data = data[0]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if isinstance(data.get("message"), str):
            return str(data["message"])
        # Validation errors as structures (Mistral's {"message": {"detail": [...]}}, FastAPI's
        # {"detail": [...]}): kept whole, so the adapter can see which field the host refused.
        for k in ("message", "detail"):
            if isinstance(data.get(k), dict | list):
                return orjson.dumps(data[k]).decode()
    return None

"""Adapter for AWS Bedrock Runtime: Converse and ConverseStream, for every model Bedrock serves.

`POST {base_url}/model/{model id}/converse` (JSON answer) and `/converse-stream` (an
`application/vnd.amazon.eventstream` body), every request signed (`auth.py`). The model id is
percent-encoded into one path segment (`:` -> `%3A`, an ARN's `/` too) and the URL is handed to
aiohttp pre-encoded, so what is sent is exactly what was signed.

Requests go through the transport's session (its pool, timeouts' shape, connection-error mapping
and secret redaction) by `_post`, which reads the raw body: the transport frames only SSE today,
and Bedrock's errors are mapped by their `x-amzn-errortype` rather than by status alone. Once the
transport takes a framing, the stream becomes `transport.post_stream(..., framing=EventStreamDecoder)`
and `_post` the transport's own, with `_http_error` as this kind's error mapping.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from keeprouter.config import EndpointConfig, ProviderConfig, Timeouts
from keeprouter.errors import UpstreamError, UpstreamTimeout
from keeprouter.formats.anthropic import json_tool
from keeprouter.formats.canonical import ChatRequest, ChatResponse, StreamEvent
from keeprouter.providers.transport import Transport, _connection_error, _status_error

from .auth import BearerAuth, NoCredentials, RequestSigner, SigV4Signer
from .eventstream import EventStreamDecoder
from .request import build_request, is_claude
from .response import error_for, error_message, error_type, parse_response
from .stream import BedrockStreamDecoder

DEFAULT_MAX_TOKENS = 8192  # Claude requires a maximum (other models have their own default)
COUNT_TIMEOUT = 10.0  # seconds: a count that slow is better estimated locally
_COUNTED = ("messages", "system", "toolConfig", "additionalModelRequestFields")  # what CountTokens takes
_MAX_ERROR_BODY = 64 * 1024


class BedrockAdapter:
    api = "bedrock"

    def __init__(self, provider: ProviderConfig, transport: Transport | None = None) -> None:
        self.provider = provider
        self.transport = transport or Transport(provider)
        region = provider.options.get("region", "us-east-1")
        self.base_url = provider.base_url or f"https://bedrock-runtime.{region}.amazonaws.com"
        self.headers = {"Content-Type": "application/json", **provider.headers}
        self.signer: RequestSigner = (
            BearerAuth(provider.api_key)
            if provider.api_key
            else SigV4Signer(
                region,
                access_key=provider.options.get("aws_access_key_id"),
                secret_key=provider.options.get("aws_secret_access_key"),
                session_token=provider.options.get("aws_session_token"),
            )
        )

    def url(self, model: str, action: str) -> str:
        return f"{self.base_url}/model/{quote(model, safe='')}/{action}"

    async def _signed(self, url: str, body: bytes, accept: str) -> dict[str, str]:
        headers = {**self.headers, "Accept": accept}
        try:
            if self.signer.needs_io:  # the credential chain may read files or call a metadata service
                return await asyncio.to_thread(self.signer.sign, "POST", url, headers, body)
            return self.signer.sign("POST", url, headers, body)
        except NoCredentials as e:
            raise UpstreamError(f"provider {self.provider.id}: {e}") from None

    @staticmethod
    def _json_tool(req: ChatRequest) -> str | None:
        if req.response_format is None or req.source == "anthropic":
            return None
        tool = json_tool(req)
        return tool[0] if tool else None

    def _body(self, req: ChatRequest, ep: EndpointConfig) -> bytes:
        default_max = ep.max_output_tokens or (DEFAULT_MAX_TOKENS if is_claude(ep.model) else None)
        return orjson.dumps(build_request(req, ep.model, default_max_tokens=default_max))

    async def count_tokens(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> int:
        """Bedrock's own count (`CountTokens` over the Converse input; Claude models only); raises
        UpstreamError when the model or host cannot count, so the caller estimates locally."""
        if not is_claude(ep.model):
            raise UpstreamError(f"provider {self.provider.id} counts tokens for Claude models only")
        converse = build_request(req, ep.model, default_max_tokens=1)
        body = orjson.dumps({"input": {"converse": {k: converse[k] for k in _COUNTED if k in converse}}})
        timeouts = Timeouts(connect=ep.timeout.connect, first_byte=COUNT_TIMEOUT, idle=COUNT_TIMEOUT)
        data = await self._json(self.url(ep.model, "count-tokens"), body, timeouts)
        n = data.get("inputTokens")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise UpstreamError(f"provider {self.provider.id} returned no token count")
        return n

    async def complete(
        self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> ChatResponse:
        data = await self._json(self.url(ep.model, "converse"), self._body(req, ep), ep.timeout)
        return parse_response(data, model=ep.model, id=f"msg_{uuid.uuid4().hex}", json_tool=self._json_tool(req))

    async def stream(
        self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> AsyncGenerator[StreamEvent, None]:
        url, body = self.url(ep.model, "converse-stream"), self._body(req, ep)
        headers = await self._signed(url, body, "application/vnd.amazon.eventstream")
        frames = EventStreamDecoder()
        decoder = BedrockStreamDecoder(
            id=f"msg_{uuid.uuid4().hex}", model=ep.model, provider=self.provider.id, json_tool=self._json_tool(req)
        )
        # closed on every path (the caller's aclose() included): that closes the upstream connection
        async with aclosing(self._post(url, body, headers, ep.timeout)) as chunks:
            async for chunk in chunks:
                try:
                    messages = frames.feed(chunk)
                except ValueError as e:
                    raise UpstreamError(f"provider {self.provider.id} sent an invalid stream: {e}") from None
                for event_type, payload in messages:
                    try:
                        events = decoder.feed(event_type, payload)
                    except UpstreamError as e:  # an in-band exception: it may echo our key back
                        raise self.transport.scrub(e) from None
                    for ev in events:
                        yield ev
                    if decoder.done:
                        return
        if not decoder.stopped or frames.pending:
            raise UpstreamError(f"provider {self.provider.id} ended the stream early")

    async def _json(self, url: str, body: bytes, timeouts: Timeouts) -> dict[str, Any]:
        """POST a signed JSON request; the parsed JSON answer."""
        headers = await self._signed(url, body, "application/json")
        async with aclosing(self._post(url, body, headers, timeouts, whole=True)) as chunks:
            raw = b"".join([chunk async for chunk in chunks])
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise UpstreamError(f"provider {self.provider.id} returned invalid JSON")
        return data

    async def _post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts, *, whole: bool = False
    ) -> AsyncGenerator[bytes, None]:
        """POST through the transport's session, the URL sent exactly as signed; the response body
        as it arrives (first_byte, then idle timeout between chunks), or whole in one chunk."""
        t, pid = self.transport, self.provider.id
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeouts.first_byte
        try:
            async with asyncio.timeout_at(deadline):
                resp = await t.session.post(URL(url, encoded=True), data=body, headers=headers)
            async with resp:
                if resp.status >= 400:
                    async with asyncio.timeout_at(deadline):
                        raw = await resp.content.read(_MAX_ERROR_BODY)
                    raise self._http_error(resp.status, raw, resp.headers)
                if whole:
                    async with asyncio.timeout_at(deadline):
                        raw = await resp.read()
                    yield raw  # outside the timeout: it must not reach into the consumer
                    return
                while True:
                    async with asyncio.timeout_at(deadline):
                        chunk = await resp.content.readany()
                    if not chunk:
                        return
                    yield chunk
                    deadline = loop.time() + timeouts.idle
        except TimeoutError:
            raise UpstreamTimeout(f"provider {pid} timed out") from None
        except aiohttp.ClientError as e:
            raise _connection_error(pid, e) from None

    def _http_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """Bedrock's error, by the type in `x-amzn-errortype`; without that header it was not Bedrock
        answering (a proxy, a load balancer): mapped by status like any upstream."""
        kind = error_type(headers.get("x-amzn-errortype"))
        if not kind:
            return _status_error(self.provider.id, status, raw, headers, self.transport.secrets)
        message = error_message(raw) or f"HTTP {status}"
        e = error_for(kind, message, self.provider.id, status=status, retry_after=headers.get("retry-after"))
        return self.transport.scrub(e)

    async def close(self) -> None:
        await self.transport.close()

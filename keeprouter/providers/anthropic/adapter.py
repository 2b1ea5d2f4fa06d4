"""Adapter for Anthropic Messages upstreams."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import ClassVar

import orjson

from keeprouter.config import EndpointConfig, ProviderConfig, Timeouts
from keeprouter.errors import UpstreamError
from keeprouter.formats.batches import Batched
from keeprouter.formats.canonical import ChatRequest, ChatResponse, StreamEvent
from keeprouter.providers.anthropic import request as fmt
from keeprouter.providers.anthropic.response import parse_response
from keeprouter.providers.anthropic.stream import AnthropicStreamDecoder
from keeprouter.providers.framing import load_json
from keeprouter.providers.transport import Transport, end_stream

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 8192  # Anthropic requires max_tokens; OpenAI callers may omit it
COUNT_TIMEOUT = 10.0  # seconds: a count that slow is better estimated locally
_NOT_COUNTED = ("max_tokens", "stream", "temperature", "top_p", "top_k", "stop_sequences", "metadata")


class AnthropicAdapter:
    api = "anthropic"
    count_fields: ClassVar[Mapping[str, str]] = {}  # added to a count body (Vertex: its API version)

    def __init__(self, provider: ProviderConfig, transport: Transport | None = None) -> None:
        self.provider = provider
        self.transport = transport or Transport(provider)
        # The contract's base_url has no /v1 (the SDK convention); accept one written with it too.
        base = provider.base_url.removesuffix("/v1")
        self.url = base + "/v1/messages"
        self.count_url = base + "/v1/messages/count_tokens"
        self.headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "anthropic-version": API_VERSION,
            **provider.headers,
        }
        if provider.api_key:
            self.headers["x-api-key"] = provider.api_key

    # Where each call goes; a kind that serves Claude at per-model URLs (Vertex) overrides these.
    def _url(self, model: str, *, stream: bool) -> str:
        return self.url

    def _count_url(self, model: str) -> str:
        return self.count_url

    def _headers(self, client_headers: Mapping[str, str]) -> Mapping[str, str]:
        beta = client_headers.get("anthropic-beta")
        if not beta:
            return self.headers
        return {**self.headers, "anthropic-beta": beta}

    @staticmethod
    def _json_tool(req: ChatRequest) -> str | None:
        """The structured-output tool's name when the body carries one (see request.json_tool)."""
        if req.response_format is None or req.source == "anthropic":
            return None
        tool = fmt.json_tool(req)
        return tool[0] if tool else None

    def _body(self, req: ChatRequest, ep: EndpointConfig) -> bytes:
        default_max = ep.max_output_tokens or DEFAULT_MAX_TOKENS
        body = fmt.build_request(req, ep.model, default_max_tokens=default_max, auto_breakpoint=ep.auto_breakpoint)
        return orjson.dumps(body)

    async def count_tokens(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> int:
        """The upstream's own exact count (`/v1/messages/count_tokens` takes the body minus
        max_tokens and stream); raises UpstreamError when the host cannot count."""
        body = fmt.build_request(req, ep.model, default_max_tokens=1)
        for field in _NOT_COUNTED:
            body.pop(field, None)
        body.update(self.count_fields)
        timeouts = Timeouts(connect=ep.timeout.connect, first_byte=COUNT_TIMEOUT, idle=COUNT_TIMEOUT)
        data = await self.transport.post_json(
            self._count_url(ep.model), orjson.dumps(body), self._headers(client_headers), timeouts
        )
        n = data.get("input_tokens")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise UpstreamError(f"provider {self.provider.id} returned no token count")
        return n

    async def complete(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> ChatResponse:
        data = await self.transport.post_json(
            self._url(ep.model, stream=False), self._body(req, ep), self._headers(client_headers), ep.timeout
        )
        return parse_response(data, self._json_tool(req))

    def stream(
        self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> AsyncGenerator[StreamEvent, None]:
        return Batched(self._batches(req, ep, client_headers))

    async def _batches(
        self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> AsyncGenerator[list[StreamEvent], None]:
        """The events of each upstream read, decoded in one step: one async step per read."""
        decoder = AnthropicStreamDecoder(self._json_tool(req))
        reads = self.transport.post_stream_reads(
            self._url(ep.model, stream=True), self._body(req, ep), self._headers(client_headers), ep.timeout
        )
        async with aclosing(reads):  # closed however the loop ends
            async for frames in reads:
                events: list[StreamEvent] = []
                failure: UpstreamError | None = None
                for event, payload in frames:
                    if event == "message_stop":
                        await end_stream(reads)
                        if events:
                            yield events
                        return
                    try:
                        data = load_json(payload)
                    except orjson.JSONDecodeError:
                        data = None
                    if not isinstance(data, dict):
                        failure = UpstreamError(f"provider {self.provider.id} sent a malformed stream event")
                        break
                    try:
                        events += decoder.feed(event or data.get("type"), data)
                    except UpstreamError as e:  # an in-band error: it may echo our key back
                        failure = self.transport.scrub(e)
                        break
                if events:  # what came before a failure still goes out, as it would one by one
                    yield events
                if failure is not None:
                    raise failure
        raise UpstreamError(f"provider {self.provider.id} ended the stream early")

    async def close(self) -> None:
        await self.transport.close()

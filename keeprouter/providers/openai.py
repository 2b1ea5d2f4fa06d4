"""Adapter for OpenAI-format upstreams: OpenAI, Mistral, vLLM, Ollama and every compatible host."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

import orjson

from keeprouter.config import EndpointConfig, ProviderConfig
from keeprouter.errors import UpstreamError
from keeprouter.formats import openai as fmt
from keeprouter.formats.canonical import ChatRequest, ChatResponse, Finish, StreamEvent
from keeprouter.formats.openai_stream import OpenAIStreamDecoder
from keeprouter.providers import hosts
from keeprouter.providers.transport import Transport


class OpenAIAdapter:
    api = "openai"

    def __init__(self, provider: ProviderConfig, transport: Transport | None = None) -> None:
        self.provider = provider
        self.transport = transport or Transport(provider)
        self.url = provider.base_url + "/chat/completions"
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", **provider.headers}
        if provider.api_key:
            self.headers["Authorization"] = f"Bearer {provider.api_key}"
        self.quirks = hosts.quirks_for(provider.base_url)

    def _body(self, req: ChatRequest, ep: EndpointConfig) -> bytes:
        body = fmt.build_request(req, ep.model)
        if self.quirks is not hosts.PLAIN:
            hosts.apply(self.quirks, body)
        return orjson.dumps(body)

    async def complete(
        self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> ChatResponse:
        body = self._body(req, ep)
        data = await self.transport.post_json(self.url, body, self.headers, ep.timeout)
        return fmt.parse_response(data)

    async def stream(
        self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> AsyncGenerator[StreamEvent, None]:
        body = self._body(req, ep)
        decoder = OpenAIStreamDecoder()
        finished = False
        async for sse in self.transport.post_stream(self.url, body, self.headers, ep.timeout):
            data = sse.data
            if data == "[DONE]":
                return
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise UpstreamError(f"provider {self.provider.id} sent a malformed stream chunk") from None
            if not isinstance(chunk, dict):
                raise UpstreamError(f"provider {self.provider.id} sent a malformed stream chunk")
            for ev in decoder.feed(chunk):
                if isinstance(ev, Finish):
                    finished = True
                yield ev
        if not finished:  # the connection ended with neither a finish_reason nor [DONE]
            raise UpstreamError(f"provider {self.provider.id} ended the stream early")

    async def close(self) -> None:
        await self.transport.close()

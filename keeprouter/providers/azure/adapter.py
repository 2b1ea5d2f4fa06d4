"""Adapter for Azure OpenAI (and AI Foundry): the OpenAI Chat wire format at Azure's URLs, with
Azure's `api-key` header.

The body, the answer and the stream are OpenAI's, so this composes `OpenAIAdapter` rather than
repeating it: one inner adapter per deployment, all over this provider's one transport. Per
deployment because on Azure each deployment is its own model behind its own URL (deployments API),
and what one model refuses (a reasoning deployment refusing `temperature`) must not be learned for
the others. The inner adapters are made on first use; their number is bounded by the endpoints in
the config.

Azure's own additions need no code of their own: the stream's first chunk (empty `choices`, only
`prompt_filter_results`) and the content-filter annotations on choices (`content_filter_results`,
sometimes without a `delta`) are skipped by the OpenAI stream decoder, a filtered answer's
`finish_reason: "content_filter"` is the canonical `content_filter` stop, and Azure's error body
(`{"error": {"code", "message", "innererror"}}`) has its message where OpenAI's has it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace

from keeprouter.config import EndpointConfig, ProviderConfig
from keeprouter.formats.canonical import ChatRequest, ChatResponse, StreamEvent
from keeprouter.formats.embeddings import EmbeddingRequest, EmbeddingResponse
from keeprouter.providers.azure.urls import AzureUrls
from keeprouter.providers.openai import OpenAIAdapter, hosts
from keeprouter.providers.transport import Transport


class AzureAdapter:
    api = "azure"

    def __init__(self, provider: ProviderConfig, transport: Transport | None = None) -> None:
        self.provider = provider
        self.transport = transport or Transport(provider)  # knows the key, so errors are scrubbed of it
        self.urls = AzureUrls.parse(provider.base_url, provider.options.get("api_version"))
        headers = dict(provider.headers)
        # The key goes as `api-key`, never as a bearer token; a configured `api-key` or
        # `Authorization` header (a Microsoft Entra token) stands instead of it.
        if provider.api_key and not any(h.lower() in ("api-key", "authorization") for h in headers):
            headers["api-key"] = provider.api_key
        self._inner = replace(provider, api_key=None, headers=headers)
        self._quirks = hosts.HostQuirks(
            max_tokens_field="max_completion_tokens" if self.urls.takes_max_completion_tokens else "max_tokens",
            # an older API version refuses the request that asks for the usage chunk: not asked for
            drop=frozenset() if self.urls.takes_stream_options else frozenset({"stream_options"}),
        )
        self._deployments: dict[str, OpenAIAdapter] = {}

    def _for(self, ep: EndpointConfig) -> OpenAIAdapter:
        adapter = self._deployments.get(ep.model)
        if adapter is None:
            adapter = OpenAIAdapter(self._inner, self.transport)
            adapter.url = self.urls.chat(ep.model)
            adapter.retrieval.embeddings_url = self.urls.embeddings(ep.model)
            adapter.quirks = self._quirks
            self._deployments[ep.model] = adapter
        return adapter

    async def complete(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> ChatResponse:
        return await self._for(ep).complete(req, ep, client_headers)

    def stream(
        self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> AsyncGenerator[StreamEvent, None]:
        return self._for(ep).stream(req, ep, client_headers)

    async def embed(
        self, req: EmbeddingRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> EmbeddingResponse:
        return await self._for(ep).embed(req, ep, client_headers)

    async def count_tokens(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> int:
        return await self._for(ep).count_tokens(req, ep, client_headers)

    async def close(self) -> None:
        await self.transport.close()

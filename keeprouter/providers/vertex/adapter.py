"""Adapter for Google Vertex AI: Gemini models and Claude models of one project and location.

Vertex serves each family in its own publisher's wire format, so this adapter owns no translator:
- Gemini (`publishers/google`): the Gemini API's body at `.../models/{m}:generateContent`,
  `:streamGenerateContent?alt=sse` and `:countTokens` (whose body is unwrapped, unlike AI Studio's);
- Claude (`publishers/anthropic`, a model id starting `claude-`): Anthropic's Messages body at
  `:rawPredict` / `:streamRawPredict`, without `model` (the URL names it) and with the body field
  `anthropic_version: vertex-2023-10-16` in place of the header; counted at `count-tokens:rawPredict`
  (with `model` and `anthropic_version` in the body).
Every path is under `{base_url}/v1/projects/{project}/locations/{location}/publishers/...`, except
with an express-mode key, whose URLs have no project or location (`{base}/v1/publishers/google/...`)
and whose host is the global one. Credentials are added to every request at the transport (see
`auth`), so both families' adapters are used as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Mapping
from typing import ClassVar
from urllib.parse import quote

import msgspec
import orjson

from keeprouter.config import EndpointConfig, ProviderConfig, Timeouts
from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import ChatRequest, ChatResponse, StreamEvent
from keeprouter.formats.embeddings import EmbeddingRequest, EmbeddingResponse
from keeprouter.kinds import VERTEX
from keeprouter.providers import retrieval
from keeprouter.providers.anthropic import AnthropicAdapter
from keeprouter.providers.anthropic import request as claude_fmt
from keeprouter.providers.anthropic.adapter import DEFAULT_MAX_TOKENS
from keeprouter.providers.gemini import GeminiAdapter
from keeprouter.providers.gemini import embeddings as emb
from keeprouter.providers.gemini import request as gemini_fmt
from keeprouter.providers.gemini.adapter import COUNT_TIMEOUT
from keeprouter.providers.transport import Transport
from keeprouter.providers.vertex.auth import ApiKeyAuth, Auth, TokenAuth

ANTHROPIC_VERSION = "vertex-2023-10-16"
EXPRESS_BASE_URL = "https://aiplatform.googleapis.com"  # express-mode keys work only on the global host
# countTokens on Vertex takes these fields of a generateContent body (no toolConfig, no safetySettings).
_COUNTED = ("contents", "systemInstruction", "tools", "generationConfig")


def is_claude(model: str) -> bool:
    """Vertex's Claude ids are Anthropic's names with an `@version` (`claude-sonnet-4-5@20250929`)."""
    return model.startswith("claude-")


def _segment(model: str) -> str:
    return quote(model, safe="@.-_")


class _Gemini(GeminiAdapter):
    """The Gemini adapter at a Vertex publisher path."""

    def __init__(self, provider: ProviderConfig, transport: Transport, publisher: str) -> None:
        super().__init__(provider, transport)
        self.base = publisher  # `_url` appends `models/{m}:{method}`

    def _url(self, model: str, method: str) -> str:
        return f"{self.base}/models/{_segment(model)}:{method}"

    async def count_tokens(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> int:
        full = gemini_fmt.build_request(req, ep.model)
        body = {k: full[k] for k in _COUNTED if k in full}
        timeouts = Timeouts(connect=ep.timeout.connect, first_byte=COUNT_TIMEOUT, idle=COUNT_TIMEOUT)
        try:
            data = await self.transport.post_json(
                self._url(ep.model, "countTokens"), orjson.dumps(body), self.headers, timeouts
            )
        except UpstreamError as e:
            raise self._credentials(e) from None
        n = data.get("totalTokens")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise UpstreamError(f"provider {self.provider.id} returned no token count")
        return n


class _Claude(AnthropicAdapter):
    """The Anthropic adapter at Vertex's rawPredict URLs, with Vertex's version of the body."""

    # Anthropic's Vertex clients (Python's and TypeScript's) send the version in every body, the
    # count's included.
    count_fields: ClassVar[Mapping[str, str]] = {"anthropic_version": ANTHROPIC_VERSION}

    def __init__(self, provider: ProviderConfig, transport: Transport, publisher: str) -> None:
        super().__init__(provider, transport)
        self.base = publisher
        self.headers.pop("anthropic-version", None)  # Vertex takes it in the body

    def _url(self, model: str, *, stream: bool) -> str:
        return f"{self.base}/models/{_segment(model)}:{'streamRawPredict' if stream else 'rawPredict'}"

    def _count_url(self, model: str) -> str:
        return f"{self.base}/models/count-tokens:rawPredict"  # the body names the model

    # The method in the URL decides streaming on Vertex, and the body's `stream` must agree with it.
    async def complete(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> ChatResponse:
        return await super().complete(msgspec.structs.replace(req, stream=False), ep, client_headers)

    def stream(
        self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> AsyncGenerator[StreamEvent, None]:
        return super().stream(msgspec.structs.replace(req, stream=True), ep, client_headers)

    def _body(self, req: ChatRequest, ep: EndpointConfig) -> bytes:
        default_max = ep.max_output_tokens or DEFAULT_MAX_TOKENS
        body = claude_fmt.build_request(
            req, ep.model, default_max_tokens=default_max, auto_breakpoint=ep.auto_breakpoint
        )
        body.pop("model", None)
        return orjson.dumps({"anthropic_version": ANTHROPIC_VERSION, **body})


def make_auth(provider: ProviderConfig) -> Auth:
    if provider.api_key and not provider.options.get("credentials"):
        return ApiKeyAuth(provider.api_key)
    return TokenAuth(provider.id, provider.options.get("credentials"))


class VertexAdapter:
    api = "vertex"

    def __init__(self, provider: ProviderConfig, transport: Transport | None = None) -> None:
        self.provider = provider
        self.transport = transport or Transport(provider)
        self.auth = make_auth(provider)
        self.express = isinstance(self.auth, ApiKeyAuth)
        opts = provider.options
        base = provider.base_url.rstrip("/").removesuffix("/v1")
        if self.express:
            # The regional default host: express keys are served by the global one only.
            if all(k in opts for k in VERTEX.required) and base == VERTEX.base_url_for(opts):
                base = EXPRESS_BASE_URL
            root = f"{base}/v1"
        else:
            project, location = quote(opts["project"], safe=""), quote(opts["location"], safe="")
            root = f"{base}/v1/projects/{project}/locations/{location}"
        # The families' adapters send no credentials of their own: the transport adds ours.
        bare = dataclasses.replace(provider, api_key=None)
        self.gemini = _Gemini(bare, self.transport, f"{root}/publishers/google")
        self.claude = _Claude(bare, self.transport, f"{root}/publishers/anthropic")
        self.transport.authorise(self.auth)

    def _family(self, model: str) -> GeminiAdapter | AnthropicAdapter:
        if not is_claude(model):
            return self.gemini
        if self.express:
            raise UpstreamError(f"provider {self.provider.id}: express-mode keys serve Gemini models only; "
                                f"Claude models need service-account credentials")  # fmt: skip
        return self.claude

    async def complete(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> ChatResponse:
        return await self._family(ep.model).complete(req, ep, client_headers)

    async def stream(
        self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> AsyncGenerator[StreamEvent, None]:
        inner = self._family(ep.model).stream(req, ep, client_headers)
        try:
            async for ev in inner:
                yield ev
        finally:
            await inner.aclose()

    async def count_tokens(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> int:
        return await self._family(ep.model).count_tokens(req, ep, client_headers)

    async def embed(
        self, req: EmbeddingRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> EmbeddingResponse:
        """Google's embedding models at `:predict`, split at the model's instance limit (one a call
        for gemini-embedding models, fanned out concurrently) and its token limit, and reassembled
        in input order."""
        if is_claude(ep.model):
            raise UpstreamError(f"provider {self.provider.id}: {ep.model} is not an embedding model")
        texts = retrieval.text_inputs(req, self.provider.id, self.api)
        url = self.gemini._url(ep.model, "predict")

        async def batch(chunk: list[str]) -> EmbeddingResponse:
            body = orjson.dumps(emb.predict_body(chunk, req))
            try:
                data = await self.transport.post_json(url, body, self.gemini.headers, ep.timeout)
            except UpstreamError as e:
                raise self.gemini._credentials(e) from None
            return emb.parse_predict(data, chunk)

        size = emb.vertex_batch_size(ep.model)
        return await retrieval.in_batches(texts, size, batch, emb.vertex_chunks(texts, ep.model))

    async def close(self) -> None:
        if isinstance(self.auth, TokenAuth):
            await self.auth.close()
        await self.transport.close()

"""Adapter for Gemini's native API (Google AI Studio): generateContent, streamGenerateContent?alt=sse
and countTokens under `{base_url}/v1beta/models/{model}`, authorised by the `x-goog-api-key` header
(never the `?key=` query parameter, which would put the key in URLs and logs)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing

import orjson

from keeprouter.config import EndpointConfig, ProviderConfig, Timeouts
from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import ChatRequest, ChatResponse, StreamEvent
from keeprouter.formats.embeddings import EmbeddingRequest, EmbeddingResponse
from keeprouter.kinds import GEMINI
from keeprouter.providers import retrieval
from keeprouter.providers.framing import load_json
from keeprouter.providers.gemini import embeddings as emb
from keeprouter.providers.gemini import request as fmt
from keeprouter.providers.gemini.response import http_error, parse_response
from keeprouter.providers.gemini.stream import GeminiStreamDecoder, ended_early
from keeprouter.providers.transport import Transport

DEFAULT_BASE_URL = GEMINI.default_base_url
API_VERSION = "v1beta"
COUNT_TIMEOUT = 10.0  # seconds: a count that slow is better estimated locally
# Gemini refuses a bad key with a 400 (INVALID_ARGUMENT, reason API_KEY_INVALID), not a 401.
_BAD_KEY = "API key not valid"


class GeminiAdapter:
    api = "gemini"

    def __init__(self, provider: ProviderConfig, transport: Transport | None = None) -> None:
        self.provider = provider
        self.transport = transport or Transport(provider)
        # Accept a base_url written with the version path too.
        self.base = provider.base_url.removesuffix("/" + API_VERSION) + "/" + API_VERSION
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", **provider.headers}
        if provider.api_key:
            self.headers["x-goog-api-key"] = provider.api_key
        self.transport.errors = self._http_error

    def _http_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError | None:
        """Google's own reading of an error answer where the status alone says less (a 429's delay)."""
        e = http_error(status, raw, headers)
        if e is not None:
            e.metadata = {"provider_name": self.provider.id, "provider_code": status}
        return e

    def _url(self, model: str, method: str) -> str:
        return f"{self.base}/{fmt.model_path(model)}:{method}"

    def _credentials(self, e: UpstreamError) -> UpstreamError:
        """A refused key is KeepRouter's problem, never the caller's 400 (as a 401/403 is)."""
        if e.status == 400 and _BAD_KEY in e.message:
            return UpstreamError(f"provider {self.provider.id} rejected KeepRouter's credentials: {e.message}",
                                 metadata=e.metadata)  # fmt: skip
        return e

    async def complete(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> ChatResponse:
        body = orjson.dumps(fmt.build_request(req, ep.model))
        url = self._url(ep.model, "generateContent")
        try:
            data = await self.transport.post_json(url, body, self.headers, ep.timeout)
        except UpstreamError as e:
            raise self._credentials(e) from None
        try:
            return parse_response(data, ep.model)
        except UpstreamError as e:  # an error body: it may echo our key back
            raise self.transport.scrub(e) from None

    async def stream(
        self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> AsyncGenerator[StreamEvent, None]:
        decoder = GeminiStreamDecoder(ep.model)
        body = orjson.dumps(fmt.build_request(req, ep.model))
        url = self._url(ep.model, "streamGenerateContent") + "?alt=sse"
        reads = self.transport.post_stream_reads(url, body, self.headers, ep.timeout)
        try:
            first = await anext(reads, None)
        except UpstreamError as e:
            raise self._credentials(e) from None
        async with aclosing(reads):
            frames = first
            while frames is not None:
                for _event, payload in frames:
                    for ev in self._decode(decoder, payload):
                        yield ev
                frames = await anext(reads, None)  # one async step per upstream read
        if not decoder.finished:  # the connection ended before a finishReason
            raise ended_early(self.provider.id)

    def _decode(self, decoder: GeminiStreamDecoder, payload: bytes) -> list[StreamEvent]:
        try:
            chunk = load_json(payload)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"provider {self.provider.id} sent a malformed stream chunk") from None
        if isinstance(chunk, list) and chunk:  # an error may come as a one-element list
            chunk = chunk[0]
        if not isinstance(chunk, dict):
            raise UpstreamError(f"provider {self.provider.id} sent a malformed stream chunk")
        try:
            return decoder.feed(chunk)
        except UpstreamError as e:  # an in-band error: it may echo our key back
            raise self.transport.scrub(e) from None

    async def count_tokens(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> int:
        """Gemini's own count (`countTokens`); raises UpstreamError when it cannot count."""
        body = orjson.dumps(fmt.count_body(req, ep.model))
        timeouts = Timeouts(connect=ep.timeout.connect, first_byte=COUNT_TIMEOUT, idle=COUNT_TIMEOUT)
        try:
            data = await self.transport.post_json(self._url(ep.model, "countTokens"), body, self.headers, timeouts)
        except UpstreamError as e:
            raise self._credentials(e) from None
        n = data.get("totalTokens")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise UpstreamError(f"provider {self.provider.id} returned no token count")
        return n

    async def embed(
        self, req: EmbeddingRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> EmbeddingResponse:
        """batchEmbedContents, GEMINI_BATCH texts a call, reassembled in input order."""
        texts = retrieval.text_inputs(req, self.provider.id, self.api)
        url = self._url(ep.model, "batchEmbedContents")

        async def batch(chunk: list[str]) -> EmbeddingResponse:
            body = orjson.dumps(emb.batch_body(chunk, req, ep.model))
            try:
                data = await self.transport.post_json(url, body, self.headers, ep.timeout)
            except UpstreamError as e:
                raise self._credentials(e) from None
            return emb.parse_batch(data, chunk)

        return await retrieval.in_batches(texts, emb.GEMINI_BATCH, batch)

    async def close(self) -> None:
        await self.transport.close()

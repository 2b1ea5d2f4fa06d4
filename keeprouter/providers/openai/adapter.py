"""Adapter for OpenAI-format upstreams: OpenAI, Mistral, vLLM, Ollama and every compatible host."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing

import orjson

from keeprouter.config import EndpointConfig, ProviderConfig
from keeprouter.errors import UpstreamError
from keeprouter.formats.batches import Batched
from keeprouter.formats.canonical import ChatRequest, ChatResponse, StreamEvent
from keeprouter.formats.embeddings import EmbeddingRequest, EmbeddingResponse, RerankRequest, RerankResponse
from keeprouter.providers.base import CountNotSupported
from keeprouter.providers.framing import Frame
from keeprouter.providers.openai import hosts
from keeprouter.providers.openai import request as fmt
from keeprouter.providers.openai.response import parse_response
from keeprouter.providers.openai.retrieval import RetrievalCalls
from keeprouter.providers.openai.stream import OpenAIStreamDecoder
from keeprouter.providers.transport import Transport, end_stream

log = logging.getLogger("keeprouter")
MAX_LEARNING_RETRIES = 3  # fields a host may refuse per request before its error is passed on


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
        self.retrieval = RetrievalCalls(provider, self.transport, self.headers)

    def _body(self, req: ChatRequest, ep: EndpointConfig) -> bytes:
        body = fmt.build_request(req, ep.model)
        if self.quirks is not hosts.PLAIN:
            hosts.apply(self.quirks, body)
        return orjson.dumps(body)

    def _learn(self, e: UpstreamError) -> bool:
        """After a 400/422, learn which field this host refuses (kept for every later request), so
        the same request can be sent again without it. False when there is nothing to learn."""
        if e.status not in (400, 422):
            return False
        learned = hosts.learn(self.quirks, e.message)
        if learned is None:
            return False
        log.warning("provider %s refuses %s; not sending it from now on", self.provider.id, learned)
        self.quirks = learned
        return True

    async def complete(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> ChatResponse:
        for attempt in range(MAX_LEARNING_RETRIES + 1):
            try:
                data = await self.transport.post_json(self.url, self._body(req, ep), self.headers, ep.timeout)
                break
            except UpstreamError as e:
                if attempt == MAX_LEARNING_RETRIES or not self._learn(e):
                    raise
        return parse_response(data)

    def stream(
        self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> AsyncGenerator[StreamEvent, None]:
        return Batched(self._batches(req, ep))

    async def _batches(self, req: ChatRequest, ep: EndpointConfig) -> AsyncGenerator[list[StreamEvent], None]:
        """The events of each upstream read, decoded in one step: one async step per read."""
        decoder = OpenAIStreamDecoder()
        opened = await self._open_stream(req, ep)
        if opened is None:
            raise UpstreamError(f"provider {self.provider.id} ended the stream early")
        first, reads = opened
        async with aclosing(reads):  # closed however the loop ends
            batch: list[Frame] | None = first
            while batch is not None:
                events: list[StreamEvent] = []
                try:
                    for _, data in batch:
                        if data == b"[DONE]":
                            await end_stream(reads)
                            if events:
                                yield events
                            return
                        events += decoder.feed_bytes(data)
                    failure: UpstreamError | None = None
                except ValueError:  # not JSON, or not an object
                    failure = UpstreamError(f"provider {self.provider.id} sent a malformed stream chunk")
                except UpstreamError as e:  # an in-band error: it may echo our key back
                    failure = self.transport.scrub(e)
                if events:  # what came before a failure still goes out, as it would one by one
                    yield events
                if failure is not None:
                    raise failure
                batch = await anext(reads, None)
        if not decoder.finished:  # the connection ended with neither a finish_reason nor [DONE]
            raise UpstreamError(f"provider {self.provider.id} ended the stream early")

    async def _open_stream(
        self, req: ChatRequest, ep: EndpointConfig
    ) -> tuple[list[Frame], AsyncGenerator[list[Frame], None]] | None:
        """The upstream's first read's frames and the reads after it; a refused field learned
        before the first event is retried. None for a stream that ended before any."""
        for attempt in range(MAX_LEARNING_RETRIES + 1):
            reads = self.transport.post_stream_reads(self.url, self._body(req, ep), self.headers, ep.timeout)
            try:
                first = await anext(reads)
            except StopAsyncIteration:
                return None
            except UpstreamError as e:
                await reads.aclose()
                if attempt == MAX_LEARNING_RETRIES or not self._learn(e):
                    raise
                continue
            except BaseException:
                await reads.aclose()
                raise
            return first, reads
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def embed(
        self, req: EmbeddingRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> EmbeddingResponse:
        return await self.retrieval.embed(req, ep)

    async def rerank(self, req: RerankRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> RerankResponse:
        return await self.retrieval.rerank(req, ep)

    async def count_tokens(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> int:
        raise CountNotSupported(f"provider {self.provider.id} has no token-count endpoint")

    async def close(self) -> None:
        await self.transport.close()

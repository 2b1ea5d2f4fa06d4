"""The calls behind an OpenAI-compatible adapter's `embed` and `rerank`: the translators in
`embeddings` paired with the provider's `Transport`.

Batches of one embeddings request go out concurrently (`providers.retrieval.in_batches`, at most
MAX_CONCURRENT_CALLS at once) and are reassembled in input order. A host that refuses a batch as
too large (embeddings or rerank), or refuses Cohere's rerank body for TEI's, is learned from once
(kept for every later request) and the call is sent again; any other failure is the caller's to
see, with nothing billed twice: the answer is only built when every batch succeeded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import orjson

from keeprouter.config import EndpointConfig, ProviderConfig
from keeprouter.errors import UpstreamError
from keeprouter.formats.embeddings import (
    EmbeddingInput,
    EmbeddingRequest,
    EmbeddingResponse,
    RerankRequest,
    RerankResponse,
)
from keeprouter.providers import retrieval
from keeprouter.providers.openai import embeddings as wire
from keeprouter.providers.transport import Transport

log = logging.getLogger("keeprouter")


class RetrievalCalls:
    def __init__(self, provider: ProviderConfig, transport: Transport, headers: Mapping[str, str]) -> None:
        self.provider = provider
        self.transport = transport
        self.headers = headers
        self.embeddings_url = provider.base_url + "/embeddings"
        self.rerank_url = provider.base_url + "/rerank"
        self.batch_limit = wire.batch_limit_for(provider.base_url)
        self.token_budget = wire.token_budget_for(provider.base_url)
        self.embedding_dialect: wire.EmbeddingDialect = wire.embedding_dialect_for(provider.base_url)
        self.dialect: wire.RerankDialect = wire.rerank_dialect_for(provider.base_url)
        self.rerank_batch: int | None = None  # documents a rerank call, once a host's refusal names it

    async def embed(self, req: EmbeddingRequest, ep: EndpointConfig) -> EmbeddingResponse:
        if self.embedding_dialect in wire.TEXT_ONLY_DIALECTS:  # token ids: fail over, not a 400
            retrieval.text_inputs(req, self.provider.id, self.embedding_dialect)
        for _ in range(3):  # a refusal may teach a smaller batch once or twice, never forever
            limit = self.batch_limit
            try:
                return await self._embed(req, ep, limit)
            except UpstreamError as e:
                learned = wire.learn_batch_limit(e.message, limit) if e.status in (400, 413, 422) else None
                if learned is None:
                    raise
                log.warning("provider %s takes at most %d inputs a request; batching so", self.provider.id, learned)
                self.batch_limit = min(self.batch_limit, learned)
        return await self._embed(req, ep, self.batch_limit)

    async def _embed(self, req: EmbeddingRequest, ep: EndpointConfig, limit: int) -> EmbeddingResponse:
        async def batch(chunk: list[EmbeddingInput]) -> EmbeddingResponse:
            return await self._batch(chunk, wire.embedding_body(chunk, req, ep.model, self.embedding_dialect), ep)

        chunks = None
        if self.token_budget is not None:
            chunks = retrieval.chunks_of(req.inputs, limit, self.token_budget, retrieval.input_tokens)
        return await retrieval.in_batches(req.inputs, limit, batch, chunks)

    async def _batch(self, inputs: list[EmbeddingInput], body: dict[str, Any], ep: EndpointConfig) -> EmbeddingResponse:
        data = await self.transport.post_json(self.embeddings_url, orjson.dumps(body), self.headers, ep.timeout)
        return wire.parse_embeddings(data, inputs)

    async def rerank(self, req: RerankRequest, ep: EndpointConfig) -> RerankResponse:
        for attempt in range(3):  # a refusal may teach the dialect, then the batch size, once each
            try:
                return await self._rerank(req, ep)
            except UpstreamError as e:
                if attempt == 2 or e.status not in (400, 413, 422):
                    raise
                dialect = wire.learn_rerank_dialect(e.message, self.dialect)
                if dialect is not None:
                    log.warning("provider %s speaks the %s rerank dialect", self.provider.id, dialect)
                    self.dialect = dialect
                    continue
                limit = wire.learn_batch_limit(e.message, self.rerank_batch or len(req.documents))
                if limit is None:
                    raise
                log.warning("provider %s ranks at most %d documents a request; batching so", self.provider.id, limit)
                self.rerank_batch = limit
        raise AssertionError("unreachable")

    async def _rerank(self, req: RerankRequest, ep: EndpointConfig) -> RerankResponse:
        size = self.rerank_batch
        if size is None or len(req.documents) <= size:
            return await self._rerank_call(req, ep)
        parts = wire.rerank_parts(req, size)
        gate = asyncio.Semaphore(retrieval.MAX_CONCURRENT_CALLS)

        async def one(part: RerankRequest) -> RerankResponse:
            async with gate:
                return await self._rerank_call(part, ep)

        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(one(part)) for _, part in parts]
        except BaseExceptionGroup as group:
            raise group.exceptions[0] from None
        return wire.merge_rerank([(offset, t.result()) for (offset, _), t in zip(parts, tasks, strict=True)])

    async def _rerank_call(self, req: RerankRequest, ep: EndpointConfig) -> RerankResponse:
        body = wire.rerank_body(req, ep.model, self.dialect)
        data = await self.transport.post_json_value(self.rerank_url, orjson.dumps(body), self.headers, ep.timeout)
        return wire.parse_rerank(data, req)

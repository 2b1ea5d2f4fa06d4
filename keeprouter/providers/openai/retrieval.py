"""The calls behind an OpenAI-compatible adapter's `embed` and `rerank`: the translators in
`embeddings` paired with the provider's `Transport`.

Batches of one embeddings request go out concurrently (`providers.retrieval.in_batches`, at most
MAX_CONCURRENT_CALLS at once) and are reassembled in input order. A host that refuses a batch as
too large, or refuses Cohere's rerank body for TEI's, is learned from once (kept for every later
request) and the call is sent again; any other failure is the caller's to see, with nothing billed
twice: the answer is only built when every batch succeeded.
"""

from __future__ import annotations

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
        for attempt in range(2):
            body = wire.rerank_body(req, ep.model, self.dialect)
            try:
                data = await self.transport.post_json_value(
                    self.rerank_url, orjson.dumps(body), self.headers, ep.timeout
                )
            except UpstreamError as e:
                learned = wire.learn_rerank_dialect(e.message, self.dialect) if e.status in (400, 422) else None
                if attempt or learned is None:
                    raise
                log.warning("provider %s speaks the %s rerank dialect", self.provider.id, learned)
                self.dialect = learned
                continue
            return wire.parse_rerank(data, req)
        raise AssertionError("unreachable")

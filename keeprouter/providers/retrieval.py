"""What an adapter that serves embeddings or rerank offers the gateway, beside chat.

A provider kind opts in by having these methods (OpenAI-compatible hosts do); the gateway asks an
adapter for them with `isinstance(adapter, Embedder)` and treats an endpoint whose adapter has none
as a failed attempt, so another endpoint of the model may still serve. Both raise only
`errors.UpstreamError` subclasses, like every adapter call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from keeprouter.config import EndpointConfig
from keeprouter.formats.embeddings import EmbeddingRequest, EmbeddingResponse, RerankRequest, RerankResponse


@runtime_checkable
class Embedder(Protocol):
    async def embed(
        self, req: EmbeddingRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> EmbeddingResponse:
        """Vectors for every input of `req`, in input order (however the host batches them)."""
        ...


@runtime_checkable
class Reranker(Protocol):
    async def rerank(self, req: RerankRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> RerankResponse:
        """A relevance score for the documents of `req` (at most `top_n` of them)."""
        ...

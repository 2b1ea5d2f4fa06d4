"""What an adapter that serves embeddings or rerank offers the gateway, beside chat.

A provider kind opts in by having these methods (OpenAI-compatible hosts do); the gateway asks an
adapter for them with `isinstance(adapter, Embedder)` and treats an endpoint whose adapter has none
as a failed attempt, so another endpoint of the model may still serve. Both raise only
`errors.UpstreamError` subclasses, like every adapter call.

Below the protocols: what every kind's embeddings call shares: inputs split at the upstream's batch
size, sent concurrently and reassembled in input order; and, for the kinds whose wire takes texts
only (Gemini, Vertex, Bedrock), the check that there are no token ids.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, TypeVar, runtime_checkable

from keeprouter.config import EndpointConfig
from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import Usage
from keeprouter.formats.embeddings import (
    EmbeddingInput,
    EmbeddingRequest,
    EmbeddingResponse,
    RerankRequest,
    RerankResponse,
)
from keeprouter.formats.tokens import quick_text


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


T = TypeVar("T")
MAX_CONCURRENT_CALLS = 4  # one request's upstream calls in flight at once, so one caller cannot flood a host


def text_inputs(req: EmbeddingRequest, provider: str, kind: str) -> list[str]:
    """`req`'s inputs as texts, for the kinds whose wire takes no token ids. Token ids raise a
    retryable error (another endpoint of the model, an OpenAI-compatible host, may take them)."""
    if any(not isinstance(item, str) for item in req.inputs):
        raise UpstreamError(f"provider {provider} ({kind}) embeds texts only, not token ids")
    return [item for item in req.inputs if isinstance(item, str)]


def merge(parts: list[EmbeddingResponse]) -> EmbeddingResponse:
    """Batch answers (in batch order) as one answer: vectors concatenated, usage summed."""
    vectors: list[list[float]] = []
    tokens = 0
    for p in parts:
        vectors.extend(p.vectors)
        tokens += p.usage.input_tokens
    return EmbeddingResponse(vectors=vectors, usage=Usage(input_tokens=tokens), model=parts[0].model if parts else None)


def input_tokens(item: EmbeddingInput) -> int:
    """One input's token estimate: token ids count exactly, a text by its length."""
    return quick_text(item) if isinstance(item, str) else len(item)


def chunks_of(inputs: list[T], size: int, token_budget: int, weigh: Callable[[T], int]) -> list[list[T]]:
    """`inputs` in order, at most `size` a chunk and at most `token_budget` tokens (by `weigh`) a
    chunk (an input over the budget goes alone), for hosts that cap a call's tokens as well as its
    inputs (Vertex, OpenAI)."""
    chunks: list[list[T]] = []
    current: list[T] = []
    spent = 0
    for item in inputs:
        cost = weigh(item)
        if current and (len(current) >= size or spent + cost > token_budget):
            chunks.append(current)
            current, spent = [], 0
        current.append(item)
        spent += cost
    if current:
        chunks.append(current)
    return chunks


async def in_batches(
    inputs: list[T],
    size: int,
    call: Callable[[list[T]], Awaitable[EmbeddingResponse]],
    chunks: list[list[T]] | None = None,
) -> EmbeddingResponse:
    """`inputs` embedded `size` at a time (or as the given `chunks`, in order; `call` answers one
    batch, vectors in its order), at most MAX_CONCURRENT_CALLS batches in flight, reassembled in
    input order. The first failure cancels the other batches and is the call's: an answer is never
    made of a part, so nothing is billed for a request that failed."""
    size = max(1, size)
    if chunks is None:
        chunks = [inputs[i : i + size] for i in range(0, len(inputs), size)]
    if len(chunks) == 1:
        return await call(chunks[0])
    gate = asyncio.Semaphore(MAX_CONCURRENT_CALLS)

    async def one(chunk: list[T]) -> EmbeddingResponse:
        async with gate:
            return await call(chunk)

    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(chunk)) for chunk in chunks]
    except BaseExceptionGroup as group:
        raise group.exceptions[0] from None
    return merge([t.result() for t in tasks])


def vector(value: object, where: str) -> list[float]:
    """An upstream's vector, checked: a list of numbers (UpstreamError naming `where` otherwise)."""
    if not isinstance(value, list) or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        raise UpstreamError(f"{where} is not an array of numbers")
    return [float(x) for x in value]

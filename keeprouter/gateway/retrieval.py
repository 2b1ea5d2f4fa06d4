"""Embeddings and rerank through THE attempt loop (`Gateway._serve`).

A `Retrieval` is the loop's mode for one such request: an attempt is one adapter call whose first
result is the whole answer. Nothing is produced but the answer: the reservation holds no output
(`Sizing`), each endpoint's context is checked against the longest input rather than their sum
(each input is read on its own), and the cost is `pricing.input` per token plus `pricing.request`
per call (billing.pricing.cost), recorded as a generation like chat.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar

from keeprouter.billing import pricing
from keeprouter.config import EndpointConfig
from keeprouter.errors import UpstreamError
from keeprouter.formats import tokens
from keeprouter.formats.canonical import ChatRequest
from keeprouter.formats.embeddings import (
    EmbeddingRequest,
    EmbeddingResponse,
    RerankRequest,
    RerankResponse,
    estimate_embedding_tokens,
    estimate_rerank_tokens,
)
from keeprouter.gateway.metering import Attempt, Metering
from keeprouter.providers.base import Adapter
from keeprouter.providers.retrieval import Embedder, Reranker
from keeprouter.routing.health import HealthTracker
from keeprouter.routing.select import Candidate

A = TypeVar("A", EmbeddingResponse, RerankResponse)
Call = Callable[[Adapter, EndpointConfig, Mapping[str, str]], Awaitable[A]]


@dataclass(frozen=True, slots=True)
class Sizing:
    """What admission and routing know of a request that produces no tokens: its whole estimate
    (reserved and rate-limited) and its longest single input (checked against each context)."""

    estimate: int
    longest: int


@dataclass(slots=True)
class Retrieved(Generic[A]):
    """An embeddings or rerank answer, what it costs, and what the ledger needs."""

    response: A
    candidate: Candidate
    cost: Decimal
    meter: Metering


class Retrieval(Generic[A]):
    """The attempt loop's mode for one embeddings or rerank request (made per request: it carries
    the request in `call`; the loop's chat-shaped request is a stand-in for routing only)."""

    def __init__(self, health: HealthTracker, call: Call[A]) -> None:
        self.health = health
        self.call: Call[A] = call

    def open(self, adapter: Adapter, req: ChatRequest, ep: EndpointConfig, headers: Mapping[str, str]) -> Awaitable[A]:
        return self.call(adapter, ep, headers)

    def first(self, handle: Awaitable[A]) -> Awaitable[A]:
        return handle

    def close(self, handle: Awaitable[A]) -> None:
        return None  # a call that raised is finished

    def served(self, meter: Metering, attempt: Attempt, handle: Awaitable[A], first: A) -> Retrieved[A]:
        now = time.monotonic()
        attempt.first_token_at = now
        cand = attempt.candidate
        self.health.success(cand.key, now - attempt.started, None)
        cost = pricing.rounded_cost(first.usage, cand.endpoint.pricing)
        return Retrieved(first, cand, cost, meter)


def stand_in(model: str) -> ChatRequest:
    """The chat-shaped view routing takes of a request without tools, stream or output."""
    return ChatRequest(model=model, messages=[])


def embedding(req: EmbeddingRequest) -> tuple[Call[EmbeddingResponse], Sizing]:
    async def call(adapter: Adapter, ep: EndpointConfig, headers: Mapping[str, str]) -> EmbeddingResponse:
        if not isinstance(adapter, Embedder):  # an attempt that fails: another endpoint may serve
            raise UpstreamError(f"provider {ep.provider} ({adapter.api}) serves no embeddings")
        return await adapter.embed(req, ep, headers)

    longest = max(estimate_embedding_tokens([item]) for item in req.inputs)
    return call, Sizing(estimate_embedding_tokens(req.inputs), longest)


def rerank(req: RerankRequest) -> tuple[Call[RerankResponse], Sizing]:
    async def call(adapter: Adapter, ep: EndpointConfig, headers: Mapping[str, str]) -> RerankResponse:
        if not isinstance(adapter, Reranker):
            raise UpstreamError(f"provider {ep.provider} ({adapter.api}) serves no rerank")
        return await adapter.rerank(req, ep, headers)

    query = tokens.quick_text(req.query)
    longest = max(query + tokens.quick_text(doc) for doc in req.documents)
    return call, Sizing(estimate_rerank_tokens(req), longest)

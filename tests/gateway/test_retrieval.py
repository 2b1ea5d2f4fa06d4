"""Embeddings and rerank through the one attempt loop, with fake adapters behind the real gateway:
an endpoint whose adapter serves no embeddings is a failed attempt (the next one serves), a
retryable failure falls back, the reservation holds no output, the cost is input plus the
per-request price, and the generation is recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from keeprouter.billing.ledger import Ledger
from keeprouter.config import EndpointConfig, parse_config
from keeprouter.errors import InvalidRequest, UpstreamError
from keeprouter.formats.canonical import Usage
from keeprouter.formats.embeddings import (
    EmbeddingRequest,
    EmbeddingResponse,
    RerankRequest,
    RerankResponse,
    RerankResult,
)
from keeprouter.gateway import Caller, Gateway
from keeprouter.keys import KeyService
from keeprouter.providers.base import Adapter
from keeprouter.routing.health import HealthTracker
from keeprouter.store import Store, open_store
from keeprouter.store.base import ADMIN_HASH


class ChatOnly:
    """An adapter with no embed or rerank (as an Anthropic-format one)."""

    api = "anthropic"

    async def close(self) -> None:
        pass


class Retriever(ChatOnly):
    api = "openai"

    def __init__(self, error: UpstreamError | None = None) -> None:
        self.error = error
        self.calls = 0

    async def embed(self, req: EmbeddingRequest, ep: EndpointConfig, h: Mapping[str, str]) -> EmbeddingResponse:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return EmbeddingResponse(vectors=[[float(i)] for i in range(len(req.inputs))], usage=Usage(input_tokens=40))

    async def rerank(self, req: RerankRequest, ep: EndpointConfig, h: Mapping[str, str]) -> RerankResponse:
        self.calls += 1
        return RerankResponse(results=[RerankResult(index=0, relevance_score=0.5)], usage=Usage(input_tokens=100))


@pytest_asyncio.fixture(name="store")
async def store_fixture(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(f"sqlite:///{tmp_path / 'kr.db'}")
    await KeyService(store).ensure_admin()
    yield store
    await store.close()


def gateway(store: Store, adapters: dict[str, Any]) -> Gateway:
    providers = {p: {"api": "openai", "base_url": "http://127.0.0.1:9", "api_key": "k"} for p in adapters}
    eps = [{"provider": p, "model": f"up-{p}", "pricing": {"input": 2, "request": 0.001}} for p in adapters]
    raw = {
        "providers": providers,
        "models": {
            "emb": {"modality": "text->embedding", "context_length": 300, "endpoints": eps},
            "rr": {"modality": "text->rerank", "endpoints": eps},
        },
    }
    typed: dict[str, Adapter] = adapters  # the fakes have only what retrieval needs
    return Gateway(parse_config(raw, env={}), typed, Ledger(store), HealthTracker())


async def caller(store: Store) -> Caller:
    key = await store.get_key(ADMIN_HASH, 0.0)
    assert key is not None
    return Caller("embeddings", key, {})


ORDER = {"provider": {"order": ["a", "b", "c"]}}


async def test_an_adapter_without_embeddings_and_a_failure_fall_back(store: Store) -> None:
    failing = Retriever(UpstreamError("overloaded", status=503))
    serving = Retriever()
    gw = gateway(store, {"a": ChatOnly(), "b": failing, "c": serving})
    # 200 inputs of 3 tokens each: their sum is over the 300-token context, each one fits
    req = EmbeddingRequest(model="emb", inputs=["abcdefgh"] * 200)
    done = await gw.embed(await caller(store), req, gw.route_for(ORDER, "emb", "text->embedding"))
    assert done.candidate.endpoint.provider == "c"
    assert len(done.response.vectors) == 200 and failing.calls == 1
    assert done.cost == Decimal("0.001") + Decimal(40 * 2) / 1_000_000
    assert [a.row(None)["provider"] for a in done.meter.failed] == ["a", "b"]
    await gw.settle_retrieved(done)
    gen = await store.get_generation(done.meter.gen_id)
    assert gen is not None and gen.cost == done.cost and gen.tokens_prompt == 40 and gen.api == "embeddings"


async def test_rerank_is_billed_per_token_and_per_request(store: Store) -> None:
    gw = gateway(store, {"a": Retriever()})
    req = RerankRequest(model="rr", query="q", documents=["a", "b"])
    done = await gw.rerank(await caller(store), req, gw.route_for({}, "rr", "text->rerank"))
    assert done.cost == Decimal("0.001") + Decimal(100 * 2) / 1_000_000
    assert done.meter.output_bound == 0
    await gw.settle_retrieved(done)


async def test_a_model_of_another_modality_is_refused_before_any_upstream(store: Store) -> None:
    serving = Retriever()
    gw = gateway(store, {"a": serving})
    with pytest.raises(InvalidRequest) as caught:
        gw.route_for({}, "rr", "text->embedding")
    assert "text->rerank" in caught.value.message and "/v1/rerank" in caught.value.message
    assert caught.value.param == "model"
    # a fallback of another modality is skipped, not refused
    route = gw.route_for({"models": ["rr"]}, "emb", "text->embedding")
    assert [m.id for m in route.models] == ["emb"]
    assert serving.calls == 0

"""Embeddings on Azure OpenAI: the v1 API's `/openai/v1/embeddings`, the deployment as `model`,
Azure's `api-key`; vectors in input order."""

from __future__ import annotations

from decimal import Decimal

from upstreams.azure_server import AzureUpstream
from upstreams.embeddings import vector_for

from keeprouter.config import EndpointConfig, Pricing, ProviderConfig, Timeouts
from keeprouter.formats.embeddings import EmbeddingRequest
from keeprouter.providers.azure import AzureAdapter
from keeprouter.providers.azure.urls import AzureUrls


async def test_embeddings_on_the_v1_api() -> None:
    async with AzureUpstream(deployments={"emb-prod": "text-embedding-3-small"}) as up:
        adapter = AzureAdapter(ProviderConfig("az", "azure", up.url, AzureUpstream.DEFAULT_KEY))
        ep = EndpointConfig("az", "emb-prod", Pricing(Decimal(1), Decimal(0)), frozenset(), 8192, None, Timeouts())
        try:
            resp = await adapter.embed(EmbeddingRequest(model="e", inputs=["one", "two words"]), ep, {})
        finally:
            await adapter.close()
    assert resp.vectors == [vector_for("one"), vector_for("two words")]
    assert resp.usage.input_tokens == 3
    sent = up.requests[-1]
    assert sent.path == "/openai/v1/embeddings" and sent.body["model"] == "emb-prod"
    assert sent.header("api-key") == AzureUpstream.DEFAULT_KEY and sent.header("authorization") is None


def test_deployments_api_embeddings_url() -> None:
    adapter = AzureAdapter(
        ProviderConfig("az", "azure", "https://r.openai.azure.com", "k", options={"api_version": "2024-10-21"})
    )
    ep = EndpointConfig("az", "emb", Pricing(Decimal(1), Decimal(0)), frozenset(), 8192, None, Timeouts())
    assert adapter._for(ep).retrieval.embeddings_url == AzureUrls.parse(
        "https://r.openai.azure.com", "2024-10-21"
    ).embeddings("emb")

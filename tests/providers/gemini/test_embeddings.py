"""Embeddings on the Gemini API: `batchEmbedContents` at 100 texts a call, reassembled in input
order; task type and dimensions carried; errors as the chat calls' (a bad key is ours, not the caller's)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from upstreams import Fault, GeminiUpstream
from upstreams.embeddings import vector_for

from keeprouter.config import EndpointConfig, Pricing, ProviderConfig, Timeouts
from keeprouter.errors import UpstreamError
from keeprouter.formats.embeddings import EmbeddingRequest, estimate_embedding_tokens
from keeprouter.providers.gemini import GeminiAdapter
from keeprouter.providers.gemini import embeddings as wire
from keeprouter.providers.retrieval import Embedder

MODEL = "gemini-embedding-001"
EP = EndpointConfig("gm", MODEL, Pricing(Decimal("0.15"), Decimal(0)), frozenset(), 2048, None, Timeouts())


def adapter(up: GeminiUpstream, key: str = GeminiUpstream.DEFAULT_KEY) -> GeminiAdapter:
    return GeminiAdapter(ProviderConfig("gm", "gemini", up.url, key))


async def test_large_inputs_split_at_100_and_reassembled_in_order(gemini_upstream: GeminiUpstream) -> None:
    texts = [f"text number {i}" for i in range(250)]
    a = adapter(gemini_upstream)
    try:
        assert isinstance(a, Embedder)
        resp = await a.embed(EmbeddingRequest(model="e", inputs=[*texts]), EP, {})
    finally:
        await a.close()
    assert resp.vectors == [vector_for(t) for t in texts]
    assert resp.usage.input_tokens == estimate_embedding_tokens(list(texts))  # Gemini reports none
    calls = gemini_upstream.requests
    assert sorted(len(r.body["requests"]) for r in calls) == [50, 100, 100]
    assert {r.path for r in calls} == {f"/v1beta/models/{MODEL}:batchEmbedContents"}
    assert all(r.header("x-goog-api-key") == GeminiUpstream.DEFAULT_KEY and not r.query for r in calls)


async def test_task_type_and_dimensions(gemini_upstream: GeminiUpstream) -> None:
    a = adapter(gemini_upstream)
    req = EmbeddingRequest(model="e", inputs=["q one", "q two"], dimensions=8, extra={"input_type": "search_query"})
    try:
        resp = await a.embed(req, EP, {})
    finally:
        await a.close()
    assert resp.vectors == [vector_for("q one", 8), vector_for("q two", 8)]
    sent = gemini_upstream.requests[-1].body["requests"]
    assert [r["taskType"] for r in sent] == ["RETRIEVAL_QUERY"] * 2
    assert [r["outputDimensionality"] for r in sent] == [8, 8]
    assert sent[0]["model"] == f"models/{MODEL}"


async def test_token_ids_are_refused_before_any_call(gemini_upstream: GeminiUpstream) -> None:
    a = adapter(gemini_upstream)
    try:
        with pytest.raises(UpstreamError) as caught:
            await a.embed(EmbeddingRequest(model="e", inputs=["ok", [1, 2]]), EP, {})
    finally:
        await a.close()
    assert caught.value.retryable and "token ids" in caught.value.message  # another endpoint may take them
    assert not gemini_upstream.requests


async def test_a_failed_batch_fails_the_call(gemini_upstream: GeminiUpstream) -> None:
    gemini_upstream.script(Fault(status=503))
    a = adapter(gemini_upstream)
    try:
        with pytest.raises(UpstreamError) as caught:
            await a.embed(EmbeddingRequest(model="e", inputs=[f"t{i}" for i in range(150)]), EP, {})
    finally:
        await a.close()
    assert caught.value.retryable


async def test_a_bad_key_is_keeprouters_problem(gemini_upstream: GeminiUpstream) -> None:
    a = adapter(gemini_upstream, key="wrong")
    try:
        with pytest.raises(UpstreamError) as caught:
            await a.embed(EmbeddingRequest(model="e", inputs=["x"]), EP, {})
    finally:
        await a.close()
    assert caught.value.status == 502 and "credentials" in caught.value.message


def test_an_answer_with_the_wrong_count_is_an_error() -> None:
    with pytest.raises(UpstreamError, match="1 embeddings for 2 inputs"):
        wire.parse_batch({"embeddings": [{"values": [0.5]}]}, ["a", "b"])
    with pytest.raises(UpstreamError, match="not an array of numbers"):
        wire.parse_batch({"embeddings": [{"values": ["x"]}]}, ["a"])


def test_reported_usage_is_taken_when_present() -> None:
    got = wire.parse_batch({"embeddings": [{"values": [0.5]}], "usageMetadata": {"promptTokenCount": 7}}, ["a"])
    assert got.usage.input_tokens == 7


def test_task_type_from_googles_name_or_cohere_style_input_type() -> None:
    def task(**extra: object) -> str | None:
        return wire.task_type(EmbeddingRequest(model="e", inputs=["x"], extra=dict(extra)))

    assert task(task_type="semantic_similarity") == "SEMANTIC_SIMILARITY"
    assert task(input_type="search_document") == "RETRIEVAL_DOCUMENT"
    assert task(input_type="classification") == "CLASSIFICATION"
    assert task() is None


def test_vertex_prediction_without_statistics_is_estimated() -> None:
    got = wire.parse_predict({"predictions": [{"embeddings": {"values": [0.5]}}]}, ["three little words"])
    assert got.usage.input_tokens == estimate_embedding_tokens(["three little words"])
    with pytest.raises(UpstreamError, match="no embeddings"):
        wire.parse_predict({"predictions": [{}]}, ["x"])

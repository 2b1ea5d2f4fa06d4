"""Embeddings on Vertex AI: Google's embedding models at `:predict` with the service account's
token; 250 instances a call, one a call (fanned out) for gemini-embedding models; in input order,
usage from each prediction's `statistics.token_count`."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from upstreams import Fault
from upstreams.embeddings import tokens_of, vector_for
from upstreams.vertex_server import VertexUpstream

from keeprouter.config import EndpointConfig, Pricing, Timeouts, parse_config
from keeprouter.errors import UpstreamError
from keeprouter.formats.embeddings import EmbeddingRequest
from keeprouter.providers import build_adapter
from keeprouter.providers.retrieval import chunks_of, input_tokens
from keeprouter.providers.vertex import VertexAdapter

ROOT = "/v1/projects/test-project/locations/us-east5/publishers/google/models"


def ep(model: str) -> EndpointConfig:
    return EndpointConfig("vx", model, Pricing(Decimal(1), Decimal(0)), frozenset(), 2048, None, Timeouts())


def adapter(up: VertexUpstream, **keys: Any) -> VertexAdapter:
    raw = {"api": "vertex", "project": "test-project", "location": "us-east5", "base_url": up.url, **keys}
    a = build_adapter(parse_config({"providers": {"vx": raw}}, env={}).providers["vx"])
    assert isinstance(a, VertexAdapter)
    return a


async def test_text_embedding_model_batches_of_250(vertex_upstream: VertexUpstream, key_file: Path) -> None:
    texts = [f"passage {i} of the corpus" for i in range(300)]
    a = adapter(vertex_upstream, credentials=str(key_file))
    req = EmbeddingRequest(model="e", inputs=[*texts], dimensions=12, extra={"input_type": "search_document"})
    try:
        resp = await a.embed(req, ep("text-embedding-005"), {})
    finally:
        await a.close()
    assert resp.vectors == [vector_for(t, 12) for t in texts]
    assert resp.usage.input_tokens == sum(tokens_of(t) for t in texts)
    calls = [r for r in vertex_upstream.requests if r.path.endswith(":predict")]
    assert sorted(len(r.body["instances"]) for r in calls) == [50, 250]
    assert {r.path for r in calls} == {f"{ROOT}/text-embedding-005:predict"}
    assert calls[0].body["parameters"] == {"outputDimensionality": 12}
    assert {i["task_type"] for r in calls for i in r.body["instances"]} == {"RETRIEVAL_DOCUMENT"}
    assert all((r.header("authorization") or "").startswith("Bearer ya29.") for r in calls)


async def test_gemini_embedding_one_instance_a_call_in_order(vertex_upstream: VertexUpstream, key_file: Path) -> None:
    texts = [f"short text {i}" for i in range(9)]
    a = adapter(vertex_upstream, credentials=str(key_file))
    try:
        resp = await a.embed(EmbeddingRequest(model="e", inputs=[*texts]), ep("gemini-embedding-001"), {})
    finally:
        await a.close()
    assert resp.vectors == [vector_for(t) for t in texts]
    calls = [r for r in vertex_upstream.requests if r.path.endswith(":predict")]
    assert len(calls) == 9 and all(len(r.body["instances"]) == 1 for r in calls)
    assert vertex_upstream.grants == 1  # one token for the whole fan-out


async def test_express_key(vertex_upstream: VertexUpstream) -> None:
    a = adapter(vertex_upstream, api_key=vertex_upstream.express_key)
    try:
        resp = await a.embed(EmbeddingRequest(model="e", inputs=["hello"]), ep("text-embedding-005"), {})
    finally:
        await a.close()
    assert resp.vectors == [vector_for("hello")]
    assert vertex_upstream.requests[-1].path == "/v1/publishers/google/models/text-embedding-005:predict"


async def test_errors(vertex_upstream: VertexUpstream, key_file: Path) -> None:
    a = adapter(vertex_upstream, credentials=str(key_file))
    vertex_upstream.script(Fault(status=429))
    try:
        with pytest.raises(UpstreamError) as limited:
            await a.embed(EmbeddingRequest(model="e", inputs=["x"]), ep("text-embedding-005"), {})
        with pytest.raises(UpstreamError) as claude:
            await a.embed(EmbeddingRequest(model="e", inputs=["x"]), ep("claude-sonnet-4-5@20250929"), {})
    finally:
        await a.close()
    assert limited.value.status == 429 and limited.value.retryable
    assert "not an embedding model" in claude.value.message


async def test_text_embedding_calls_stay_under_the_token_limit(vertex_upstream: VertexUpstream, key_file: Path) -> None:
    # 250 passages of 300 tokens are 75,000 tokens: one call of 250 is Vertex's 400 (20,000 a call)
    texts = [f"passage {i} " + "word " * 298 for i in range(250)]
    a = adapter(vertex_upstream, credentials=str(key_file))
    try:
        resp = await a.embed(EmbeddingRequest(model="e", inputs=[*texts]), ep("text-embedding-005"), {})
    finally:
        await a.close()
    assert resp.vectors == [vector_for(t) for t in texts]
    assert resp.usage.input_tokens == sum(tokens_of(t) for t in texts)
    calls = [r for r in vertex_upstream.requests if r.path.endswith(":predict")]
    assert len(calls) > 1 and sum(len(r.body["instances"]) for r in calls) == 250
    assert all(sum(tokens_of(i["content"]) for i in r.body["instances"]) <= 20_000 for r in calls)


def test_chunks_are_cut_by_count_and_by_estimated_tokens() -> None:
    long, short = "x" * 4000, "y"  # about 1,000 tokens, and 1
    assert chunks_of([short] * 5, 2, 100, input_tokens) == [[short] * 2, [short] * 2, [short]]
    assert [len(c) for c in chunks_of([long] * 5, 250, 2500, input_tokens)] == [2, 2, 1]
    assert chunks_of([long * 10, short], 250, 2500, input_tokens) == [[long * 10], [short]]  # over it: alone
    assert chunks_of([[1] * 600, [2] * 600, [3]], 250, 1000, input_tokens) == [[[1] * 600], [[2] * 600, [3]]]

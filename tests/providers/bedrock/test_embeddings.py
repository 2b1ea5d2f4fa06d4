"""Embeddings on Bedrock through InvokeModel, every call SigV4-signed and checked by the emulator:
Titan one text a call (fanned out, answered in input order), Cohere 96 texts a call with its token
count from the answer's header; what a model cannot take is refused before any call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio
from upstreams import Fault
from upstreams.bedrock_server import ACCESS_KEY, REGION, SECRET_KEY, BedrockUpstream
from upstreams.embeddings import tokens_of, vector_for

from keeprouter.config import EndpointConfig, Pricing, ProviderConfig, Timeouts
from keeprouter.errors import UpstreamError
from keeprouter.formats.embeddings import EmbeddingRequest, estimate_embedding_tokens
from keeprouter.providers.bedrock import BedrockAdapter
from keeprouter.providers.bedrock import embeddings as emb

TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"
COHERE_V4 = "us.cohere.embed-v4:0"
TOKEN = "X-Amzn-Bedrock-Input-Token-Count"


def ep(model: str) -> EndpointConfig:
    return EndpointConfig("bd", model, Pricing(Decimal(1), Decimal(0)), frozenset(), 8192, None, Timeouts())


@pytest_asyncio.fixture
async def adapter(bedrock_upstream: BedrockUpstream) -> AsyncIterator[BedrockAdapter]:
    options = {"region": REGION, "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}
    a = BedrockAdapter(ProviderConfig("bd", "bedrock", bedrock_upstream.url, None, Timeouts(), options=options))
    yield a
    await a.close()


async def test_titan_one_text_a_call_in_input_order(adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream) -> None:
    texts = [f"titan input {i} " + "word " * i for i in range(12)]
    resp = await adapter.embed(EmbeddingRequest(model="e", inputs=[*texts], dimensions=256), ep(TITAN), {})
    assert resp.vectors == [vector_for(t, 256) for t in texts]
    assert resp.usage.input_tokens == sum(tokens_of(t) for t in texts)
    calls = bedrock_upstream.requests
    assert len(calls) == 12 and {r.path for r in calls} == {f"/model/{TITAN}/invoke"}
    assert sorted(r.body["inputText"] for r in calls) == sorted(texts)
    assert all(r.body["dimensions"] == 256 for r in calls)
    assert all((r.header("authorization") or "").startswith("AWS4-HMAC-SHA256") for r in calls)


async def test_cohere_batches_of_96(adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream) -> None:
    texts = [f"doc {i} text" for i in range(200)]
    req = EmbeddingRequest(model="e", inputs=[*texts], extra={"input_type": "search_query", "truncate": "END"})
    resp = await adapter.embed(req, ep(COHERE), {})
    assert resp.vectors == [vector_for(t) for t in texts]
    assert resp.usage.input_tokens == sum(tokens_of(t) for t in texts)  # from the token-count header
    calls = bedrock_upstream.requests
    assert sorted(len(r.body["texts"]) for r in calls) == [8, 96, 96]
    assert {(r.body["input_type"], r.body["truncate"]) for r in calls} == {("search_query", "END")}


async def test_cohere_defaults_and_v4_dimensions(adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream) -> None:
    await adapter.embed(EmbeddingRequest(model="e", inputs=["a doc"]), ep(COHERE), {})
    assert bedrock_upstream.requests[-1].body == {"texts": ["a doc"], "input_type": "search_document"}
    resp = await adapter.embed(EmbeddingRequest(model="e", inputs=["a doc"], dimensions=8), ep(COHERE_V4), {})
    assert resp.vectors == [vector_for("a doc", 8)]
    assert bedrock_upstream.requests[-1].path == "/model/us.cohere.embed-v4:0/invoke"


async def test_refused_before_any_call(adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream) -> None:
    with pytest.raises(UpstreamError) as dims:
        await adapter.embed(EmbeddingRequest(model="e", inputs=["x"], dimensions=8), ep(COHERE), {})
    with pytest.raises(UpstreamError) as tokens:
        await adapter.embed(EmbeddingRequest(model="e", inputs=[[1, 2]]), ep(TITAN), {})
    with pytest.raises(UpstreamError) as unknown:
        await adapter.embed(EmbeddingRequest(model="e", inputs=["x"]), ep("amazon.nova-lite-v1:0"), {})
    assert dims.value.status == 400 and "dimensions" in dims.value.message
    assert tokens.value.retryable and unknown.value.retryable
    assert not bedrock_upstream.requests


async def test_a_failed_call_fails_the_request(adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream) -> None:
    bedrock_upstream.script(Fault(status=429))
    with pytest.raises(UpstreamError) as caught:
        await adapter.embed(EmbeddingRequest(model="e", inputs=["a", "b", "c"]), ep(TITAN), {})
    assert caught.value.status == 429


async def test_a_bad_signature_is_refused(bedrock_upstream: BedrockUpstream) -> None:
    options = {"region": REGION, "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": "not-the-secret"}
    a = BedrockAdapter(ProviderConfig("bd", "bedrock", bedrock_upstream.url, None, Timeouts(), options=options))
    try:
        with pytest.raises(UpstreamError) as caught:
            await a.embed(EmbeddingRequest(model="e", inputs=["x"]), ep(TITAN), {})
    finally:
        await a.close()
    assert "rejected KeepRouter's credentials" in caught.value.message  # ours, never the caller's 4xx


def test_cohere_answers_by_type_and_without_a_token_header() -> None:
    by_type = {"embeddings": {"float": [[0.5, 0.25]], "int8": [[1, 2]]}, "response_type": "embeddings_by_type"}
    got = emb.parse_cohere(by_type, {}, ["two words"])
    assert got.vectors == [[0.5, 0.25]]
    assert got.usage.input_tokens == estimate_embedding_tokens(["two words"])  # no header: our estimate
    with pytest.raises(UpstreamError, match="1 vectors for 2 texts"):
        emb.parse_cohere({"embeddings": [[0.5]]}, {TOKEN: "3"}, ["a", "b"])


async def test_titan_g1_is_sent_input_text_alone(adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream) -> None:
    g1 = "amazon.titan-embed-text-v1"
    resp = await adapter.embed(EmbeddingRequest(model="e", inputs=["one text"]), ep(g1), {})
    assert resp.vectors == [vector_for("one text")]
    assert bedrock_upstream.requests[-1].body == {"inputText": "one text"}
    sent = len(bedrock_upstream.requests)
    with pytest.raises(UpstreamError) as dims:  # G1 has one size: refused here, not by a 400 upstream
        await adapter.embed(EmbeddingRequest(model="e", inputs=["x"], dimensions=256), ep(g1), {})
    assert dims.value.status == 400 and "dimensions" in dims.value.message
    assert len(bedrock_upstream.requests) == sent


async def test_cohere_embedding_types_keep_the_floats(
    adapter: BedrockAdapter, bedrock_upstream: BedrockUpstream
) -> None:
    # Cohere answers only the types asked for; the floats are the ones the caller gets back
    req = EmbeddingRequest(model="e", inputs=["a doc", "b doc"], extra={"embedding_types": ["int8"]})
    resp = await adapter.embed(req, ep(COHERE), {})
    assert resp.vectors == [vector_for("a doc"), vector_for("b doc")]
    assert bedrock_upstream.requests[-1].body["embedding_types"] == ["int8", "float"]

"""Embeddings and rerank calls to an OpenAI-compatible host (the emulator): batches in order,
refusals learned once, answers parsed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
from upstreams import Fault, OpenAIUpstream
from upstreams.embeddings import render_rerank, vector_for

from keeprouter.clients.cohere_rerank.request import parse_request
from keeprouter.config import EndpointConfig, Pricing, ProviderConfig, Timeouts
from keeprouter.errors import UpstreamError
from keeprouter.formats.embeddings import EmbeddingRequest, RerankRequest
from keeprouter.providers.openai.embeddings import token_budget_for
from keeprouter.providers.openai.retrieval import RetrievalCalls
from keeprouter.providers.transport import Transport

EP = EndpointConfig("up", "emb-up", Pricing(Decimal(1), Decimal(0)), frozenset(), 8192, None, Timeouts(first_byte=5))


@pytest.fixture
async def calls() -> AsyncIterator[Callable[[OpenAIUpstream], RetrievalCalls]]:
    made: list[Transport] = []

    def make(server: OpenAIUpstream) -> RetrievalCalls:
        provider = ProviderConfig("up", "openai", server.url, server.expected_key)
        transport = Transport(provider)
        made.append(transport)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {server.expected_key}"}
        return RetrievalCalls(provider, transport, headers)

    yield make
    for t in made:
        await t.close()


async def test_embed_in_batches_reassembled_in_order(make_openai_upstream: Any, calls: Any) -> None:
    server = await make_openai_upstream(embeddings_reversed=True)
    c = calls(server)
    c.batch_limit = 3
    texts = [f"text number {i}" for i in range(8)]
    resp = await c.embed(EmbeddingRequest(model="emb", inputs=list(texts), dimensions=8), EP)
    assert resp.vectors == [vector_for(t, 8) for t in texts]
    assert resp.usage.input_tokens == 3 * 8
    assert sorted(len(r.body["input"]) for r in server.requests) == [2, 3, 3]  # sent at once: any order
    assert all(r.body["model"] == "emb-up" and "encoding_format" not in r.body for r in server.requests)


async def test_voyage_is_sent_its_own_body_in_batches_of_1000(make_openai_upstream: Any, calls: Any) -> None:
    server = await make_openai_upstream(embeddings_dialect="voyage")
    c = calls(server)
    c.embedding_dialect, c.batch_limit = "voyage", 1000  # what api.voyageai.com's base_url gives
    texts = [f"t{i}" for i in range(1001)]
    req = EmbeddingRequest(model="emb", inputs=list(texts), dimensions=8, user="u", encoding_format="base64")
    resp = await c.embed(req, EP)
    assert resp.vectors == [vector_for(t, 8) for t in texts]
    assert resp.usage.input_tokens == 1001  # Voyage's usage.total_tokens
    assert sorted(len(r.body["input"]) for r in server.requests) == [1, 1000]  # sent at once: any order
    assert all(set(r.body) == {"model", "input", "output_dimension"} for r in server.requests)


async def test_token_ids_are_not_sent_to_voyage(make_openai_upstream: Any, calls: Any) -> None:
    server = await make_openai_upstream(embeddings_dialect="voyage")
    c = calls(server)
    c.embedding_dialect = "voyage"
    with pytest.raises(UpstreamError) as caught:  # retryable: another endpoint may take token ids
        await c.embed(EmbeddingRequest(model="emb", inputs=[[1, 2, 3]]), EP)
    assert caught.value.retryable and "token ids" in caught.value.message
    assert not server.requests


async def test_mistral_is_sent_output_dimension_and_no_user(make_openai_upstream: Any, calls: Any) -> None:
    server = await make_openai_upstream(embeddings_dialect="mistral")
    c = calls(server)
    req = EmbeddingRequest(model="emb", inputs=["a", "b"], dimensions=8, user="u")
    with pytest.raises(UpstreamError) as caught:  # OpenAI's spelling: Mistral's extra_forbidden
        await c.embed(req, EP)
    assert caught.value.status == 422
    c.embedding_dialect = "mistral"  # what api.mistral.ai's base_url gives
    resp = await c.embed(req, EP)
    assert resp.vectors == [vector_for("a", 8), vector_for("b", 8)]
    assert server.requests[-1].body == {"model": "emb-up", "input": ["a", "b"], "output_dimension": 8}


async def test_voyage_refuses_openais_spelling(make_openai_upstream: Any, calls: Any) -> None:
    server = await make_openai_upstream(embeddings_dialect="voyage")
    c = calls(server)  # an OpenAI-dialect body (`dimensions`) to a Voyage host: refused, as Voyage does
    with pytest.raises(UpstreamError) as caught:
        await c.embed(EmbeddingRequest(model="emb", inputs=["a"], dimensions=8), EP)
    assert caught.value.status == 400 and "dimensions" in caught.value.message


async def test_openai_calls_stay_under_its_request_token_limit(make_openai_upstream: Any, calls: Any) -> None:
    # OpenAI's 300,000 tokens a request, at a tenth of the scale (a 1.2 MB body is not a unit test):
    # 40 inputs of 800 tokens are 32,000, over a 30,000 limit however few the inputs
    assert token_budget_for("https://api.openai.com/v1") == 225_000  # 300,000 less a quarter
    server = await make_openai_upstream(embeddings_max_tokens=30_000)
    c = calls(server)
    texts = [f"doc{i} " + "word " * 799 for i in range(40)]
    with pytest.raises(UpstreamError) as caught:
        await c.embed(EmbeddingRequest(model="emb", inputs=list(texts)), EP)
    assert caught.value.status == 400 and "tokens per request" in caught.value.message
    c.token_budget = 22_500  # the same quarter in hand
    resp = await c.embed(EmbeddingRequest(model="emb", inputs=list(texts)), EP)
    assert resp.vectors == [vector_for(t) for t in texts]
    sent = [r.body["input"] for r in server.requests[1:]]
    assert len(sent) > 1 and [t for body in sent for t in body] == texts
    assert all(sum(len(t.split()) for t in body) <= 30_000 for body in sent)


async def test_a_batch_refusal_is_learned_once(make_openai_upstream: Any, calls: Any) -> None:
    server = await make_openai_upstream(embeddings_max_batch=2)
    c = calls(server)
    texts = ["a", "b", "c", "d", "e"]
    first = await c.embed(EmbeddingRequest(model="emb", inputs=list(texts)), EP)
    assert first.vectors == [vector_for(t) for t in texts]
    assert c.batch_limit == 2
    sent = len(server.requests)
    await c.embed(EmbeddingRequest(model="emb", inputs=list(texts)), EP)
    assert len(server.requests) - sent == 3  # batched from the start now


async def test_a_failed_batch_fails_the_call(make_openai_upstream: Any, calls: Any) -> None:
    server = await make_openai_upstream()
    c = calls(server)
    c.batch_limit = 1
    server.script(Fault(status=500))
    with pytest.raises(UpstreamError) as caught:
        await c.embed(EmbeddingRequest(model="emb", inputs=["a", "b"]), EP)
    assert caught.value.retryable


async def test_rerank_through_the_host(openai_upstream: OpenAIUpstream, calls: Any) -> None:
    c = calls(openai_upstream)
    docs = ["the cat sat", "a dog ran", "the cat and the dog"]
    resp = await c.rerank(RerankRequest(model="r", query="cat dog", documents=docs, top_n=2), EP)
    assert [(r.index, r.relevance_score) for r in resp.results] == [(2, 1.0), (0, 0.5)]
    assert resp.usage.input_tokens == 3 * 2 + 3 + 3 + 5
    sent = openai_upstream.requests[-1].body
    assert sent == {"model": "emb-up", "query": "cat dog", "documents": docs, "top_n": 2}


async def test_a_rerank_refusal_other_than_the_dialect_is_passed_on(
    openai_upstream: OpenAIUpstream, calls: Any
) -> None:
    c = calls(openai_upstream)
    openai_upstream.script(Fault(status=400, body={"error": {"message": "bad query"}}))
    with pytest.raises(UpstreamError) as caught:
        await c.rerank(RerankRequest(model="r", query="q", documents=["a"]), EP)
    assert caught.value.status == 400 and c.dialect == "cohere"


async def test_a_tei_host_is_learned_from_its_refusal(make_openai_upstream: Any, calls: Any) -> None:
    server = await make_openai_upstream(rerank_tei=True)
    c = calls(server)
    docs = ["dog", "the cat", "cat"]
    for _ in range(2):
        resp = await c.rerank(RerankRequest(model="r", query="cat", documents=docs, top_n=1), EP)
        assert {r.index for r in resp.results if r.relevance_score == 1.0} == {1, 2}
    assert c.dialect == "tei"
    assert [list(r.body) for r in server.requests] == [
        ["model", "query", "documents", "top_n"],
        ["query", "texts", "truncate"],
        ["query", "texts", "truncate"],
    ]


async def test_tei_is_told_to_truncate_long_documents(make_openai_upstream: Any, calls: Any) -> None:
    # Cohere's contract truncates long documents; TEI refuses them (413) unless `truncate` is true
    server = await make_openai_upstream(rerank_tei=True)
    c = calls(server)
    c.dialect = "tei"
    docs = ["cat " + "word " * 600, "dog"]
    resp = await c.rerank(RerankRequest(model="r", query="cat", documents=docs), EP)
    assert [(r.index, r.relevance_score) for r in resp.results] == [(0, 1.0), (1, 0.0)]
    assert server.requests[-1].body["truncate"] is True


async def test_a_voyage_style_client_request_reaches_a_strict_cohere_host(
    make_openai_upstream: Any, calls: Any
) -> None:
    # Cohere refuses a field it does not know (422 on top_k); the client's top_k is the cut here
    server = await make_openai_upstream(rerank_cohere=True)
    c = calls(server)
    docs = ["the cat sat", "a dog ran", "the cat and the dog"]
    req = parse_request({"model": "r", "query": "cat dog", "documents": docs, "top_k": 1, "priority": 2})
    resp = await c.rerank(req, EP)
    assert [(r.index, r.relevance_score) for r in resp.results] == [(2, 1.0)]
    assert resp.search_units == 1
    assert server.requests[-1].body == {
        "model": "emb-up",
        "query": "cat dog",
        "documents": docs,
        "top_n": 1,
        "priority": 2,
    }
    with pytest.raises(UpstreamError) as caught:
        await c.rerank(RerankRequest(model="r", query="q", documents=docs, extra={"top_k": 1}), EP)
    assert caught.value.status == 422 and "top_k" in caught.value.message


async def test_tei_reranks_more_documents_than_its_batch_in_parts(make_openai_upstream: Any, calls: Any) -> None:
    # TEI ranks at most --max-client-batch-size texts a request (32 by default), refused with a 413
    server = await make_openai_upstream(rerank_tei=True, rerank_max_batch=4)
    c = calls(server)
    docs = [f"doc {i}" + (" cat" if i % 3 == 0 else "") for i in range(10)]
    for _ in range(2):
        resp = await c.rerank(RerankRequest(model="r", query="cat", documents=docs, top_n=3), EP)
        assert {r.index for r in resp.results if r.relevance_score == 1.0} == {0, 3, 6, 9}
        assert sorted(r.index for r in resp.results) == sorted({r.index for r in resp.results})
    assert (c.dialect, c.rerank_batch) == ("tei", 4)
    sizes = [len(r.body.get("texts", r.body.get("documents", []))) for r in server.requests]
    assert sizes[:2] == [10, 10]  # Cohere's body refused, then TEI's refused as too large
    assert sorted(sizes[2:5]) == [2, 4, 4] and sorted(sizes[5:]) == [2, 4, 4]  # learned once


async def test_jina_is_asked_not_to_send_the_documents_back(openai_upstream: OpenAIUpstream, calls: Any) -> None:
    c = calls(openai_upstream)
    c.dialect = "jina"  # what api.jina.ai's base_url gives; the emulator defaults as Jina does
    docs = ["the cat sat", "a dog ran"]
    resp = await c.rerank(RerankRequest(model="r", query="cat", documents=docs), EP)
    assert [r.index for r in resp.results] == [0, 1]
    assert openai_upstream.requests[-1].body["return_documents"] is False
    answered = render_rerank(openai_upstream.requests[-1].body, "r", tei=False)  # what the host sent back
    assert all("document" not in r for r in answered["results"])

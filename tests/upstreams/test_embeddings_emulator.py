"""The emulated `/embeddings` and `/rerank` speak the real wire formats: the official SDK, pointed
straight at the emulator, gets deterministic vectors it can recompute."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from upstreams import Fault, OpenAIUpstream
from upstreams.embeddings import DEFAULT_DIMS, score, vector_for


def oai(server: OpenAIUpstream) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url, api_key=server.expected_key, max_retries=0)


async def test_sdk_embeddings_float_and_default_base64(openai_upstream: OpenAIUpstream) -> None:
    async with oai(openai_upstream) as client:
        texts = ["one two", "three", "four five six"]
        floats = await client.embeddings.create(model="emb", input=texts, encoding_format="float")
        default = await client.embeddings.create(model="emb", input=texts)  # the SDK asks for base64
    assert [d.embedding for d in floats.data] == [vector_for(t) for t in texts]
    assert [d.embedding for d in default.data] == [vector_for(t) for t in texts]
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == 6
    assert len(floats.data[0].embedding) == DEFAULT_DIMS


async def test_token_ids_and_dimensions(openai_upstream: OpenAIUpstream) -> None:
    async with oai(openai_upstream) as client:
        out = await client.embeddings.create(model="emb", input=[[1, 2], [3]], dimensions=40, encoding_format="float")
    assert [d.embedding for d in out.data] == [vector_for([1, 2], 40), vector_for([3], 40)]
    assert out.usage.prompt_tokens == 3


async def test_reversed_host_orders_by_index_only(make_openai_upstream: Any) -> None:
    server = await make_openai_upstream(embeddings_reversed=True)
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{server.url}/embeddings",
            json={"model": "e", "input": ["a", "b"]},
            headers={"Authorization": f"Bearer {server.expected_key}"},
        )
    assert [d["index"] for d in r.json()["data"]] == [1, 0]


async def test_embedding_refusals(make_openai_upstream: Any) -> None:
    server = await make_openai_upstream(embeddings_max_batch=2)
    headers = {"Authorization": f"Bearer {server.expected_key}"}
    async with httpx.AsyncClient() as http:
        too_many = await http.post(
            f"{server.url}/embeddings", json={"model": "e", "input": ["a", "b", "c"]}, headers=headers
        )
        empty = await http.post(f"{server.url}/embeddings", json={"model": "e", "input": ""}, headers=headers)
        no_key = await http.post(f"{server.url}/embeddings", json={"model": "e", "input": "a"})
        server.script(Fault(status=503))
        scripted = await http.post(f"{server.url}/embeddings", json={"model": "e", "input": "a"}, headers=headers)
    assert too_many.status_code == 413 and "maximum allowed batch size 2" in too_many.json()["error"]["message"]
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "input"
    assert no_key.status_code == 401
    assert scripted.status_code == 503


async def test_rerank_vllm_shape(openai_upstream: OpenAIUpstream) -> None:
    docs = ["the cat sat", "a dog ran", "the cat and the dog"]
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{openai_upstream.url}/rerank",
            json={"model": "r", "query": "cat dog", "documents": docs, "top_n": 2},
            headers={"Authorization": f"Bearer {openai_upstream.expected_key}"},
        )
    body = r.json()
    assert [x["index"] for x in body["results"]] == [2, 0]
    assert body["results"][0] == {"index": 2, "relevance_score": 1.0, "document": {"text": docs[2]}}
    assert body["results"][1]["relevance_score"] == score("cat dog", docs[0]) == 0.5
    assert body["usage"]["total_tokens"] == 3 * 2 + 3 + 3 + 5


@pytest.mark.parametrize("tei_body", [False, True])
async def test_rerank_tei_dialect(make_openai_upstream: Any, tei_body: bool) -> None:
    server = await make_openai_upstream(rerank_tei=True)
    body: dict[str, Any] = (
        {"query": "cat", "texts": ["dog", "cat"]}
        if tei_body
        else {"model": "r", "query": "cat", "documents": ["dog", "cat"]}
    )
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{server.url}/rerank", json=body, headers={"Authorization": f"Bearer {server.expected_key}"}
        )
    if tei_body:
        assert r.json() == [{"index": 1, "score": 1.0}, {"index": 0, "score": 0.0}]
    else:
        # axum's JSON rejection: plain text, as TEI answers it (not an OpenAI error object)
        assert r.status_code == 422 and "missing field `texts`" in r.text
        assert r.headers["content-type"].startswith("text/plain")

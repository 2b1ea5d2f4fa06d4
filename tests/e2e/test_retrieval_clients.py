"""Acceptance: the retrieval libraries users already have, unmodified, against the gateway:
LangChain's `OpenAIEmbeddings`, LlamaIndex's `OpenAILikeEmbedding` (both over `/v1/embeddings`) and
the `cohere` SDK's v2 client (`/v2/rerank`), each pointed at the gateway by its base URL alone.

Only the async methods are used: the gateway and the emulated upstream run on the test's event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import cohere
import openai
import pytest
import pytest_asyncio
from langchain_openai import OpenAIEmbeddings
from llama_index.embeddings.openai_like import OpenAILikeEmbedding
from pydantic import SecretStr
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url
from upstreams import OpenAIUpstream
from upstreams.embeddings import score, vector_for

PRICE = Decimal("0.02")  # USD per 1M input tokens
TEXTS = [f"chunk {i} of a document about cats and dogs" for i in range(25)]
DOCS = ["the cat sat on the mat", "dogs chase cats", "a cat and a dog play", "nothing here"]


@dataclass
class Stack:
    gw: RunningGateway
    key: str
    up: OpenAIUpstream

    def embedded(self) -> list[str]:
        """Every text the upstream was asked to embed, in the order the requests arrived."""
        return [t for r in self.up.requests if r.path.endswith("/embeddings") for t in r.body["input"]]


@pytest_asyncio.fixture
async def stack(openai_upstream: OpenAIUpstream, tmp_path: Path) -> AsyncIterator[Stack]:
    def model(modality: str, upstream_model: str) -> dict[str, Any]:
        endpoint = {"provider": "up", "model": upstream_model, "pricing": {"input": float(PRICE)}}
        return {"modality": modality, "endpoints": [endpoint]}

    up = {"api": "openai", "base_url": openai_upstream.url, "api_key": openai_upstream.expected_key}
    cfg = {
        "database": sqlite_url(tmp_path),
        "admin_key": ADMIN_KEY,
        "providers": {"up": up},
        "models": {"emb-test": model("text->embedding", "up-emb"), "rr-test": model("text->rerank", "up-rr")},
    }
    async with run_gateway(cfg) as gw:
        yield Stack(gw, (await gw.create_key("retrieval"))["key"], openai_upstream)


async def test_langchain_openai_embeddings(stack: Stack) -> None:
    # check_embedding_ctx_length=False: LangChain's documented setting for a non-OpenAI model name
    # (otherwise it tokenizes with tiktoken, whose vocabulary it downloads, and sends token ids).
    # Our own HTTP client, closed on this loop (the one LangChain would make is closed at exit,
    # when the test's loop is gone).
    async with openai.DefaultAsyncHttpxClient() as http:
        emb = OpenAIEmbeddings(
            model="emb-test",
            base_url=stack.gw.openai_base,
            api_key=SecretStr(stack.key),
            check_embedding_ctx_length=False,
            chunk_size=10,  # its own batching: three requests, each answered in order
            max_retries=0,
            http_async_client=http,
        )
        docs = await emb.aembed_documents(TEXTS)
        query = await emb.aembed_query("which animal sat on the mat?")
    assert docs == [vector_for(t) for t in TEXTS]
    assert query == vector_for("which animal sat on the mat?")
    assert stack.embedded() == [*TEXTS, "which animal sat on the mat?"]


async def test_llamaindex_openai_like_embedding(stack: Stack) -> None:
    async with openai.DefaultAsyncHttpxClient() as http:  # closed on this loop, as LangChain's above
        emb = OpenAILikeEmbedding(
            model_name="emb-test",
            api_base=stack.gw.openai_base,
            api_key=stack.key,
            embed_batch_size=8,
            max_retries=0,
            async_http_client=http,
        )
        docs = await emb.aget_text_embedding_batch(TEXTS)
        query = await emb.aget_query_embedding("cats")
    assert docs == [vector_for(t) for t in TEXTS]
    assert query == vector_for("cats")
    # its batches go out at once, so they reach the upstream in either order (the answers' order is
    # checked above); the query comes after them
    embedded = stack.embedded()
    assert sorted(embedded[:-1]) == sorted(TEXTS) and embedded[-1] == "cats"


async def test_cohere_v2_rerank(stack: Stack) -> None:
    query = "cat dog"
    async with cohere.AsyncClientV2(base_url=stack.gw.url, api_key=stack.key) as client:  # posts /v2/rerank
        out = await client.rerank(model="rr-test", query=query, documents=DOCS, top_n=2)
    expected = sorted(range(len(DOCS)), key=lambda i: (-score(query, DOCS[i]), i))[:2]
    assert [r.index for r in out.results] == expected
    assert [r.relevance_score for r in out.results] == [score(query, DOCS[i]) for i in expected]
    assert out.meta is not None and out.meta.billed_units is not None
    assert out.meta.billed_units.search_units == 1
    assert stack.up.requests[-1].path == "/v1/rerank"
    assert stack.up.requests[-1].body["documents"] == DOCS


async def test_cohere_v2_errors_are_raised_by_the_sdk(stack: Stack) -> None:
    async with cohere.AsyncClientV2(base_url=stack.gw.url, api_key="sk-kr-not-a-key") as client:
        with pytest.raises(cohere.UnauthorizedError):
            await client.rerank(model="rr-test", query="q", documents=DOCS)
    async with cohere.AsyncClientV2(base_url=stack.gw.url, api_key=stack.key) as client:
        with pytest.raises(cohere.BadRequestError) as caught:
            await client.rerank(model="emb-test", query="q", documents=DOCS)
    assert "text->embedding" in str(caught.value.body)
    assert not [r for r in stack.up.requests if r.path.endswith("/rerank")]

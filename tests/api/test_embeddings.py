"""`POST /v1/embeddings` and `/v1/rerank` end to end: the official `openai` SDK (float and base64)
and raw HTTP for rerank, against emulated OpenAI-compatible hosts. Order and count exact, cost
settled exactly and recorded as a generation, fallbacks, limits, credit, modality errors."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import numpy as np
import openai
import pytest
import pytest_asyncio
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url
from support.raw import loads
from upstreams import Fault, OpenAIUpstream
from upstreams.embeddings import score, tokens_of, vector_for

from keeprouter.api.http import STATE

EMB_PRICE = Decimal("0.02")  # USD per 1M tokens
RR_PRICE, RR_REQUEST = Decimal("0.05"), Decimal("0.002")
ORDER = {"provider": {"order": ["p1", "p2"]}}  # OpenRouter's routing prefs pass through embeddings too
DOCS = ["the cat sat on the mat", "dogs chase cats", "a cat and a dog play", "nothing here"]


@dataclass
class Env:
    gw: RunningGateway
    primary: OpenAIUpstream
    backup: OpenAIUpstream
    batching: OpenAIUpstream


@pytest_asyncio.fixture
async def env(make_openai_upstream: Any, tmp_path: Any) -> AsyncIterator[Env]:
    primary, backup = await make_openai_upstream(), await make_openai_upstream()
    batching = await make_openai_upstream(embeddings_max_batch=3, embeddings_reversed=True)

    def provider(up: OpenAIUpstream) -> dict[str, Any]:
        return {"api": "openai", "base_url": up.url, "api_key": up.expected_key}

    def emb(pid: str) -> dict[str, Any]:
        return {"provider": pid, "model": f"up-emb-{pid}", "pricing": {"input": float(EMB_PRICE)}}

    cfg = {
        "database": sqlite_url(tmp_path),
        "admin_key": ADMIN_KEY,
        "providers": {"p1": provider(primary), "p2": provider(backup), "pb": provider(batching)},
        "models": {
            "emb-test": {"modality": "text->embedding", "context_length": 8192, "endpoints": [emb("p1"), emb("p2")]},
            "emb-batched": {"modality": "text->embedding", "context_length": 8192, "endpoints": [emb("pb")]},
            "rr-test": {
                "modality": "text->rerank",
                "endpoints": [
                    {
                        "provider": "p1",
                        "model": "up-rr",
                        "pricing": {"input": float(RR_PRICE), "request": float(RR_REQUEST)},
                    }
                ],
            },
            "chat-test": {"endpoints": [{"provider": "p1", "model": "up-chat", "pricing": {"input": 1, "output": 2}}]},
        },
    }
    async with run_gateway(cfg) as gw:
        yield Env(gw, primary, backup, batching)


async def make_key(gw: RunningGateway, **fields: Any) -> tuple[str, str]:
    async with aiohttp.ClientSession() as s:
        async with s.post(
            gw.url + "/api/v1/keys", json={"name": "emb", **fields}, headers={"Authorization": f"Bearer {gw.admin_key}"}
        ) as r:
            assert r.status == 201, await r.text()
            data = await r.json()
    return data["key"], data["data"]["hash"]


def client(gw: RunningGateway, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.openai_base, api_key=key, max_retries=0)


async def generation(gw: RunningGateway, gen_id: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s:
        async with s.get(
            gw.url + "/api/v1/generation", params={"id": gen_id}, headers={"Authorization": f"Bearer {gw.admin_key}"}
        ) as r:
            assert r.status == 200, await r.text()
            data: dict[str, Any] = loads(await r.text())["data"]
            return data


async def key_usage(gw: RunningGateway, key_hash: str) -> Decimal:
    found = await gw.server.app[STATE].store.key_usage(key_hash)
    assert found is not None
    return Decimal(found.usage)


def cost_of(tokens: int, price: Decimal) -> Decimal:
    return tokens * price / 1_000_000


async def test_sdk_float_embeddings_in_order_billed_and_recorded(env: Env) -> None:
    key, key_hash = await make_key(env.gw)
    texts = ["first text here", "second", "the third one of them"]
    async with client(env.gw, key) as c:
        raw = await c.embeddings.with_raw_response.create(
            model="emb-test", input=texts, encoding_format="float", extra_body=ORDER
        )
    out = raw.parse()
    assert [d.index for d in out.data] == [0, 1, 2]
    assert [d.embedding for d in out.data] == [vector_for(t) for t in texts]
    tokens = sum(tokens_of(t) for t in texts)
    assert out.usage.prompt_tokens == out.usage.total_tokens == tokens
    assert out.model == "emb-test"
    assert Decimal(str((out.usage.model_extra or {})["cost"])) == cost_of(tokens, EMB_PRICE)
    gen_id = raw.headers["x-generation-id"]
    assert raw.headers["x-keeprouter-provider"] == "p1"
    gen = await generation(env.gw, gen_id)
    assert gen["model"] == "emb-test" and gen["provider_name"] == "p1"
    assert gen["tokens_prompt"] == tokens and gen["tokens_completion"] == 0
    assert Decimal(str(gen["total_cost"])) == cost_of(tokens, EMB_PRICE)
    assert await key_usage(env.gw, key_hash) == cost_of(tokens, EMB_PRICE)  # settled exactly
    sent = env.primary.requests[-1]
    assert sent.path == "/v1/embeddings" and sent.body["model"] == "up-emb-p1" and sent.body["input"] == texts


async def test_sdk_default_and_explicit_base64(env: Env) -> None:
    key, _ = await make_key(env.gw)
    texts = ["alpha beta", "gamma"]
    async with client(env.gw, key) as c:
        default = await c.embeddings.create(model="emb-test", input=texts, extra_body=ORDER)  # SDK asks base64
        explicit = await c.embeddings.create(model="emb-test", input=texts, encoding_format="base64", extra_body=ORDER)
    assert [d.embedding for d in default.data] == [vector_for(t) for t in texts]
    decoded = [np.frombuffer(base64.b64decode(str(d.embedding)), dtype="<f4").tolist() for d in explicit.data]
    assert decoded == [vector_for(t) for t in texts]
    assert all("encoding_format" not in r.body for r in env.primary.requests)  # floats, the default


async def test_token_arrays_and_dimensions_are_forwarded(env: Env) -> None:
    key, _ = await make_key(env.gw)
    async with client(env.gw, key) as c:
        out = await c.embeddings.create(
            model="emb-test", input=[[1, 2, 3], [4]], dimensions=24, encoding_format="float", extra_body=ORDER
        )
    assert [d.embedding for d in out.data] == [vector_for([1, 2, 3], 24), vector_for([4], 24)]
    assert out.usage.prompt_tokens == 4
    assert env.primary.requests[-1].body["dimensions"] == 24


async def test_large_inputs_are_batched_at_the_host_limit_and_reassembled(env: Env) -> None:
    key, key_hash = await make_key(env.gw)
    texts = [f"input number {i} of many" for i in range(10)]
    async with client(env.gw, key) as c:
        out = await c.embeddings.create(model="emb-batched", input=texts, encoding_format="float")
    assert [d.embedding for d in out.data] == [vector_for(t) for t in texts]
    tokens = sum(tokens_of(t) for t in texts)
    assert out.usage.prompt_tokens == tokens
    refused, *batches = env.batching.requests  # the first, whole, was refused: the limit is learned
    assert len(refused.body["input"]) == 10
    assert sorted(len(r.body["input"]) for r in batches) == [1, 3, 3, 3]
    assert await key_usage(env.gw, key_hash) == cost_of(tokens, EMB_PRICE)


async def test_a_failing_endpoint_falls_back(env: Env) -> None:
    key, _ = await make_key(env.gw)
    env.primary.script(Fault(status=503))
    async with client(env.gw, key) as c:
        raw = await c.embeddings.with_raw_response.create(
            model="emb-test", input="hello", encoding_format="float", extra_body=ORDER
        )
    assert raw.parse().data[0].embedding == vector_for("hello")
    assert raw.headers["x-keeprouter-provider"] == "p2"
    gen = await generation(env.gw, raw.headers["x-generation-id"])
    assert gen["provider_name"] == "p2"
    assert [a["provider"] for a in gen["provider_responses"]] == ["p1"]


async def test_validation_errors_in_openais_shape(env: Env) -> None:
    key, _ = await make_key(env.gw)
    async with client(env.gw, key) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.embeddings.create(model="emb-test", input=["ok", ""])
    err = caught.value.body
    assert isinstance(err, dict) and err["param"] == "input[1]"
    assert not [r for r in env.primary.requests if r.path.endswith("/embeddings")]


async def test_modality_mismatch_is_a_400_naming_the_modality(env: Env) -> None:
    key, _ = await make_key(env.gw)
    async with client(env.gw, key) as c:
        with pytest.raises(openai.BadRequestError) as on_embeddings:
            await c.embeddings.create(model="chat-test", input="x")
        with pytest.raises(openai.BadRequestError) as on_chat:
            await c.chat.completions.create(model="emb-test", messages=[{"role": "user", "content": "hi"}])
    assert "text->text" in on_embeddings.value.message and "/v1/chat/completions" in on_embeddings.value.message
    assert "text->embedding" in on_chat.value.message and "/v1/embeddings" in on_chat.value.message
    assert not env.primary.requests


async def test_credit_and_rate_limits(env: Env) -> None:
    broke, _ = await make_key(env.gw, limit=0.0000001)
    limited, _ = await make_key(env.gw, rpm_limit=1)
    async with client(env.gw, broke) as c:
        with pytest.raises(openai.APIStatusError) as caught:
            await c.embeddings.create(model="emb-test", input=["word " * 2000] * 10)
    assert caught.value.status_code == 402
    async with client(env.gw, limited) as c:
        await c.embeddings.create(model="emb-test", input="one")
        with pytest.raises(openai.RateLimitError) as limited_out:
            await c.embeddings.create(model="emb-test", input="two")
    assert "rpm" in limited_out.value.message.lower() or "limit" in limited_out.value.message.lower()
    assert limited_out.value.response.headers.get("retry-after")


async def _rerank(gw: RunningGateway, key: str, body: dict[str, Any], path: str = "/v1/rerank") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + path, json=body, headers={"Authorization": f"Bearer {key}"}) as r:
            return r.status, {"body": loads(await r.text()), "headers": dict(r.headers)}


@pytest.mark.parametrize("path", ["/v1/rerank", "/v2/rerank", "/rerank", "/api/v1/rerank"])
async def test_rerank_sorted_cut_billed_and_recorded(env: Env, path: str) -> None:
    key, key_hash = await make_key(env.gw)
    query = "cat dog"
    status, got = await _rerank(
        env.gw, key, {"model": "rr-test", "query": query, "documents": DOCS, "top_n": 2, "return_documents": True}, path
    )
    assert status == 200, got
    body = got["body"]
    expected = sorted(range(len(DOCS)), key=lambda i: (-score(query, DOCS[i]), i))[:2]
    assert [r["index"] for r in body["results"]] == expected
    assert [r["document"]["text"] for r in body["results"]] == [DOCS[i] for i in expected]
    assert [r["relevance_score"] for r in body["results"]] == [Decimal(str(score(query, DOCS[i]))) for i in expected]
    tokens = sum(tokens_of(query) + tokens_of(d) for d in DOCS)
    cost = cost_of(tokens, RR_PRICE) + RR_REQUEST
    assert body["usage"]["total_tokens"] == tokens and body["usage"]["cost"] == cost
    assert body["meta"]["billed_units"]["search_units"] == 1
    assert body["id"] == got["headers"]["X-Generation-Id"]
    gen = await generation(env.gw, body["id"])
    assert gen["model"] == "rr-test" and gen["tokens_prompt"] == tokens
    assert Decimal(str(gen["total_cost"])) == cost
    assert await key_usage(env.gw, key_hash) == cost
    assert env.primary.requests[-1].path == "/v1/rerank"
    assert env.primary.requests[-1].body == {"model": "up-rr", "query": query, "documents": DOCS, "top_n": 2}


async def test_rerank_voyage_style_top_k_cuts_the_results(env: Env) -> None:
    key, _ = await make_key(env.gw)
    status, got = await _rerank(env.gw, key, {"model": "rr-test", "query": "cat dog", "documents": DOCS, "top_k": 1})
    assert status == 200, got
    assert len(got["body"]["results"]) == 1
    assert env.primary.requests[-1].body == {"model": "up-rr", "query": "cat dog", "documents": DOCS, "top_n": 1}


async def test_rerank_errors_carry_message_and_error(env: Env) -> None:
    key, _ = await make_key(env.gw)
    status, got = await _rerank(env.gw, key, {"model": "rr-test", "documents": DOCS})
    assert status == 400
    assert got["body"]["message"] == got["body"]["error"]["message"]
    assert got["body"]["error"]["param"] == "query"
    status, got = await _rerank(env.gw, key, {"model": "emb-test", "query": "q", "documents": DOCS})
    assert status == 400 and "text->embedding" in got["body"]["message"]
    status, got = await _rerank(env.gw, "sk-kr-nope", {"model": "rr-test", "query": "q", "documents": DOCS})
    assert status == 401 and got["body"]["message"]


async def test_models_list_shows_each_models_output_modality(env: Env) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(env.gw.url + "/api/v1/models") as r:
            models = {m["id"]: m for m in (await r.json())["data"]}
    # OpenRouter's words: an embedding model outputs "embeddings" (plural), a reranker "rerank"
    assert models["emb-test"]["architecture"]["output_modalities"] == ["embeddings"]
    assert models["emb-test"]["architecture"]["modality"] == "text->embeddings"
    assert models["rr-test"]["architecture"]["output_modalities"] == ["rerank"]
    assert models["rr-test"]["architecture"]["modality"] == "text->rerank"
    assert models["rr-test"]["pricing"]["request"] == "0.002"
    assert models["chat-test"]["architecture"]["output_modalities"] == ["text"]
    # the parameters each takes are its endpoint's, not chat's
    assert models["emb-test"]["supported_parameters"] == ["dimensions", "encoding_format", "user"]
    assert "temperature" not in models["rr-test"]["supported_parameters"]
    assert "temperature" in models["chat-test"]["supported_parameters"]
    async with aiohttp.ClientSession() as s:
        async with s.get(env.gw.url + "/v1/models") as r:  # the OpenAI SDK's list: the same objects
            listed = {m["id"]: m for m in (await r.json())["data"]}
        async with s.get(env.gw.url + "/api/v1/models/emb-test/endpoints") as r:
            endpoints = (await r.json())["data"]["endpoints"]
    assert listed["emb-test"]["architecture"] == models["emb-test"]["architecture"]
    assert listed["rr-test"]["architecture"]["output_modalities"] == ["rerank"]
    assert {tuple(e["supported_parameters"]) for e in endpoints} == {("dimensions", "encoding_format", "user")}

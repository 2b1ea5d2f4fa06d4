"""`POST /v1/embeddings` to the kinds with their own embeddings call, through the gateway with the
official `openai` SDK: Gemini (batchEmbedContents), Vertex (:predict, express key) and Bedrock
(Titan and Cohere, SigV4-signed). Order and count exact, cost exact (the upstream's token count,
or our estimate where Gemini reports none) and recorded, a failing kind falling back to another."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
import pytest_asyncio
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url
from upstreams import Fault, GeminiUpstream
from upstreams.bedrock_server import ACCESS_KEY, REGION, SECRET_KEY, BedrockUpstream
from upstreams.embeddings import tokens_of, vector_for
from upstreams.vertex_server import VertexUpstream

from keeprouter.formats.embeddings import estimate_embedding_tokens

PRICE = Decimal("0.15")  # USD per 1M input tokens
VERTEX_PLACE = {"project": "test-project", "location": "us-east5"}
AWS_KEYS = {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}
TEXTS = [f"retrieval passage {i}: " + "lorem " * (i % 7) for i in range(130)]


@dataclass
class Env:
    gw: RunningGateway
    gemini: GeminiUpstream
    vertex: VertexUpstream
    bedrock: BedrockUpstream


@pytest_asyncio.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with GeminiUpstream() as gemini, VertexUpstream() as vertex, BedrockUpstream() as bedrock:

        def model(provider: str, upstream_model: str) -> dict[str, Any]:
            endpoint = {"provider": provider, "model": upstream_model, "pricing": {"input": float(PRICE)}}
            return {"modality": "text->embedding", "context_length": 2048, "endpoints": [endpoint]}

        cfg = {
            "database": sqlite_url(tmp_path),
            "admin_key": ADMIN_KEY,
            "providers": {
                "gm": {"api": "gemini", "base_url": gemini.url, "api_key": GeminiUpstream.DEFAULT_KEY},
                "vx": {"api": "vertex", "base_url": vertex.url, "api_key": vertex.express_key, **VERTEX_PLACE},
                "bd": {"api": "bedrock", "base_url": bedrock.url, "region": REGION, **AWS_KEYS},
            },
            "models": {
                "gemini-emb": model("gm", "gemini-embedding-001"),
                "vertex-emb": model("vx", "text-embedding-005"),
                "titan-emb": model("bd", "amazon.titan-embed-text-v2:0"),
                "cohere-emb": model("bd", "cohere.embed-english-v3"),
                "either-emb": {
                    "modality": "text->embedding",
                    "context_length": 2048,
                    "endpoints": [
                        {"provider": "bd", "model": "amazon.titan-embed-text-v2:0", "pricing": {"input": 0.1}},
                        {"provider": "gm", "model": "gemini-embedding-001", "pricing": {"input": 0.2}},
                    ],
                },
            },
        }
        async with run_gateway(cfg) as gw:
            yield Env(gw, gemini, vertex, bedrock)


async def generation(gw: RunningGateway, gen_id: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s:
        async with s.get(
            gw.url + "/api/v1/generation", params={"id": gen_id}, headers={"Authorization": f"Bearer {gw.admin_key}"}
        ) as r:
            assert r.status == 200, await r.text()
            data: dict[str, Any] = (await r.json())["data"]
            return data


def reported_tokens(model: str) -> int:
    """What each upstream bills for TEXTS: Gemini reports no count, so the gateway's estimate."""
    if model == "gemini-emb":
        return estimate_embedding_tokens(list(TEXTS))
    return sum(tokens_of(t) for t in TEXTS)


@pytest.mark.parametrize("model", ["gemini-emb", "vertex-emb", "titan-emb", "cohere-emb"])
async def test_in_order_billed_and_recorded(env: Env, model: str) -> None:
    key = (await env.gw.create_key("native"))["key"]
    async with openai.AsyncOpenAI(base_url=env.gw.openai_base, api_key=key, max_retries=0) as c:
        raw = await c.embeddings.with_raw_response.create(model=model, input=TEXTS)  # the SDK asks base64
    out = raw.parse()
    assert [d.index for d in out.data] == list(range(len(TEXTS)))
    assert [d.embedding for d in out.data] == [vector_for(t) for t in TEXTS]
    tokens = reported_tokens(model)
    cost = tokens * PRICE / 1_000_000
    assert out.usage.prompt_tokens == tokens
    assert Decimal(str((out.usage.model_extra or {})["cost"])) == cost
    gen = await generation(env.gw, raw.headers["x-generation-id"])
    assert gen["model"] == model and gen["tokens_prompt"] == tokens
    assert Decimal(str(gen["total_cost"])) == cost


async def test_a_failing_kind_falls_back_to_another(env: Env) -> None:
    env.bedrock.script(Fault(status=503))  # one failed call of the Titan fan-out fails the attempt
    key = (await env.gw.create_key("native"))["key"]
    async with openai.AsyncOpenAI(base_url=env.gw.openai_base, api_key=key, max_retries=0) as c:
        raw = await c.embeddings.with_raw_response.create(
            model="either-emb", input=["one", "two"], extra_body={"provider": {"order": ["bd", "gm"]}}
        )
    assert [d.embedding for d in raw.parse().data] == [vector_for("one"), vector_for("two")]
    assert raw.headers["x-keeprouter-provider"] == "gm"


async def test_token_ids_to_a_text_only_kind_is_an_error_not_a_wrong_answer(env: Env) -> None:
    key = (await env.gw.create_key("native"))["key"]
    async with openai.AsyncOpenAI(base_url=env.gw.openai_base, api_key=key, max_retries=0) as c:
        with pytest.raises(openai.APIStatusError) as caught:
            await c.embeddings.create(model="gemini-emb", input=[[1, 2, 3]])
    assert "token ids" in caught.value.message
    assert not env.gemini.requests

"""Exact token counts where a tokenizer is shipped (issue 9 §4): `count_tokens` for an OpenAI-family
model, and metering of an upstream that reports no usage, through the real gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from support.clients import anthropic_client, openai_client
from support.gateway import RunningGateway, run_gateway, sqlite_url
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply

from keeprouter.formats.tokens import Encodings, count_text

CODE = "def fetch(url: str) -> bytes:\n\treturn urllib.request.urlopen(url).read()\n"  # 17 o200k tokens


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[OpenAIUpstream]:
    async with OpenAIUpstream(no_usage=True) as server:
        yield server


@pytest_asyncio.fixture
async def gw(upstream: OpenAIUpstream, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    ep = {
        "provider": "oa",
        "model": "gpt-4o-mini",  # the upstream's name: tiktoken's table says o200k_base
        "pricing": {"input": 1.0, "output": 2.0},
        "capabilities": ["streaming", "tools"],
    }
    cfg = {
        "database": sqlite_url(tmp_path),
        "admin_key": "sk-kr-admin-test",
        "providers": {"oa": {"api": "openai", "base_url": upstream.url, "api_key": "sk-up-openai"}},
        "models": {
            "mini": {"name": "Mini", "maker": "Test", "context_length": 128000, "endpoints": [ep]},
            # the upstream's name is a current Mistral model's: Tekken, from mistral-common's file
            "ministral": {
                "name": "Ministral",
                "maker": "Mistral",
                "context_length": 128000,
                "endpoints": [{**ep, "model": "ministral-14b-latest"}],
            },
        },
    }
    async with run_gateway(cfg) as g:
        yield g


async def generation(gw: RunningGateway, gen_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {gw.admin_key}"}
    async with aiohttp.ClientSession() as s:
        for _ in range(300):
            async with s.get(gw.url + "/api/v1/generation", params={"id": gen_id}, headers=headers) as r:
                if r.status == 200:
                    data: dict[str, Any] = (await r.json())["data"]
                    return data
            await asyncio.sleep(0.01)
    raise AssertionError(f"generation {gen_id} was never recorded")


async def test_count_tokens_is_exact_for_an_openai_family_model(gw: RunningGateway) -> None:
    async with anthropic_client(gw.url, gw.admin_key) as client:
        got = await client.messages.count_tokens(model="mini", messages=[{"role": "user", "content": CODE}])
    assert got.input_tokens == 3 + 4 + 17  # per request + per message + the text's o200k tokens
    assert count_text(CODE) != 17  # the estimate would have said otherwise


async def test_count_tokens_is_exact_for_a_mistral_model(gw: RunningGateway) -> None:
    async with anthropic_client(gw.url, gw.admin_key) as client:
        got = await client.messages.count_tokens(model="ministral", messages=[{"role": "user", "content": CODE}])
    assert got.input_tokens == 3 + 4 + 18  # CODE is 18 Tekken tokens (17 in o200k, 23 estimated)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_usage_less_upstream_is_metered_with_the_tokenizer(
    gw: RunningGateway, upstream: OpenAIUpstream, stream: bool
) -> None:
    async with anthropic_client(gw.url, gw.admin_key) as client:  # loads the tokenizer (count_tokens)
        await client.messages.count_tokens(model="mini", messages=[{"role": "user", "content": "x"}])
    upstream.script(Reply(text=CODE, chunk_size=10))
    async with openai_client(gw.url, gw.admin_key) as client:
        if stream:
            s = await client.chat.completions.create(
                model="mini", messages=[{"role": "user", "content": CODE}], stream=True
            )
            gen_id = ""
            async for chunk in s:
                gen_id = chunk.id
        else:
            done = await client.chat.completions.create(model="mini", messages=[{"role": "user", "content": CODE}])
            gen_id = done.id
    gen = await generation(gw, gen_id)
    assert gen["tokens_completion"] == 17  # the answer's exact o200k count
    assert gen["tokens_prompt"] == 3 + 4 + 17


def test_the_gateways_encodings_start_empty_and_load_on_demand() -> None:
    enc = Encodings()
    assert enc.loaded("o200k_base") is None
    assert enc.get("o200k_base").encode_ordinary(CODE) == enc.loaded("o200k_base").encode_ordinary(CODE)  # type: ignore[union-attr]

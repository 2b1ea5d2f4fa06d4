"""The `azure` kind end to end: the OpenAI Chat and Anthropic Messages SDKs -> the gateway -> the Azure
emulator, streamed and not, on the deployments API and on the v1 API. The emulator streams as Azure does
(a first chunk with empty `choices` and only `prompt_filter_results`, filter results on every choice,
annotation-only chunks of the asynchronous filter), so each answer proves those are skipped cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
import pytest_asyncio
from support.clients import anthropic_client, call_anthropic, call_openai, openai_client
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url
from upstreams.azure_server import AzureUpstream
from upstreams.script import Fault, Reply, ToolCall

DEPLOYMENT = "gpt4o-prod"
# Model id -> (provider id, the path the emulator must see).
APIS = {
    "az-deployments": ("azdep", f"/openai/deployments/{DEPLOYMENT}/chat/completions"),
    "az-v1": ("azv1", "/openai/v1/chat/completions"),
}
MODELS = list(APIS)
TOOLS_OA = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]  # fmt: skip
TOOLS_AN = [{"name": "get_weather", "description": "Weather in a city",
             "input_schema": TOOLS_OA[0]["function"]["parameters"]}]  # type: ignore[index]  # fmt: skip


@pytest_asyncio.fixture
async def up() -> AsyncIterator[AzureUpstream]:
    async with AzureUpstream(async_filter=True) as server:
        yield server


@pytest_asyncio.fixture
async def gw(up: AzureUpstream, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    def model(pid: str) -> dict[str, Any]:
        ep = {"provider": pid, "model": DEPLOYMENT, "capabilities": ["streaming", "tools"],
              "pricing": {"input": 2.5, "output": 10.0, "cache_read": 1.25}}  # fmt: skip
        return {"name": "GPT-4o on Azure", "maker": "OpenAI", "context_length": 128000, "endpoints": [ep]}

    cfg = {
        "database": sqlite_url(tmp_path),
        "admin_key": ADMIN_KEY,
        "providers": {
            # The forms operators paste: the resource root with a dated version, and the v1 base URL.
            "azdep": {
                "api": "azure",
                "base_url": up.url + "/",
                "api_key": up.expected_key,
                "api_version": "2024-10-21",
            },
            "azv1": {"api": "azure", "base_url": up.v1_url, "api_key": up.expected_key},
        },
        "models": {m: model(pid) for m, (pid, _) in APIS.items()},
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


def sent(up: AzureUpstream, model: str) -> dict[str, Any]:
    """The last request's body, after checking it went to the right API with Azure's auth."""
    rec = up.requests[-1]
    assert rec.path == APIS[model][1]
    assert rec.query == ({"api-version": "2024-10-21"} if model == "az-deployments" else {})
    assert rec.header("api-key") == up.expected_key and rec.header("authorization") is None
    assert rec.body["model"] == DEPLOYMENT
    body: dict[str, Any] = rec.body
    return body


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", MODELS)
async def test_text_usage_and_cost_from_both_clients(
    gw: RunningGateway, up: AzureUpstream, model: str, stream: bool
) -> None:
    reply = Reply(text="Hello from Azure", input_tokens=1000, cache_read=4000, output_tokens=300, reasoning_tokens=100)
    up.script(reply, reply)
    async with openai_client(gw.url, gw.admin_key) as oa:
        got = await call_openai(oa, stream, model=model, messages=[{"role": "user", "content": "Hi"}])
    assert (got.text, got.stop, got.input_tokens, got.output_tokens) == ("Hello from Azure", "end", 5000, 300)
    sent(up, model)
    gen = await generation(gw, got.id or "")
    assert (gen["native_tokens_prompt"], gen["native_tokens_completion"]) == (5000, 300)
    assert (gen["native_tokens_cached"], gen["native_tokens_reasoning"]) == (4000, 100)
    assert gen["provider_name"] == APIS[model][0]
    # 1000 uncached x 2.5 + 4000 cached x 1.25 + 300 output x 10, per 1M tokens
    assert Decimal(str(gen["total_cost"])) == Decimal("0.0105")

    async with anthropic_client(gw.url, gw.admin_key) as an:
        got = await call_anthropic(an, stream, model=model, messages=[{"role": "user", "content": "Hi"}])
    assert (got.text, got.stop, got.input_tokens, got.output_tokens) == ("Hello from Azure", "end", 5000, 300)
    sent(up, model)


STEP1 = Reply(text=None, tool_calls=[ToolCall("call_w1", "get_weather", {"city": "Paris"})])
STEP2 = Reply(text="It is sunny in Paris.")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", MODELS)
async def test_tool_round_trip_openai_client(gw: RunningGateway, up: AzureUpstream, model: str, stream: bool) -> None:
    up.script(STEP1, STEP2)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    async with openai_client(gw.url, gw.admin_key) as c:
        first = await call_openai(c, stream, model=model, messages=messages, tools=TOOLS_OA)
        assert first.stop == "tool_use" and first.tool_calls == [("call_w1", "get_weather", {"city": "Paris"})]
        call = {
            "id": "call_w1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
        messages += [{"role": "assistant", "content": None, "tool_calls": [call]},
                     {"role": "tool", "tool_call_id": "call_w1", "content": "sunny"}]  # fmt: skip
        second = await call_openai(c, stream, model=model, messages=messages, tools=TOOLS_OA)
    assert (second.text, second.stop) == ("It is sunny in Paris.", "end")
    body = sent(up, model)
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["messages"][1]["tool_calls"][0]["id"] == "call_w1"
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "call_w1", "content": "sunny"}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", MODELS)
async def test_tool_round_trip_anthropic_client(
    gw: RunningGateway, up: AzureUpstream, model: str, stream: bool
) -> None:
    up.script(STEP1, STEP2)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    async with anthropic_client(gw.url, gw.admin_key) as c:
        first = await call_anthropic(c, stream, model=model, messages=messages, tools=TOOLS_AN)
        assert first.stop == "tool_use" and first.tool_calls == [("call_w1", "get_weather", {"city": "Paris"})]
        messages += [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_w1", "name": "get_weather",
                                               "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_w1", "content": "sunny"}]},
        ]  # fmt: skip
        second = await call_anthropic(c, stream, model=model, messages=messages, tools=TOOLS_AN)
    assert (second.text, second.stop) == ("It is sunny in Paris.", "end")
    body = sent(up, model)
    assert body["messages"][1]["tool_calls"][0]["id"] == "call_w1"
    assert body["messages"][2]["role"] == "tool" and body["messages"][2]["tool_call_id"] == "call_w1"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", MODELS)
async def test_content_filter_finish_in_each_clients_terms(
    gw: RunningGateway, up: AzureUpstream, model: str, stream: bool
) -> None:
    filtered = Reply(text="Partial answer", stop="refusal")
    up.script(filtered, filtered)
    async with openai_client(gw.url, gw.admin_key) as oa:
        got = await call_openai(oa, stream, model=model, messages=[{"role": "user", "content": "Hi"}])
    assert (got.text, got.stop) == ("Partial answer", "refusal")  # finish_reason "content_filter"
    async with anthropic_client(gw.url, gw.admin_key) as an:
        got = await call_anthropic(an, stream, model=model, messages=[{"role": "user", "content": "Hi"}])
    assert (got.text, got.stop) == ("Partial answer", "refusal")  # stop_reason "refusal"
    sent(up, model)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", MODELS)
async def test_errors_in_the_callers_format(gw: RunningGateway, up: AzureUpstream, model: str, stream: bool) -> None:
    up.script(up.prompt_filtered(), up.prompt_filtered(), Fault(status=429, headers={"retry-after": "7"}),
              Fault(status=401, body={"error": {"code": "401", "message": f"bad key {up.expected_key}"}}))  # fmt: skip
    msgs = [{"role": "user", "content": "Hi"}]
    async with openai_client(gw.url, gw.admin_key) as oa:
        with pytest.raises(openai.BadRequestError) as oe:
            await call_openai(oa, stream, model=model, messages=msgs)
    assert "content management policy" in oe.value.message
    assert isinstance(oe.value.body, dict) and oe.value.body["type"] == "invalid_request_error"
    async with anthropic_client(gw.url, gw.admin_key) as an:
        with pytest.raises(anthropic.BadRequestError) as ae:
            await call_anthropic(an, stream, model=model, messages=msgs)
        assert "content management policy" in ae.value.message
        with pytest.raises(anthropic.RateLimitError) as limited:
            await call_anthropic(an, stream, model=model, messages=msgs)
        assert limited.value.response.headers["retry-after"] == "7"
    async with openai_client(gw.url, gw.admin_key) as oa:
        with pytest.raises(openai.APIStatusError) as auth:
            await call_openai(oa, stream, model=model, messages=msgs)
    assert auth.value.status_code in (502, 503) and APIS[model][0] in auth.value.message
    assert up.expected_key is not None
    assert up.expected_key not in auth.value.response.text  # Azure echoed it; the caller never sees it

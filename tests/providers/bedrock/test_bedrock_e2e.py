"""Bedrock through the real gateway: the OpenAI Chat and Anthropic Messages SDKs against a model
served by the emulated Bedrock Runtime (every request SigV4-signed and verified there)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
import pytest_asyncio
from openai.types.responses import FunctionToolParam, ResponseCompletedEvent
from support.clients import anthropic_client, call_anthropic, call_openai, openai_client
from support.gateway import RunningGateway, run_gateway, sqlite_url
from upstreams import Fault, Reply, ToolCall
from upstreams.bedrock_server import ACCESS_KEY, REGION, SECRET_KEY, BedrockUpstream

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
CLIENTS = ["openai", "anthropic"]
STREAM = [False, True]
CALLS = [
    ToolCall("tooluse_a", "get_weather", {"city": "Paris"}),
    ToolCall("tooluse_b", "get_weather", {"city": "Rome"}),
]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
ASK = "Weather in Paris and Rome?"


def config(url: str, db: str, secret: str = SECRET_KEY) -> dict[str, Any]:
    return {
        "database": db,
        "admin_key": "sk-kr-admin-test",
        "providers": {
            "bd": {
                "api": "bedrock",
                "base_url": url,
                "region": REGION,
                "aws_access_key_id": ACCESS_KEY,
                "aws_secret_access_key": secret,
                "timeout": {"connect": 2, "first_byte": 5, "idle": 5},
            },
        },
        "models": {
            "claude-bedrock": {
                "name": "Claude on Bedrock",
                "context_length": 200000,
                "endpoints": [
                    {
                        "provider": "bd",
                        "model": MODEL,
                        "pricing": {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75},
                        "capabilities": ["streaming", "tools", "reasoning", "vision"],
                    }
                ],
            }
        },
    }


@pytest_asyncio.fixture
async def gw(bedrock_upstream: BedrockUpstream, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with run_gateway(config(bedrock_upstream.url, sqlite_url(tmp_path))) as g:
        yield g


async def ask(gw: RunningGateway, client: str, stream: bool, **kw: Any) -> Any:
    if client == "openai":
        async with openai_client(gw.url, gw.admin_key) as c:
            return await call_openai(c, stream, model="claude-bedrock", **kw)
    async with anthropic_client(gw.url, gw.admin_key) as c:
        return await call_anthropic(c, stream, model="claude-bedrock", **kw)


def tools(client: str) -> list[dict[str, Any]]:
    if client == "openai":
        return [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}]
    return [{"name": "get_weather", "input_schema": SCHEMA}]


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("client", CLIENTS)
async def test_text_and_usage(gw: RunningGateway, bedrock_upstream: BedrockUpstream, client: str, stream: bool) -> None:
    bedrock_upstream.script(Reply(text="Hello from Bedrock", input_tokens=20, cache_read=4, output_tokens=9))
    r = await ask(gw, client, stream, messages=[{"role": "user", "content": "Hi"}])
    assert r.text == "Hello from Bedrock"
    assert (r.input_tokens, r.output_tokens) == (24, 9)
    assert r.stop == "end"
    [rec] = bedrock_upstream.requests
    assert rec.path == f"/model/{MODEL}/converse" + ("-stream" if stream else "")
    assert rec.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert rec.body["messages"] == [{"role": "user", "content": [{"text": "Hi"}]}]


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("client", CLIENTS)
async def test_parallel_tool_calls_and_the_results_turn(
    gw: RunningGateway, bedrock_upstream: BedrockUpstream, client: str, stream: bool
) -> None:
    bedrock_upstream.script(Reply(text=None, tool_calls=CALLS), Reply(text="Paris 18C, Rome 21C"))
    first = await ask(gw, client, stream, messages=[{"role": "user", "content": ASK}], tools=tools(client))
    assert first.stop == "tool_use"
    assert first.tool_calls == [
        ("tooluse_a", "get_weather", {"city": "Paris"}),
        ("tooluse_b", "get_weather", {"city": "Rome"}),
    ]
    if client == "openai":
        calls = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for i, n, a in first.tool_calls
        ]
        history: list[Any] = [
            {"role": "user", "content": ASK},
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "tooluse_a", "content": "18C"},
            {"role": "tool", "tool_call_id": "tooluse_b", "content": "21C"},
        ]
    else:
        history = [
            {"role": "user", "content": ASK},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in first.tool_calls],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "tooluse_a", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "tooluse_b", "content": "21C"},
                ],
            },
        ]
    second = await ask(gw, client, stream, messages=history, tools=tools(client))
    assert second.text == "Paris 18C, Rome 21C"
    sent = bedrock_upstream.requests[1].body
    assert sent["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
    assert [b["toolUse"]["toolUseId"] for b in sent["messages"][1]["content"]] == ["tooluse_a", "tooluse_b"]
    assert sent["messages"][2]["content"] == [
        {"toolResult": {"toolUseId": "tooluse_a", "content": [{"text": "18C"}]}},
        {"toolResult": {"toolUseId": "tooluse_b", "content": [{"text": "21C"}]}},
    ]


@pytest.mark.parametrize("stream", STREAM)
async def test_signed_reasoning_goes_back_to_bedrock(
    gw: RunningGateway, bedrock_upstream: BedrockUpstream, stream: bool
) -> None:
    """Claude Code's loop: thinking + a tool call, then the thinking block (signature intact) back."""
    bedrock_upstream.script(
        Reply(text=None, thinking="Check the weather.", signature="sig-bedrock-1", tool_calls=CALLS[:1]),
        Reply(text="18C"),
    )
    thinking = {"type": "enabled", "budget_tokens": 1024}
    first = await ask(
        gw,
        "anthropic",
        stream,
        messages=[{"role": "user", "content": ASK}],
        tools=tools("anthropic"),
        thinking=thinking,
        max_tokens=2048,
    )
    if stream:
        signatures = [
            e.delta.signature
            for e in first.raw
            if e.type == "content_block_delta" and e.delta.type == "signature_delta"
        ]
        assert signatures == ["sig-bedrock-1"]
    else:
        assert first.raw.content[0].type == "thinking" and first.raw.content[0].signature == "sig-bedrock-1"
    sent1 = bedrock_upstream.requests[0].body
    assert sent1["additionalModelRequestFields"]["thinking"] == thinking
    history = [
        {"role": "user", "content": ASK},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Check the weather.", "signature": "sig-bedrock-1"},
                {"type": "tool_use", "id": "tooluse_a", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tooluse_a", "content": "18C"}]},
    ]
    await ask(gw, "anthropic", stream, messages=history, tools=tools("anthropic"), thinking=thinking, max_tokens=2048)
    sent2 = bedrock_upstream.requests[1].body
    assert sent2["messages"][1]["content"][0] == {
        "reasoningContent": {"reasoningText": {"text": "Check the weather.", "signature": "sig-bedrock-1"}}
    }


async def _generation(gw: RunningGateway, gen_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {gw.admin_key}"}
    async with aiohttp.ClientSession() as s:
        for _ in range(200):
            async with s.get(gw.url + "/api/v1/generation", params={"id": gen_id}, headers=headers) as r:
                if r.status == 200:
                    data: dict[str, Any] = (await r.json())["data"]
                    return data
            await asyncio.sleep(0.01)
    raise AssertionError(f"generation {gen_id} was never recorded")


@pytest.mark.parametrize("stream", STREAM)
async def test_cost_from_bedrock_usage(gw: RunningGateway, bedrock_upstream: BedrockUpstream, stream: bool) -> None:
    bedrock_upstream.script(Reply(text="ok", input_tokens=1000, cache_read=2000, cache_write=400, output_tokens=100))
    async with openai_client(gw.url, gw.admin_key) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="claude-bedrock", messages=[{"role": "user", "content": "Hi"}], stream=stream
        )
        parsed = raw.parse()
        if stream:
            assert isinstance(parsed, openai.AsyncStream)
            async for _ in parsed:
                pass
    gen = await _generation(gw, raw.headers["x-generation-id"])
    assert (gen["tokens_prompt"], gen["tokens_completion"]) == (3400, 100)
    # 1000 x $3 + 2000 x $0.30 + 400 x $3.75 + 100 x $15, per million tokens
    assert Decimal(str(gen["total_cost"])) == Decimal("0.0066")


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("client", CLIENTS)
async def test_validation_error_in_callers_format(
    gw: RunningGateway, bedrock_upstream: BedrockUpstream, client: str, stream: bool
) -> None:
    bedrock_upstream.script(Fault(status=400, body={"message": "Malformed input request: messages.0: bad"}))
    error = openai.BadRequestError if client == "openai" else anthropic.BadRequestError
    with pytest.raises(error) as e:
        await ask(gw, client, stream, messages=[{"role": "user", "content": "Hi"}])
    assert isinstance(e.value, (openai.BadRequestError, anthropic.BadRequestError))
    assert e.value.status_code == 400
    assert "Malformed input request: messages.0: bad" in str(e.value)
    body = e.value.body
    assert isinstance(body, dict)
    if client == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("client", CLIENTS)
async def test_throttling_keeps_429(gw: RunningGateway, bedrock_upstream: BedrockUpstream, client: str) -> None:
    bedrock_upstream.script(Fault(status=429, headers={"retry-after": "7"}))
    error = openai.RateLimitError if client == "openai" else anthropic.RateLimitError
    with pytest.raises(error) as e:
        await ask(gw, client, False, messages=[{"role": "user", "content": "Hi"}])
    assert isinstance(e.value, (openai.RateLimitError, anthropic.RateLimitError))
    assert e.value.status_code == 429


@pytest.mark.parametrize("client", CLIENTS)
async def test_in_stream_exception_reaches_the_caller(
    gw: RunningGateway, bedrock_upstream: BedrockUpstream, client: str
) -> None:
    bedrock_upstream.script(
        Fault(
            stream_error_after=3,
            reply=Reply(text="a long enough answer"),
            body={"type": "modelStreamErrorException", "message": "model stream broke"},
        )
    )
    error = openai.APIError if client == "openai" else anthropic.APIError
    with pytest.raises(error, match="model stream broke"):
        await ask(gw, client, True, messages=[{"role": "user", "content": "Hi"}])


async def test_bad_signature_is_a_provider_failure(bedrock_upstream: BedrockUpstream, tmp_path: Path) -> None:
    async with run_gateway(config(bedrock_upstream.url, sqlite_url(tmp_path), secret="not-the-secret")) as g:
        with pytest.raises(openai.APIStatusError) as e:
            await ask(g, "openai", False, messages=[{"role": "user", "content": "Hi"}])
    assert e.value.status_code in (502, 503)
    assert "provider bd rejected KeepRouter's credentials" in str(e.value.body), e.value.body
    assert "not-the-secret" not in str(e.value.body)
    assert bedrock_upstream.requests and bedrock_upstream.pending == 0


async def test_bedrock_api_key(bedrock_upstream: BedrockUpstream, tmp_path: Path) -> None:
    cfg = config(bedrock_upstream.url, sqlite_url(tmp_path))
    bd = cfg["providers"]["bd"]
    for k in ("aws_access_key_id", "aws_secret_access_key"):
        del bd[k]
    bd["api_key"] = bedrock_upstream.expected_key
    bedrock_upstream.script(Reply(text="keyed"))
    async with run_gateway(cfg) as g:
        r = await ask(g, "openai", True, messages=[{"role": "user", "content": "Hi"}])
    assert r.text == "keyed"
    assert bedrock_upstream.requests[0].headers["authorization"] == f"Bearer {bedrock_upstream.expected_key}"


async def test_image_goes_inline(gw: RunningGateway, bedrock_upstream: BedrockUpstream) -> None:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
    ]
    r = await ask(gw, "openai", False, messages=[{"role": "user", "content": content}])
    assert r.text == "Hello!"
    assert bedrock_upstream.requests[0].body["messages"][0]["content"][1] == {
        "image": {"format": "png", "source": {"bytes": png}}
    }


@pytest.mark.parametrize("stream", STREAM)
async def test_stop_sequence_reaches_anthropic_callers(
    gw: RunningGateway, bedrock_upstream: BedrockUpstream, stream: bool
) -> None:
    bedrock_upstream.script(Reply(text="one two", stop="stop_sequence", stop_sequence="THREE"))
    r = await ask(gw, "anthropic", stream, messages=[{"role": "user", "content": "Count"}], stop_sequences=["THREE"])
    assert r.stop == "stop_sequence"
    final = r.raw if not stream else None
    if final is not None:
        assert final.stop_sequence == "THREE"
    sent = bedrock_upstream.requests[0].body
    assert sent["inferenceConfig"]["stopSequences"] == ["THREE"]
    assert sent["additionalModelResponseFieldPaths"] == ["/stop_sequence"]


@pytest.mark.parametrize("stream", STREAM)
async def test_structured_output(gw: RunningGateway, bedrock_upstream: BedrockUpstream, stream: bool) -> None:
    bedrock_upstream.script(Reply(text='{"city":"Oslo"}'))  # answered as a call of the forced tool
    rf = {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}
    r = await ask(gw, "openai", stream, messages=[{"role": "user", "content": "A city?"}], response_format=rf)
    assert json.loads(r.text) == {"city": "Oslo"} and r.stop == "end" and not r.tool_calls
    assert bedrock_upstream.requests[0].body["toolConfig"]["toolChoice"] == {"tool": {"name": "answer"}}


async def test_count_tokens_is_bedrocks_own(gw: RunningGateway, bedrock_upstream: BedrockUpstream) -> None:
    async with anthropic_client(gw.url, gw.admin_key) as c:
        r = await c.messages.count_tokens(
            model="claude-bedrock", messages=[{"role": "user", "content": "Hello"}], system="Be brief."
        )
    [rec] = bedrock_upstream.requests
    # CountTokens takes the foundation model, not the cross-region profile the endpoint names
    assert rec.path == f"/model/{MODEL.removeprefix('us.')}/count-tokens"
    converse = rec.body["input"]["converse"]
    assert converse["messages"] == [{"role": "user", "content": [{"text": "Hello"}]}]
    assert converse["system"] == [{"text": "Be brief."}]
    assert r.input_tokens == len(json.dumps(converse, separators=(",", ":"), sort_keys=True)) // 4


@pytest.mark.parametrize("stream", STREAM)
async def test_responses_client(gw: RunningGateway, bedrock_upstream: BedrockUpstream, stream: bool) -> None:
    bedrock_upstream.script(Reply(text="From Bedrock via Responses", tool_calls=CALLS))
    # The SDK's TypedDict marks `strict` Required, the API takes it as optional; the tool goes without it
    # as most callers send it.
    tool: FunctionToolParam = {"type": "function", "name": "get_weather", "parameters": SCHEMA}  # type: ignore[typeddict-item]
    async with openai_client(gw.url, gw.admin_key) as c:
        if stream:
            events = [
                ev
                async for ev in await c.responses.create(model="claude-bedrock", input=ASK, tools=[tool], stream=True)
            ]
            final = next(ev.response for ev in events if isinstance(ev, ResponseCompletedEvent))
        else:
            final = await c.responses.create(model="claude-bedrock", input=ASK, tools=[tool])
    assert final.output_text == "From Bedrock via Responses"
    calls = [(o.call_id, json.loads(o.arguments)) for o in final.output if o.type == "function_call"]
    assert calls == [("tooluse_a", {"city": "Paris"}), ("tooluse_b", {"city": "Rome"})]

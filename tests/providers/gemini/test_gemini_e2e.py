"""The `gemini` kind end to end: the OpenAI Chat and Anthropic Messages SDKs -> the gateway -> the Gemini
emulator, streamed and not. The emulator enforces Gemini 3's thought-signature rule, so a tool loop
succeeds only when the signature it issued comes back on the call, exactly."""

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
from openai.types.responses import ResponseCompletedEvent
from support.clients import anthropic_client, call_anthropic, call_openai, openai_client
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url
from upstreams.gemini_server import SKIP_SIGNATURE, GeminiUpstream, count_tokens
from upstreams.script import Fault, Reply, ToolCall

MODEL = "gemini-3-flash-preview"
TOOLS_OA: list[dict[str, Any]] = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False}}}]  # fmt: skip
TOOLS_AN = [{"name": "get_weather", "description": "Weather in a city",
             "input_schema": TOOLS_OA[0]["function"]["parameters"]}]  # fmt: skip


@pytest_asyncio.fixture
async def gw(gemini_upstream: GeminiUpstream, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    ep = {"provider": "gm", "model": MODEL, "capabilities": ["streaming", "tools", "reasoning", "vision"],
          "pricing": {"input": 0.5, "output": 3.0, "cache_read": 0.05}}  # fmt: skip
    cfg = {
        "database": sqlite_url(tmp_path),
        "admin_key": ADMIN_KEY,
        "providers": {"gm": {"api": "gemini", "base_url": gemini_upstream.url, "api_key": GeminiUpstream.DEFAULT_KEY}},
        "models": {"gem3": {"name": "Gemini 3", "maker": "Google", "context_length": 1000000, "endpoints": [ep]}},
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


def _sent_to_upstream(up: GeminiUpstream, stream: bool) -> None:
    rec = up.requests[-1]
    method = "streamGenerateContent" if stream else "generateContent"
    assert rec.path == f"/v1beta/models/{MODEL}:{method}"
    assert rec.query == ({"alt": "sse"} if stream else {})  # the key never travels in the URL
    assert rec.header("x-goog-api-key") == GeminiUpstream.DEFAULT_KEY


@pytest.mark.parametrize("stream", [False, True])
async def test_text_and_usage_from_both_clients(
    gw: RunningGateway, gemini_upstream: GeminiUpstream, stream: bool
) -> None:
    reply = Reply(text="Hello from Gemini", input_tokens=1000, cache_read=4000, output_tokens=300, reasoning_tokens=100)
    gemini_upstream.script(reply, reply)
    async with openai_client(gw.url, gw.admin_key) as oa:
        got = await call_openai(oa, stream, model="gem3", messages=[
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])  # fmt: skip
    assert (got.text, got.stop, got.input_tokens, got.output_tokens) == ("Hello from Gemini", "end", 5000, 300)
    _sent_to_upstream(gemini_upstream, stream)
    body = gemini_upstream.requests[-1].body
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]
    gen = await generation(gw, got.id or "")
    assert (gen["native_tokens_prompt"], gen["native_tokens_completion"]) == (5000, 300)
    assert (gen["native_tokens_cached"], gen["native_tokens_reasoning"]) == (4000, 100)
    # 1000 uncached x 0.5 + 4000 cached x 0.05 + 300 output (thoughts included) x 3.0, per 1M tokens
    assert Decimal(str(gen["total_cost"])) == Decimal("0.0016")

    async with anthropic_client(gw.url, gw.admin_key) as an:
        got = await call_anthropic(an, stream, model="gem3", messages=[{"role": "user", "content": "Hi"}])
    assert (got.text, got.stop, got.input_tokens, got.output_tokens) == ("Hello from Gemini", "end", 5000, 300)
    _sent_to_upstream(gemini_upstream, stream)


def _issued_call_signature(up: GeminiUpstream) -> str:
    return up.issued_signature("get_weather:")


def _replayed_call(up: GeminiUpstream) -> dict[str, Any]:
    model_turn = up.requests[-1].body["contents"][1]
    assert model_turn["role"] == "model"
    return next(p for p in model_turn["parts"] if "functionCall" in p)


STEP1 = Reply(text=None, thinking="I should look it up.", tool_calls=[ToolCall(None, "get_weather", {"city": "Paris"})],
              reasoning_tokens=20, output_tokens=40)  # fmt: skip
STEP2 = Reply(text="It is sunny in Paris.")


async def _openai_first_turn(c: openai.AsyncOpenAI, stream: bool, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The assistant message as an OpenAI client keeps it, `extra_content` of each call included."""
    kw: dict[str, Any] = {"model": "gem3", "messages": messages, "tools": TOOLS_OA, "reasoning_effort": "low"}
    if not stream:
        r = await c.chat.completions.create(**kw)
        assert r.choices[0].finish_reason == "tool_calls"
        message: dict[str, Any] = r.choices[0].message.model_dump(exclude_none=True)
        return message
    calls: dict[int, dict[str, Any]] = {}
    async for chunk in await c.chat.completions.create(stream=True, **kw):
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"type": "function", "function": {"name": "", "arguments": ""}})
                if tc.id:
                    slot["id"] = tc.id
                if (tc.model_extra or {}).get("extra_content"):
                    slot["extra_content"] = tc.model_extra["extra_content"]
                if tc.function and tc.function.name:
                    slot["function"]["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    slot["function"]["arguments"] += tc.function.arguments
    return {"role": "assistant", "content": None, "tool_calls": [calls[i] for i in sorted(calls)]}


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_client_tool_loop_with_thinking_keeps_the_signature(
    gw: RunningGateway, gemini_upstream: GeminiUpstream, stream: bool
) -> None:
    gemini_upstream.script(STEP1, STEP2)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    async with openai_client(gw.url, gw.admin_key) as c:
        assistant = await _openai_first_turn(c, stream, messages)
        sig = _issued_call_signature(gemini_upstream)
        call = assistant["tool_calls"][0]
        assert call["extra_content"] == {"google": {"thought_signature": sig}}
        assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
        thinking = gemini_upstream.requests[-1].body["generationConfig"]["thinkingConfig"]
        assert thinking == {"thinkingLevel": "low", "includeThoughts": True}
        messages += [assistant, {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 24C"}]
        got = await call_openai(c, stream, model="gem3", messages=messages, tools=TOOLS_OA, reasoning_effort="low")
    assert got.text == "It is sunny in Paris."
    assert _replayed_call(gemini_upstream) == {
        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
        "thoughtSignature": sig,
    }
    answer = gemini_upstream.requests[-1].body["contents"][2]
    assert answer == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"output": "sunny, 24C"}}}]}  # fmt: skip


@pytest.mark.parametrize("stream", [False, True])
async def test_a_call_id_gemini_gives_names_the_call_but_is_never_sent_back(
    gw: RunningGateway, gemini_upstream: GeminiUpstream, stream: bool
) -> None:
    """Gemini may name a call (`functionCall.id`); the client sees that id, and the next turn pairs the
    result by name with no `id` on either part, which Gemini refuses (the emulator too)."""
    step1 = Reply(text=None, tool_calls=[ToolCall("fc-7", "get_weather", {"city": "Oslo"})])
    gemini_upstream.script(step1, STEP2)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Oslo?"}]
    async with openai_client(gw.url, gw.admin_key) as c:
        assistant = await _openai_first_turn(c, stream, messages)
        assert assistant["tool_calls"][0]["id"] == "fc-7"
        messages += [assistant, {"role": "tool", "tool_call_id": "fc-7", "content": "cold"}]
        got = await call_openai(c, stream, model="gem3", messages=messages, tools=TOOLS_OA, reasoning_effort="low")
    assert got.text == "It is sunny in Paris."
    assert _replayed_call(gemini_upstream)["functionCall"] == {"name": "get_weather", "args": {"city": "Oslo"}}
    answer = gemini_upstream.requests[-1].body["contents"][2]["parts"]
    assert answer == [{"functionResponse": {"name": "get_weather", "response": {"output": "cold"}}}]


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_client_tool_loop_with_thinking_keeps_the_signature(
    gw: RunningGateway, gemini_upstream: GeminiUpstream, stream: bool
) -> None:
    gemini_upstream.script(STEP1, STEP2)
    kw: dict[str, Any] = {"model": "gem3", "max_tokens": 4000, "tools": TOOLS_AN,
                          "thinking": {"type": "enabled", "budget_tokens": 2048}}  # fmt: skip
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    msg: anthropic.types.Message
    async with anthropic_client(gw.url, gw.admin_key) as c:
        if stream:
            async with c.messages.stream(messages=messages, **kw) as s:
                msg = await s.get_final_message()
        else:
            msg = await c.messages.create(messages=messages, **kw)
        assert msg.stop_reason == "tool_use"
        blocks = [b.model_dump(exclude_none=True) for b in msg.content]
        assert [b["type"] for b in blocks] == ["thinking", "thinking", "tool_use"]
        assert blocks[0]["thinking"] == "I should look it up."
        assert blocks[1]["thinking"] == "" and blocks[1]["signature"].endswith(_issued_call_signature(gemini_upstream))
        use = blocks[2]
        messages += [
            {"role": "assistant", "content": blocks},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"], "content": "sunny, 24C"}]},
        ]
        got = await call_anthropic(c, stream, messages=messages, **kw)
    assert got.text == "It is sunny in Paris."
    assert _replayed_call(gemini_upstream)["thoughtSignature"] == _issued_call_signature(gemini_upstream)


async def test_a_lost_signature_is_refused_by_the_emulator_as_gemini_does(gemini_upstream: GeminiUpstream) -> None:
    """The rule the loops above pass: without the exact signature, Gemini 3 answers 400."""
    url = f"{gemini_upstream.url}/v1beta/models/{MODEL}:generateContent"
    headers = {"x-goog-api-key": GeminiUpstream.DEFAULT_KEY}
    history: list[dict[str, Any]] = [
        {"role": "user", "parts": [{"text": "Weather?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}]},
    ]
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json={"contents": history}, headers=headers) as r:
            assert r.status == 400
            err = (await r.json())["error"]
        assert err["status"] == "INVALID_ARGUMENT"
        assert err["message"].startswith("Function call is missing a thought_signature in functionCall parts")
        history[1]["parts"][0]["thoughtSignature"] = "forged"
        async with s.post(url, json={"contents": history}, headers=headers) as r:
            assert r.status == 400
        history[1]["parts"][0]["thoughtSignature"] = SKIP_SIGNATURE
        async with s.post(url, json={"contents": history}, headers=headers) as r:
            assert r.status == 200


@pytest.mark.parametrize("stream", [False, True])
async def test_errors_reach_each_client_in_its_own_shape(
    gw: RunningGateway, gemini_upstream: GeminiUpstream, stream: bool
) -> None:
    gemini_upstream.script(Fault(status=429, headers={"retry-after": "7"}))
    async with openai_client(gw.url, gw.admin_key) as oa:
        with pytest.raises(openai.RateLimitError) as e:
            await call_openai(oa, stream, model="gem3", messages=[{"role": "user", "content": "Hi"}])
    assert e.value.response.headers.get("retry-after") == "7"
    # Gemini's list-shaped error body: its message reaches the caller, with its 400
    message = "Invalid value at 'generation_config.top_k'"
    listed = [{"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}]
    gemini_upstream.script(Fault(status=400, body=json.dumps(listed)))
    async with anthropic_client(gw.url, gw.admin_key) as an:
        with pytest.raises(anthropic.BadRequestError) as bad:
            await call_anthropic(an, stream, model="gem3", messages=[{"role": "user", "content": "Hi"}])
    assert bad.value.body["error"]["message"] == message  # type: ignore[index]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_quota_429s_retry_delay_is_the_callers_retry_after(
    gw: RunningGateway, gemini_upstream: GeminiUpstream, stream: bool
) -> None:
    """Gemini sends no Retry-After header: the delay is its body's google.rpc.RetryInfo."""
    gemini_upstream.retry_delay = "2.5s"
    gemini_upstream.script(Fault(status=429))
    async with anthropic_client(gw.url, gw.admin_key) as an:
        with pytest.raises(anthropic.RateLimitError) as e:
            await call_anthropic(an, stream, model="gem3", messages=[{"role": "user", "content": "Hi"}])
    assert e.value.response.headers.get("retry-after") == "3"
    assert e.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


async def test_count_tokens_asks_gemini(gw: RunningGateway, gemini_upstream: GeminiUpstream) -> None:
    messages = [{"role": "user", "content": "How many tokens is this?"}]
    async with anthropic_client(gw.url, gw.admin_key) as an:
        got = await an.messages.count_tokens(model="gem3", messages=messages, system="Be brief.")  # type: ignore[arg-type]
    rec = gemini_upstream.requests[-1]
    assert rec.path == f"/v1beta/models/{MODEL}:countTokens"
    inner = rec.body["generateContentRequest"]
    assert inner["model"] == f"models/{MODEL}"
    assert got.input_tokens == count_tokens(inner)


@pytest.mark.parametrize("stream", [False, True])
async def test_responses_client_tool_loop_with_thinking_keeps_the_signature(
    gw: RunningGateway, gemini_upstream: GeminiUpstream, stream: bool
) -> None:
    """The Responses API carries a call's signature as an encrypted reasoning item right before it."""
    gemini_upstream.script(STEP1, STEP2)
    tool = {"type": "function", "name": "get_weather", "parameters": TOOLS_OA[0]["function"]["parameters"]}
    kw: dict[str, Any] = {"model": "gem3", "tools": [tool], "reasoning": {"effort": "low"}, "store": False,
                          "include": ["reasoning.encrypted_content"]}  # fmt: skip
    items: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    async with openai_client(gw.url, gw.admin_key) as c:
        if stream:
            events = [ev async for ev in await c.responses.create(input=items, stream=True, **kw)]
            last = events[-1]
            assert isinstance(last, ResponseCompletedEvent)
            first = last.response
        else:
            first = await c.responses.create(input=items, **kw)
        output = [o.model_dump(exclude_none=True) for o in first.output]
        assert [o["type"] for o in output] == ["reasoning", "reasoning", "function_call"]
        assert output[1]["encrypted_content"].endswith(_issued_call_signature(gemini_upstream))
        call = output[2]
        items += [*output, {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny, 24C"}]
        second = await c.responses.create(input=items, **kw)
    assert second.output_text == "It is sunny in Paris."
    assert _replayed_call(gemini_upstream)["thoughtSignature"] == _issued_call_signature(gemini_upstream)

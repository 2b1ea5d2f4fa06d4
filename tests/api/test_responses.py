"""The Responses API end to end: the official `openai` SDK (`responses.create`, streamed or not, and
`responses.stream`) against the gateway, on both emulated upstream formats; asserting what the
client got, what the upstream received, and what was recorded and billed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
import pydantic
import pytest
import pytest_asyncio
from formats.fmt_helpers import check_responses_stream
from openai.types.responses import Response
from support.clients import openai_client
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url, two_format_config
from support.raw import get_json, price_of, wait_until
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply, ToolCall

from keeprouter.api.http import STATE
from keeprouter.billing import pricing

UPSTREAMS = ["openai", "anthropic"]
MODES = ["create", "stream", "helper"]  # responses.create, create(stream=True), responses.stream
MODEL = {"openai": "gpt-test", "anthropic": "claude-test"}
PARIS, ROME = '{"city":"Paris"}', '{"city":"Rome"}'
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@dataclass
class Env:
    gw: RunningGateway
    up: dict[str, OpenAIUpstream | AnthropicUpstream]

    def client(self, key: str | None = None) -> openai.AsyncOpenAI:
        return openai_client(self.gw.url, key or self.gw.admin_key)

    def sent(self, upstream: str) -> dict[str, Any]:
        reqs = [r for r in self.up[upstream].requests if isinstance(r.body, dict)]
        assert reqs, "the upstream received nothing"
        body: dict[str, Any] = reqs[-1].body
        return body


@pytest_asyncio.fixture
async def env(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[Env]:
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))
    async with run_gateway(cfg) as gw:
        yield Env(gw, {"openai": openai_upstream, "anthropic": anthropic_upstream})


async def ask(env: Env, mode: str, key: str | None = None, **kw: Any) -> tuple[Response, list[Any]]:
    """One request in `mode`; the final response and the stream's events (checked in order)."""
    async with env.client(key) as c:
        if mode == "create":
            return await c.responses.create(**kw), []
        if mode == "stream":
            events = [ev async for ev in await c.responses.create(stream=True, **kw)]
            final = events[-1].response
        else:
            async with c.responses.stream(**kw) as s:
                events = [ev async for ev in s]
                # the SDK's helper assembles only completed responses (as against OpenAI itself)
                done = events[-1].type == "response.completed"
                final = await s.get_final_response() if done else events[-1].response
    assert [ev.sequence_number for ev in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[1].type == "response.in_progress"
    assert events[-1].type in ("response.completed", "response.incomplete", "response.failed")
    return final, events


def function_calls(r: Response) -> list[tuple[str, str, str]]:
    return [(o.call_id, o.name, o.arguments) for o in r.output if o.type == "function_call"]


both = pytest.mark.parametrize("upstream", UPSTREAMS)
matrix = pytest.mark.parametrize(("upstream", "mode"), [(u, m) for u in UPSTREAMS for m in MODES])


# ---- answers -------------------------------------------------------------------------------


@matrix
async def test_text_answer_with_usage_and_instructions(env: Env, upstream: str, mode: str) -> None:
    env.up[upstream].script(Reply(text="Hello there!", input_tokens=12, output_tokens=7, cache_read=4))
    r, _ = await ask(env, mode, model=MODEL[upstream], input="Hi", instructions="Be brief.", store=False,
                     metadata={"run": "1"}, temperature=0.5)  # fmt: skip
    assert r.id.startswith("resp_") and r.object == "response" and r.model == MODEL[upstream]
    assert r.status == "completed" and r.error is None and r.incomplete_details is None
    assert r.output_text == "Hello there!"
    msg = r.output[0]
    assert msg.type == "message" and msg.role == "assistant" and msg.id.startswith("msg_")
    assert msg.content[0].type == "output_text" and msg.content[0].annotations == []
    assert r.usage is not None
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (16, 7, 23)
    assert r.usage.input_tokens_details.cached_tokens == 4
    assert r.instructions == "Be brief." and r.metadata == {"run": "1"} and r.model_dump()["store"] is False
    assert r.temperature == 0.5 and r.tools == [] and r.tool_choice == "auto" and r.previous_response_id is None
    sent = env.sent(upstream)
    if upstream == "openai":
        assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
        assert "metadata" not in sent and "store" not in sent
    else:
        assert sent["system"] == "Be brief." and sent["messages"] == [{"role": "user", "content": [
            {"type": "text", "text": "Hi"}]}]  # fmt: skip


@both
async def test_raw_stream_is_openais_event_sequence(env: Env, upstream: str) -> None:
    env.up[upstream].script(Reply(text="Let me check.", tool_calls=[ToolCall(None, "get_weather", PARIS)]))
    body = {"model": MODEL[upstream], "input": "weather?", "tools": [WEATHER], "stream": True}
    async with aiohttp.ClientSession() as s:
        async with s.post(env.gw.url + "/v1/responses", json=body,
                          headers={"Authorization": f"Bearer {env.gw.admin_key}"}) as resp:  # fmt: skip
            assert resp.status == 200 and resp.content_type == "text/event-stream"
            gen = resp.headers["X-Generation-Id"]
            frames = [chunk async for chunk in resp.content.iter_any()]
    events, final = check_responses_stream(frames)
    assert final.id == "resp_" + gen.removeprefix("gen-")
    assert [o.type for o in final.output] == ["message", "function_call"]
    assert function_calls(final)[0][1:] == ("get_weather", PARIS)
    assert sum(e["type"] == "response.function_call_arguments.delta" for e in events) >= 2, "arguments stream"


@matrix
async def test_tool_call_then_function_call_output_round_trip(env: Env, upstream: str, mode: str) -> None:
    up = env.up[upstream]
    up.script(Reply(text=None, tool_calls=[ToolCall(None, "get_weather", PARIS)]), Reply(text="Sunny in Paris."))
    first, _ = await ask(env, mode, model=MODEL[upstream], input="Weather in Paris?", tools=[WEATHER])
    [(call_id, name, args)] = function_calls(first)
    assert name == "get_weather" and args == PARIS and call_id
    item = first.output[-1]
    assert item.type == "function_call" and item.id and item.id.startswith("fc_") and item.status == "completed"
    assert first.tools[0].name == "get_weather"  # type: ignore[union-attr]

    history = [{"role": "user", "content": "Weather in Paris?"},
               *[o.model_dump(exclude_none=True) for o in first.output],
               {"type": "function_call_output", "call_id": call_id, "output": "sunny, 24C"}]  # fmt: skip
    second, _ = await ask(env, mode, model=MODEL[upstream], input=history, tools=[WEATHER])
    assert second.output_text == "Sunny in Paris." and second.status == "completed"
    sent = env.sent(upstream)
    if upstream == "openai":
        assert sent["messages"][1]["tool_calls"][0]["id"] == call_id
        assert sent["messages"][2] == {"role": "tool", "tool_call_id": call_id, "content": "sunny, 24C"}
    else:
        assert sent["messages"][1]["content"][-1] == {"type": "tool_use", "id": call_id, "name": "get_weather",
                                                      "input": {"city": "Paris"}}  # fmt: skip
        result = sent["messages"][2]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == call_id


@matrix
async def test_custom_tool_round_trip_as_codex_uses_apply_patch(env: Env, upstream: str, mode: str) -> None:
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch"
    tool = {"type": "custom", "name": "apply_patch", "description": "Edit files.",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: /(.|\\n)+/"}}  # fmt: skip
    env.up[upstream].script(Reply(text=None, tool_calls=[ToolCall(None, "apply_patch", {"input": patch})]),
                            Reply(text="Patched."))  # fmt: skip
    first, _ = await ask(env, mode, model=MODEL[upstream], input="Add a.txt", tools=[tool])
    call = first.output[-1]
    assert call.type == "custom_tool_call" and call.input == patch and call.name == "apply_patch"
    sent = env.sent(upstream)
    schema = sent["tools"][0]["function"]["parameters"] if upstream == "openai" else sent["tools"][0]["input_schema"]
    assert schema["properties"] == {"input": {"type": "string"}}
    history = [{"role": "user", "content": "Add a.txt"}, call.model_dump(exclude_none=True),
               {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Done!"}]  # fmt: skip
    second, _ = await ask(env, mode, model=MODEL[upstream], input=history, tools=[tool])
    assert second.output_text == "Patched."
    sent = env.sent(upstream)
    if upstream == "openai":
        assert sent["messages"][1]["tool_calls"][0]["function"]["arguments"] == orjson.dumps({"input": patch}).decode()
        assert sent["messages"][2] == {"role": "tool", "tool_call_id": call.call_id, "content": "Done!"}
    else:
        assert sent["messages"][1]["content"][0]["input"] == {"input": patch}
        assert sent["messages"][2]["content"][0]["tool_use_id"] == call.call_id


@pytest.mark.parametrize(("upstream", "stream"), [(u, s) for u in UPSTREAMS for s in (False, True)])
async def test_parallel_tool_calls(env: Env, upstream: str, stream: bool) -> None:
    calls = [ToolCall(None, "get_weather", PARIS), ToolCall(None, "get_weather", ROME)]
    env.up[upstream].script(Reply(text=None, tool_calls=calls), Reply(text=None, tool_calls=calls[:1]))
    r, _ = await ask(env, "stream" if stream else "create", model=MODEL[upstream], input="Paris and Rome?",
                     tools=[WEATHER])  # fmt: skip
    got = function_calls(r)
    assert [a for _, _, a in got] == [PARIS, ROME] and len({c for c, _, _ in got}) == 2
    assert r.parallel_tool_calls is True
    r, _ = await ask(env, "stream" if stream else "create", model=MODEL[upstream], input="Just Paris",
                     tools=[WEATHER], parallel_tool_calls=False, tool_choice="required")  # fmt: skip
    assert r.parallel_tool_calls is False and r.tool_choice == "required"
    sent = env.sent(upstream)
    if upstream == "openai":
        assert sent["parallel_tool_calls"] is False and sent["tool_choice"] == "required"
    else:
        assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


class City(pydantic.BaseModel):
    city: str


@pytest.mark.parametrize("mode", MODES)
async def test_json_schema_text_format_reaches_the_upstream(env: Env, mode: str) -> None:
    env.up["openai"].script(Reply(text=PARIS))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}  # fmt: skip
    fmt = {"type": "json_schema", "name": "city", "schema": schema, "strict": True}
    r, _ = await ask(env, mode, model="gpt-test", input="A city?", text={"format": fmt})
    assert r.output_text == PARIS and r.text is not None and r.text.format is not None
    assert r.text.format.type == "json_schema"
    assert env.sent("openai")["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "city", "schema": schema, "strict": True}}  # fmt: skip


async def test_sdk_parse_with_a_pydantic_text_format(env: Env) -> None:
    env.up["openai"].script(Reply(text=PARIS))
    async with env.client() as c:
        r = await c.responses.parse(model="gpt-test", input="A city?", text_format=City)
    assert r.output_parsed == City(city="Paris")
    assert env.sent("openai")["response_format"]["type"] == "json_schema"
    env.up["openai"].script(Reply(text="{}"))
    async with env.client() as c:
        await c.responses.create(model="gpt-test", input="json", text={"format": {"type": "json_object"}})
    assert env.sent("openai")["response_format"] == {"type": "json_object"}


@matrix
async def test_max_output_tokens_ends_incomplete(env: Env, upstream: str, mode: str) -> None:
    env.up[upstream].script(Reply(text="The answer is", stop="max_tokens", output_tokens=5))
    r, events = await ask(env, mode, model=MODEL[upstream], input="Long story", max_output_tokens=5)
    assert r.status == "incomplete" and r.max_output_tokens == 5
    assert r.incomplete_details is not None and r.incomplete_details.reason == "max_output_tokens"
    assert r.output_text == "The answer is" and r.output[0].status == "incomplete"  # type: ignore[union-attr]
    assert not events or events[-1].type == "response.incomplete"
    assert env.sent(upstream)["max_tokens"] == 5


@pytest.mark.parametrize("mode", MODES)
async def test_reasoning_from_thinking_becomes_a_reasoning_item(env: Env, mode: str) -> None:
    env.up["anthropic"].script(Reply(thinking="Six times seven.", text="42", reasoning_tokens=4, output_tokens=9))
    r, events = await ask(env, mode, model="claude-test", input="6*7?", reasoning={"effort": "low", "summary": "auto"})
    assert [o.type for o in r.output] == ["reasoning", "message"]
    assert [s.text for s in r.output[0].summary] == ["Six times seven."]  # type: ignore[union-attr]
    assert r.output_text == "42" and r.reasoning is not None and r.reasoning.effort == "low"
    if events:
        deltas = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
        assert deltas == "Six times seven."
    assert env.sent("anthropic")["thinking"]["type"] == "enabled"


@pytest.mark.parametrize("mode", MODES)
async def test_signed_thinking_round_trips_through_reasoning_items(
    make_anthropic_upstream: Any, tmp_path: Path, mode: str
) -> None:
    """Thinking + tool use on Anthropic needs the signed thinking back on the next turn; it comes back
    as the reasoning item's encrypted_content, replayed only to the endpoint that signed it."""
    a, b = await make_anthropic_upstream(), await make_anthropic_upstream()
    cfg = config_two_anthropic(a, b, sqlite_url(tmp_path))
    a.script(Reply(text=None, thinking="Need the weather.", signature="SIG/abc+==",
                   tool_calls=[ToolCall(None, "get_weather", PARIS)]))  # fmt: skip
    async with run_gateway(cfg) as gw:
        env = Env(gw, {"a": a, "b": b})
        only: dict[str, Any] = {"extra_body": {"provider": {"only": ["an1"]}}}
        kw: dict[str, Any] = {"model": "claude-x", "tools": [WEATHER], "reasoning": {"effort": "low"}}
        first, _ = await ask(env, mode, input="Weather in Paris?", **kw, **only)
        rs = first.output[0]
        assert rs.type == "reasoning" and rs.encrypted_content and [s.text for s in rs.summary] == ["Need the weather."]
        [(call_id, _, _)] = function_calls(first)
        history = [{"role": "user", "content": "Weather in Paris?"},
                   *[o.model_dump(exclude_none=True) for o in first.output],
                   {"type": "function_call_output", "call_id": call_id, "output": "sunny"}]  # fmt: skip
        for provider in ("an2", "an1"):
            await ask(env, "create", input=history, **kw, extra_body={"provider": {"only": [provider]}})
    to_a = a.requests[-1].body["messages"][1]["content"]
    assert to_a[0] == {"type": "thinking", "thinking": "Need the weather.", "signature": "SIG/abc+=="}
    assert to_a[1]["type"] == "tool_use" and to_a[1]["id"] == call_id
    to_b = b.requests[-1].body["messages"][1]["content"]
    assert [blk["type"] for blk in to_b] == ["tool_use"]  # another endpoint: the signed block is withheld


def config_two_anthropic(a: AnthropicUpstream, b: AnthropicUpstream, db: str) -> dict[str, Any]:
    ep = {"pricing": {"input": 3, "output": 15}, "capabilities": ["streaming", "tools", "reasoning"]}
    return {
        "database": db,
        "admin_key": ADMIN_KEY,
        "providers": {
            "an1": {"api": "anthropic", "base_url": a.url, "api_key": "sk-up-anthropic"},
            "an2": {"api": "anthropic", "base_url": b.url, "api_key": "sk-up-anthropic"},
        },
        "models": {"claude-x": {"context_length": 200000, "endpoints": [
            {"provider": "an1", "model": "claude-a", **ep}, {"provider": "an2", "model": "claude-b", **ep}]}},
    }  # fmt: skip


async def test_reasoning_items_passed_back_are_accepted(env: Env) -> None:
    env.up["openai"].script(Reply(text="ok"))
    history = [{"role": "user", "content": "hi"},
               {"type": "reasoning", "id": "rs_x", "summary": [{"type": "summary_text", "text": "thought"}],
                "encrypted_content": "gAAAA-opaque"},
               {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]},
               {"role": "user", "content": [{"type": "input_text", "text": "again"}]}]  # fmt: skip
    r, _ = await ask(env, "create", model="gpt-test", input=history, include=["reasoning.encrypted_content"])
    assert r.output_text == "ok"
    assert [m["role"] for m in env.sent("openai")["messages"]] == ["user", "assistant", "user"]


# ---- errors --------------------------------------------------------------------------------


async def bad_request(env: Env, **kw: Any) -> dict[str, Any]:
    async with env.client() as c:
        with pytest.raises(openai.BadRequestError) as e:
            await c.responses.create(**{"model": "gpt-test", "input": "hi", **kw})
    assert e.value.status_code == 400
    body: dict[str, Any] = e.value.body  # type: ignore[assignment]
    assert body["type"] == "invalid_request_error" and body["code"] == 400, body
    return body


async def test_bad_input_is_400_naming_the_param(env: Env) -> None:
    body = await bad_request(env, input=[{"role": "user", "content": 3}])
    assert body["param"] == "input[0].content"
    assert (await bad_request(env, input=None))["param"] == "input"
    assert (await bad_request(env, max_output_tokens=0))["param"] == "max_output_tokens"


async def test_conversation_is_refused_pointing_at_previous_response_id(env: Env) -> None:
    body = await bad_request(env, conversation="conv_123")
    assert body["param"] == "conversation" and "previous_response_id" in body["message"]
    assert not env.up["openai"].requests


@pytest.mark.parametrize("tool", [{"type": "code_interpreter", "container": {"type": "auto"}},
                                  {"type": "file_search", "vector_store_ids": ["vs"]},
                                  {"type": "computer_use_preview", "display_width": 1, "display_height": 1,
                                   "environment": "linux"}])  # fmt: skip
async def test_built_in_tools_are_refused(env: Env, tool: dict[str, Any]) -> None:
    body = await bad_request(env, tools=[WEATHER, tool])
    assert body["param"] == "tools[1].type" and tool["type"] in body["message"]


async def test_unknown_model_is_404_in_openais_shape(env: Env) -> None:
    async with env.client() as c:
        with pytest.raises(openai.NotFoundError) as e:
            await c.responses.create(model="no-such-model", input="hi")
        with pytest.raises(openai.NotFoundError):
            await c.responses.create(model="no-such-model", input="hi", stream=True)
    assert e.value.body["code"] == 404 and "no-such-model" in e.value.body["message"]  # type: ignore[index]


async def test_missing_key_is_401(env: Env) -> None:
    async with env.client("sk-kr-wrong") as c:
        with pytest.raises(openai.AuthenticationError):
            await c.responses.create(model="gpt-test", input="hi")


@pytest.mark.parametrize(("upstream", "stream"), [(u, s) for u in UPSTREAMS for s in (False, True)])
async def test_upstream_failures_keep_the_right_status(env: Env, upstream: str, stream: bool) -> None:
    env.up[upstream].script(Fault(status=500), Fault(status=429, headers={"retry-after": "7"}))
    async with env.client() as c:
        with pytest.raises(openai.APIStatusError) as e:
            await c.responses.create(model=MODEL[upstream], input="hi", stream=stream)
        assert e.value.status_code == 502
        with pytest.raises(openai.RateLimitError) as rl:
            await c.responses.create(model=MODEL[upstream], input="hi", stream=stream)
        assert rl.value.response.headers["retry-after"] == "7"


@both
async def test_failure_mid_stream_ends_with_response_failed(env: Env, upstream: str) -> None:
    env.up[upstream].script(Fault(stream_error_after=5, reply=Reply(text="abcdefghijklmnopqrstuvwxyz", chunk_size=2)))
    r, events = await ask(env, "stream", model=MODEL[upstream], input="hi")
    assert events[-1].type == "response.failed"
    assert r.status == "failed" and r.error is not None and r.error.message
    assert r.output and r.output[0].status == "incomplete"  # type: ignore[union-attr]


async def test_failure_after_keepalives_committed_the_stream_is_response_failed(env: Env) -> None:
    # a slow first byte commits the 200 (SSE comments keep it alive); the failure then comes in-band
    env.up["openai"].script(Fault(status=500, delay_first_byte=3.5))
    r, events = await ask(env, "stream", model="gpt-test", input="hi")
    assert [e.type for e in events] == ["response.created", "response.in_progress", "response.failed"]
    assert r.status == "failed" and r.error is not None and r.error.code == "server_error"
    assert r.model == "gpt-test" and r.id.startswith("resp_")


# ---- routing, billing, records -------------------------------------------------------------


async def test_provider_preferences_models_fallbacks_and_upstream_failover(env: Env) -> None:
    async with env.client() as c:
        r = await c.responses.create(model="both-test", input="hi", extra_body={"provider": {"order": ["an"]}})
        assert r.output_text and env.up["anthropic"].requests and not env.up["openai"].requests
        r = await c.responses.create(model="missing-model", input="hi", extra_body={"models": ["gpt-test"]})
        assert r.model == "gpt-test" and env.up["openai"].requests
        env.up["openai"].script(Fault(status=503))
        raw = await c.responses.with_raw_response.create(model="both-test", input="hi",
                                                         extra_body={"provider": {"order": ["oa", "an"]}})  # fmt: skip
        assert raw.headers["X-KeepRouter-Provider"] == "an"
        gen = raw.headers["X-Generation-Id"]

    async def recorded() -> Any:  # written just after the answer, off the request path
        status, data = await get_json_record(env, gen)
        return data if status == 200 else None

    data = await wait_until(recorded, 10.0)
    assert [a["provider"] for a in data["provider_responses"]] == ["oa"]


async def get_json_record(env: Env, some_id: str, key: str | None = None) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s:
        status, body = await get_json(s, f"{env.gw.url}/api/v1/generation?id={some_id}", key or env.gw.admin_key)
    return status, body.get("data", body)


@pytest.mark.parametrize(("upstream", "stream"), [(u, s) for u in UPSTREAMS for s in (False, True)])
async def test_generation_recorded_and_billed_once(env: Env, upstream: str, stream: bool) -> None:
    made = await env.gw.create_key("responses", 1.0)
    key, key_hash = made["key"], made["data"]["hash"]
    env.up[upstream].script(Reply(text="billed", input_tokens=100, output_tokens=50, cache_read=20))
    async with env.client(key) as c:
        if stream:
            streaming = c.responses.with_streaming_response
            async with streaming.create(model=MODEL[upstream], input="hi", stream=True) as raw:
                gen = raw.headers["X-Generation-Id"]
                lines = [line async for line in raw.iter_lines()]
            assert any("response.completed" in line for line in lines)
        else:
            got = await c.responses.with_raw_response.create(model=MODEL[upstream], input="hi")
            gen = got.headers["X-Generation-Id"]
            r = got.parse()
            assert r.id == "resp_" + gen.removeprefix("gen-")
            assert r.usage is not None
    store = env.gw.server.app[STATE].store

    async def settled() -> Any:
        u = await store.key_usage(key_hash)
        return u if u is not None and u.generations == 1 and u.open_holds == 0 else None

    usage = await wait_until(settled, 10.0)
    for some_id in (gen, "resp_" + gen.removeprefix("gen-")):  # the generation answers to either id
        status, g = await get_json_record(env, some_id, key)
        assert status == 200 and g["id"] == gen
    assert g["api_type"] == "responses" and g["streamed"] is stream and g["status"] == "ok"
    assert (g["tokens_prompt"], g["tokens_completion"], g["native_tokens_cached"]) == (120, 50, 20)
    p = env.gw.config.models[MODEL[upstream]].endpoints[0].pricing
    want = pricing.quantize(price_of(120, 50, 20, 0, p))
    assert Decimal(str(g["total_cost"])) == want == usage.usage
    if not stream:
        assert r.usage is not None  # `cost` is KeepRouter's extra field, not one the SDK declares
        assert Decimal(str(r.usage.model_dump()["cost"])) == want


# ---- surface -------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/v1", "", "/api/v1"])
async def test_every_prefix_serves_responses(env: Env, prefix: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(env.gw.url + prefix + "/responses", json={"model": "gpt-test", "input": "hi"},
                          headers={"Authorization": f"Bearer {env.gw.admin_key}"}) as r:  # fmt: skip
            assert r.status == 200, await r.text()
            body = await r.json()
    assert body["object"] == "response" and body["output"][0]["content"][0]["text"] == "Hello!"


async def test_the_sdk_lists_models(env: Env) -> None:
    async with env.client() as c:
        ids = [m.id async for m in c.models.list()]
    assert {"gpt-test", "claude-test", "both-test"} <= set(ids)

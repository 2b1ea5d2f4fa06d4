"""The whole matrix: {OpenAI SDK, Anthropic SDK} x {openai upstream, anthropic upstream} x
{stream, no stream} x scenarios, asserting what the client got AND what the upstream received."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import pytest_asyncio
from support.clients import Result, anthropic_client, call_anthropic, call_openai, openai_client
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply, ToolCall

PARIS, ROME = '{"city":"Paris"}', '{"city":"Rome"}'
CLIENTS = ["openai", "anthropic"]
UPSTREAMS = ["openai", "anthropic"]
STREAM = [False, True]
MODEL = {"openai": "gpt-test", "anthropic": "claude-test"}
UPSTREAM_MODEL = {"openai": "up-gpt", "anthropic": "up-claude"}
WEATHER_TOOL_OA = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_TOOL_AN = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@dataclass
class Env:
    gw: RunningGateway
    upstreams: dict[str, OpenAIUpstream | AnthropicUpstream]


@pytest_asyncio.fixture
async def env(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[Env]:
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))
    async with run_gateway(cfg) as gw:
        yield Env(gw, {"openai": openai_upstream, "anthropic": anthropic_upstream})


async def ask(env: Env, client: str, upstream: str, stream: bool, **kw: Any) -> Result:
    kw["model"] = MODEL[upstream]
    if client == "openai":
        async with openai_client(env.gw.url, env.gw.admin_key) as c:
            return await call_openai(c, stream, **kw)
    async with anthropic_client(env.gw.url, env.gw.admin_key) as c:
        return await call_anthropic(c, stream, **kw)


def sent(env: Env, upstream: str) -> dict[str, Any]:
    reqs = [r for r in env.upstreams[upstream].requests if r.body is not None]
    assert reqs, "the upstream received nothing"
    body: dict[str, Any] = reqs[-1].body
    return body


matrix = pytest.mark.parametrize(
    ("client", "upstream", "stream"),
    [(c, u, s) for c in CLIENTS for u in UPSTREAMS for s in STREAM],
)


@matrix
async def test_text_answer_and_usage(env: Env, client: str, upstream: str, stream: bool) -> None:
    env.upstreams[upstream].script(Reply(text="Hello there, world!", input_tokens=21, output_tokens=6))
    r = await ask(env, client, upstream, stream, messages=[{"role": "user", "content": "Hi"}])
    assert r.text == "Hello there, world!"
    assert r.stop == "end"
    assert (r.input_tokens, r.output_tokens) == (21, 6)
    assert r.id and r.id.startswith("gen-")
    body = sent(env, upstream)
    assert body["model"] == UPSTREAM_MODEL[upstream]
    assert body["messages"][-1]["role"] == "user"
    if upstream == "openai" and stream:
        assert body["stream_options"] == {"include_usage": True}


@matrix
async def test_system_prompt_reaches_upstream(env: Env, client: str, upstream: str, stream: bool) -> None:
    env.upstreams[upstream].script(Reply(text="ok"))
    if client == "openai":
        msgs = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]
        r = await ask(env, client, upstream, stream, messages=msgs)
    else:
        r = await ask(env, client, upstream, stream, system="Be terse.", messages=[{"role": "user", "content": "Hi"}])
    assert r.text == "ok"
    body = sent(env, upstream)
    if upstream == "openai":
        assert body["messages"][0] == {"role": "system", "content": "Be terse."}
        assert body["messages"][1]["role"] == "user"
    else:
        system = body["system"]
        text = system if isinstance(system, str) else "".join(b["text"] for b in system)
        assert text == "Be terse."
        assert [m["role"] for m in body["messages"]] == ["user"]


@matrix
async def test_multi_turn_keeps_order(env: Env, client: str, upstream: str, stream: bool) -> None:
    env.upstreams[upstream].script(Reply(text="Paris."))
    msgs = [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"},
    ]
    await ask(env, client, upstream, stream, messages=msgs)
    got = sent(env, upstream)["messages"]
    assert [m["role"] for m in got] == ["user", "assistant", "user"]

    def text_of(m: dict[str, Any]) -> str:
        c = m["content"]
        return c if isinstance(c, str) else "".join(p.get("text", "") for p in c)

    assert [text_of(m) for m in got] == ["Capital of France?", "Paris.", "And of Italy?"]


@matrix
async def test_tool_call(env: Env, client: str, upstream: str, stream: bool) -> None:
    env.upstreams[upstream].script(
        Reply(text=None, tool_calls=[ToolCall(None, "get_weather", {"city": "Paris", "unit": "celsius"})], args_chunk=4)
    )
    tools = [WEATHER_TOOL_OA] if client == "openai" else [WEATHER_TOOL_AN]
    r = await ask(env, client, upstream, stream, messages=[{"role": "user", "content": "Weather?"}], tools=tools)
    assert r.stop == "tool_use"
    assert len(r.tool_calls) == 1
    call_id, name, args = r.tool_calls[0]
    assert call_id
    assert name == "get_weather"
    assert args == {"city": "Paris", "unit": "celsius"}
    body = sent(env, upstream)
    if upstream == "openai":
        assert body["tools"][0]["function"]["name"] == "get_weather"
        assert body["tools"][0]["function"]["parameters"]["required"] == ["city"]
    else:
        assert body["tools"][0]["name"] == "get_weather"
        assert body["tools"][0]["input_schema"]["required"] == ["city"]


@matrix
async def test_text_then_parallel_tool_calls(env: Env, client: str, upstream: str, stream: bool) -> None:
    env.upstreams[upstream].script(
        Reply(
            text="Checking both.",
            tool_calls=[
                ToolCall(None, "get_weather", {"city": "Paris"}),
                ToolCall(None, "get_weather", {"city": "Rome", "detail": {"days": [1, 2, 3]}}),
            ],
        )
    )
    tools = [WEATHER_TOOL_OA] if client == "openai" else [WEATHER_TOOL_AN]
    r = await ask(env, client, upstream, stream, messages=[{"role": "user", "content": "Paris and Rome?"}], tools=tools)
    assert r.text == "Checking both."
    assert [(n, a) for _, n, a in r.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome", "detail": {"days": [1, 2, 3]}}),
    ]
    assert len({i for i, _, _ in r.tool_calls}) == 2
    assert r.stop == "tool_use"


@matrix
async def test_tool_result_round_trip(env: Env, client: str, upstream: str, stream: bool) -> None:
    env.upstreams[upstream].script(Reply(text="It is sunny in Paris and rainy in Rome."))
    if client == "openai":
        msgs: list[dict[str, Any]] = [
            {"role": "user", "content": "Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": PARIS}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": ROME}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": "rainy"},
        ]
        tools = [WEATHER_TOOL_OA]
    else:
        msgs = [
            {"role": "user", "content": "Paris and Rome?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "rainy"},
                ],
            },
        ]
        tools = [WEATHER_TOOL_AN]
    r = await ask(env, client, upstream, stream, messages=msgs, tools=tools)
    assert r.text == "It is sunny in Paris and rainy in Rome."
    got = sent(env, upstream)["messages"]
    if upstream == "openai":
        assert [m["role"] for m in got] == ["user", "assistant", "tool", "tool"]
        assert [c["id"] for c in got[1]["tool_calls"]] == ["call_1", "call_2"]
        import json

        assert json.loads(got[1]["tool_calls"][1]["function"]["arguments"]) == {"city": "Rome"}
        assert [(m["tool_call_id"], m["content"]) for m in got[2:]] == [("call_1", "sunny"), ("call_2", "rainy")]
    else:
        assert [m["role"] for m in got] == ["user", "assistant", "user"]
        uses = [b for b in got[1]["content"] if b["type"] == "tool_use"]
        assert [(b["id"], b["input"]) for b in uses] == [
            ("call_1", {"city": "Paris"}),
            ("call_2", {"city": "Rome"}),
        ]
        results = got[2]["content"]
        assert [(b["type"], b["tool_use_id"]) for b in results] == [
            ("tool_result", "call_1"),
            ("tool_result", "call_2"),
        ]

        def text(b: dict[str, Any]) -> str:
            c = b["content"]
            return c if isinstance(c, str) else "".join(x["text"] for x in c)

        assert [text(b) for b in results] == ["sunny", "rainy"]


@matrix
@pytest.mark.parametrize("stop", ["max_tokens", "stop_sequence"])
async def test_stop_reasons(env: Env, client: str, upstream: str, stream: bool, stop: str) -> None:
    seq = "END" if stop == "stop_sequence" else None
    env.upstreams[upstream].script(Reply(text="one two", stop=stop, stop_sequence=seq))
    kw: dict[str, Any] = {"messages": [{"role": "user", "content": "count"}]}
    if client == "openai":
        kw["max_tokens"] = 5
        kw["stop"] = ["END"]
    else:
        kw["max_tokens"] = 5
        kw["stop_sequences"] = ["END"]
    r = await ask(env, client, upstream, stream, **kw)
    expected = stop
    if client == "openai" and stop == "stop_sequence":
        expected = "end"  # OpenAI has one reason, "stop", for both
    if client == "anthropic" and stop == "stop_sequence" and upstream == "openai":
        expected = "end"  # an OpenAI upstream does not say which reason; end_turn it is
    assert r.stop == expected
    body = sent(env, upstream)
    if upstream == "openai":
        assert body["stop"] == ["END"]
        assert body.get("max_tokens") == 5 or body.get("max_completion_tokens") == 5
    else:
        assert body["stop_sequences"] == ["END"]
        assert body["max_tokens"] == 5


@matrix
async def test_cached_tokens_are_counted_once(env: Env, client: str, upstream: str, stream: bool) -> None:
    reply = Reply(text="cached", input_tokens=10, cache_read=1000, cache_write=50, output_tokens=3)
    env.upstreams[upstream].script(reply)
    r = await ask(env, client, upstream, stream, messages=[{"role": "user", "content": "Hi"}])
    assert r.input_tokens == 1060
    assert r.output_tokens == 3


@matrix
@pytest.mark.parametrize(
    ("status", "openai_exc", "anthropic_exc"),
    [
        (429, openai.RateLimitError, anthropic.RateLimitError),
        (500, openai.InternalServerError, anthropic.InternalServerError),
        (400, openai.BadRequestError, anthropic.BadRequestError),
    ],
)
async def test_upstream_errors_in_callers_format(
    env: Env, client: str, upstream: str, stream: bool, status: int, openai_exc: type, anthropic_exc: type
) -> None:
    headers = {"retry-after": "7"} if status == 429 else {}
    env.upstreams[upstream].script(Fault(status=status, headers=headers))
    exc = openai_exc if client == "openai" else anthropic_exc
    with pytest.raises(exc) as info:
        await ask(env, client, upstream, stream, messages=[{"role": "user", "content": "Hi"}])
    err = info.value
    expected_status = 502 if status == 500 else status
    assert err.status_code == expected_status
    if status == 429:
        assert err.response.headers.get("retry-after") == "7"
    body = err.body
    if client == "openai":
        assert isinstance(body, dict) and "message" in body  # the SDK unwraps body["error"]
    else:
        assert isinstance(body, dict) and body["type"] == "error"


@pytest.mark.parametrize("client", CLIENTS)
async def test_unknown_model_is_404(env: Env, client: str) -> None:
    with pytest.raises(openai.NotFoundError if client == "openai" else anthropic.NotFoundError):
        if client == "openai":
            async with openai_client(env.gw.url, env.gw.admin_key) as c:
                await c.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
        else:
            async with anthropic_client(env.gw.url, env.gw.admin_key) as c:
                await c.messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])


@pytest.mark.parametrize("client", CLIENTS)
async def test_bad_key_is_401(env: Env, client: str) -> None:
    with pytest.raises(openai.AuthenticationError if client == "openai" else anthropic.AuthenticationError):
        if client == "openai":
            async with openai_client(env.gw.url, "sk-wrong") as c:
                await c.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "x"}])
        else:
            async with anthropic_client(env.gw.url, "sk-wrong") as c:
                await c.messages.create(model="gpt-test", max_tokens=5, messages=[{"role": "user", "content": "x"}])

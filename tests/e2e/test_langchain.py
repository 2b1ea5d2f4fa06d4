"""Acceptance: LangChain's ChatOpenAI (Chat Completions and Responses) and ChatAnthropic, unmodified,
through the gateway to both upstream formats: invoke, stream, bind_tools, with_structured_output.

Only the async methods are used: the gateway and the emulated upstreams run on the test's event loop.
``gpt-test`` is served by an OpenAI-format upstream, ``claude-test`` by an Anthropic-format one.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field, SecretStr
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams import AnthropicUpstream, OpenAIUpstream, Received, Reply, ToolCall

UPSTREAMS = {"openai": ("gpt-test", "up-gpt"), "anthropic": ("claude-test", "up-claude")}
UPSTREAM_PATH = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
CLIENTS = ["chat-openai", "chat-openai-responses", "chat-anthropic"]
TEXT = "Hello from the emulated upstream."
CALL_ID = {"openai": "call_lcweather1", "anthropic": "toolu_lcweather1"}


class Weather(BaseModel):
    """The weather in one city."""

    city: str = Field(description="the city's name")
    celsius: int


class GetWeather(BaseModel):
    """Look up the current weather for a city."""

    city: str


@dataclass
class Stack:
    gw: RunningGateway
    key: str
    upstreams: dict[str, OpenAIUpstream | AnthropicUpstream]

    def model(self, client: str, fmt: str) -> BaseChatModel:
        name = UPSTREAMS[fmt][0]
        if client == "chat-anthropic":
            # populate_by_name: `model` and `max_tokens` are accepted besides the aliases (model_name,
            # max_tokens_to_sample) the type checker's view of the pydantic constructor knows
            return ChatAnthropic(  # type: ignore[call-arg]
                model=name,
                base_url=self.gw.url,
                api_key=SecretStr(self.key),
                max_retries=0,
                timeout=20,
                max_tokens=64,
            )
        return ChatOpenAI(
            model=name,
            base_url=self.gw.url + "/v1",
            api_key=SecretStr(self.key),
            max_retries=0,
            timeout=20,
            max_completion_tokens=64,
            stream_usage=True,
            use_responses_api=client == "chat-openai-responses",
        )

    def generations(self, fmt: str) -> list[Received]:
        up = self.upstreams[fmt]
        other = self.upstreams["anthropic" if fmt == "openai" else "openai"]
        assert other.requests == [], "the model's other-format upstream was called"
        assert [r.path for r in up.requests] == [UPSTREAM_PATH[fmt]] * len(up.requests)
        assert all(r.model == UPSTREAMS[fmt][1] for r in up.requests)
        return up.requests


@pytest_asyncio.fixture
async def stack(
    tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> AsyncIterator[Stack]:
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))
    async with run_gateway(cfg) as gw:
        key = (await gw.create_key("langchain-e2e"))["key"]
        yield Stack(gw, key, {"openai": openai_upstream, "anthropic": anthropic_upstream})


def _text(msg: AIMessage) -> str:
    return str(msg.text)


async def _streamed(llm: Any, prompt: str) -> tuple[AIMessageChunk, int]:
    chunks = [c async for c in llm.astream(prompt)]
    assert chunks, "no chunk"
    return functools.reduce(operator.add, chunks), len(chunks)


both = pytest.mark.parametrize("fmt", list(UPSTREAMS))
clients = pytest.mark.parametrize("client", CLIENTS)


@both
@clients
async def test_invoke(stack: Stack, client: str, fmt: str) -> None:
    stack.upstreams[fmt].script(Reply(text=TEXT, input_tokens=12, output_tokens=7))
    msg = await stack.model(client, fmt).ainvoke("Say hello")
    assert _text(msg) == TEXT
    assert msg.usage_metadata is not None
    assert (msg.usage_metadata["input_tokens"], msg.usage_metadata["output_tokens"]) == (12, 7)
    (req,) = stack.generations(fmt)
    assert req.stream is False


@both
@clients
async def test_stream(stack: Stack, client: str, fmt: str) -> None:
    stack.upstreams[fmt].script(Reply(text=TEXT, input_tokens=12, output_tokens=7, chunk_size=4))
    msg, count = await _streamed(stack.model(client, fmt), "Say hello")
    assert _text(msg) == TEXT
    assert count > 2  # delivered in pieces
    assert msg.usage_metadata is not None
    assert (msg.usage_metadata["input_tokens"], msg.usage_metadata["output_tokens"]) == (12, 7)
    (req,) = stack.generations(fmt)
    assert req.stream is True


def _offered(fmt: str, req: Received) -> tuple[str, dict[str, Any]]:
    (t,) = req.body["tools"]
    if fmt == "openai":
        return t["function"]["name"], t["function"]["parameters"]
    return t["name"], t["input_schema"]


@pytest.mark.parametrize("streamed", [False, True], ids=["invoke", "stream"])
@both
@clients
async def test_bind_tools(stack: Stack, client: str, fmt: str, streamed: bool) -> None:
    call = ToolCall(CALL_ID[fmt], "GetWeather", {"city": "Paris"})
    stack.upstreams[fmt].script(Reply(text=None, tool_calls=[call]))
    llm = stack.model(client, fmt).bind_tools([GetWeather])
    msg: AIMessage
    if streamed:
        msg, _ = await _streamed(llm, "Weather in Paris?")
    else:
        msg = await llm.ainvoke("Weather in Paris?")
    assert [(c["id"], c["name"], c["args"]) for c in msg.tool_calls] == [
        (CALL_ID[fmt], "GetWeather", {"city": "Paris"})
    ]
    assert msg.invalid_tool_calls == []
    (req,) = stack.generations(fmt)
    name, schema = _offered(fmt, req)
    assert name == "GetWeather" and schema["properties"]["city"]["type"] == "string"


STRUCTURED: dict[str, Callable[[Any], Any]] = {
    "json_schema": lambda llm: llm.with_structured_output(Weather, method="json_schema"),
    "function_calling": lambda llm: llm.with_structured_output(Weather, method="function_calling"),
}


def _structured_request(client: str, fmt: str, method: str, req: Received) -> None:
    """The upstream was asked for the caller's schema, in the form its format honours."""
    body = req.body
    if client == "chat-anthropic" and fmt == "anthropic" and method == "json_schema":
        # Anthropic's native structured output, asked for by the client itself, is passed on as it came
        spec = body["output_config"]["format"]
        assert spec["type"] == "json_schema" and spec["schema"]["required"] == ["city", "celsius"]
        assert "tools" not in body
        return
    if fmt == "openai" and method == "json_schema":
        rf = body["response_format"]
        assert rf["type"] == "json_schema" and rf["json_schema"]["schema"]["required"] == ["city", "celsius"]
        return
    tools = body["tools"]
    if fmt == "openai":
        (tool,) = tools
        assert tool["function"]["name"] == "Weather"
        assert body["tool_choice"]["function"]["name"] == "Weather"
        return
    (tool,) = tools  # a forced tool whose input schema is the caller's schema
    assert tool["input_schema"]["required"] == ["city", "celsius"]
    assert (body["tool_choice"]["type"], body["tool_choice"]["name"]) == ("tool", tool["name"])


@pytest.mark.parametrize("method", list(STRUCTURED))
@both
@clients
async def test_with_structured_output(stack: Stack, client: str, fmt: str, method: str) -> None:
    # an OpenAI upstream answers the schema as JSON text; the Anthropic emulator turns JSON text into the
    # forced tool's call, as the real API answers a forced tool
    answer = {"city": "Paris", "celsius": 21}
    if method == "function_calling" and fmt == "openai":
        stack.upstreams[fmt].script(Reply(text=None, tool_calls=[ToolCall("call_lcw2", "Weather", answer)]))
    else:
        stack.upstreams[fmt].script(Reply(text=json.dumps(answer)))
    result = await STRUCTURED[method](stack.model(client, fmt)).ainvoke("Weather in Paris, as data")
    assert result == Weather(city="Paris", celsius=21)
    (req,) = stack.generations(fmt)
    _structured_request(client, fmt, method, req)

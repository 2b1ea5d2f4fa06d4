"""Structured output on an Anthropic-format upstream (issue 9 §5), through the openai SDK's own
`chat.completions.parse` / `.stream(response_format=...)` against the emulated Anthropic upstream.

The upstream gets a forced tool whose input schema is the caller's schema; the caller gets the JSON
text in `message.content` (never a tool call) with finish_reason "stop", streamed or not.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pydantic
import pytest_asyncio
from openai.types.chat import ChatCompletionMessageParam
from support.clients import openai_client
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply


class Weather(pydantic.BaseModel):
    city: str
    temperature: float
    conditions: list[str]


ANSWER: dict[str, Any] = {"city": "Paris", "temperature": 21.5, "conditions": ["sunny", "dry"]}
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Paris?"}]


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    async with run_gateway(two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))) as g:
        yield g


def assert_forced_tool(up: AnthropicUpstream, name: str) -> dict[str, object]:
    body = up.requests[-1].body
    [tool] = body["tools"]
    assert tool["name"] == name
    assert body["tool_choice"] == {"type": "tool", "name": name, "disable_parallel_tool_use": True}
    assert "response_format" not in body
    schema: dict[str, object] = tool["input_schema"]
    return schema


async def test_parse_gets_the_json_as_message_content(
    gw: RunningGateway, anthropic_upstream: AnthropicUpstream
) -> None:
    anthropic_upstream.script(Reply(text=json.dumps(ANSWER)))
    async with openai_client(gw.url, gw.admin_key) as client:
        done = await client.chat.completions.parse(model="claude-test", messages=MESSAGES, response_format=Weather)
    choice = done.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.tool_calls is None or choice.message.tool_calls == []
    assert json.loads(choice.message.content or "") == ANSWER
    assert choice.message.parsed == Weather(**ANSWER)
    schema = assert_forced_tool(anthropic_upstream, "Weather")
    assert schema["required"] == ["city", "temperature", "conditions"]  # the caller's schema, as sent
    assert schema["additionalProperties"] is False


async def test_stream_gets_the_json_as_content_deltas(
    gw: RunningGateway, anthropic_upstream: AnthropicUpstream
) -> None:
    anthropic_upstream.script(Reply(text=json.dumps(ANSWER), args_chunk=6))
    deltas: list[str] = []
    async with (
        openai_client(gw.url, gw.admin_key) as client,
        client.chat.completions.stream(model="claude-test", messages=MESSAGES, response_format=Weather) as s,
    ):
        async for ev in s:
            if ev.type == "content.delta":
                deltas.append(ev.delta)
            assert ev.type != "tool_calls.function.arguments.delta"
        final = await s.get_final_completion()
    assert len(deltas) > 3  # streamed in pieces, as the upstream produced them
    assert json.loads("".join(deltas)) == ANSWER
    choice = final.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.parsed == Weather(**ANSWER)
    assert not choice.message.tool_calls
    assert_forced_tool(anthropic_upstream, "Weather")


async def test_json_object_mode_gets_a_json_object(gw: RunningGateway, anthropic_upstream: AnthropicUpstream) -> None:
    anthropic_upstream.script(Reply(text='{"ok": true, "n": 3}'))
    async with openai_client(gw.url, gw.admin_key) as client:
        done = await client.chat.completions.create(
            model="claude-test", messages=MESSAGES, response_format={"type": "json_object"}
        )
    assert done.choices[0].finish_reason == "stop"
    assert json.loads(done.choices[0].message.content or "") == {"ok": True, "n": 3}
    schema = assert_forced_tool(anthropic_upstream, "json_response")
    assert schema["type"] == "object"


async def test_an_openai_upstream_still_gets_response_format_itself(
    gw: RunningGateway, openai_upstream: OpenAIUpstream
) -> None:
    openai_upstream.script(Reply(text=json.dumps(ANSWER)))
    async with openai_client(gw.url, gw.admin_key) as client:
        done = await client.chat.completions.parse(model="gpt-test", messages=MESSAGES, response_format=Weather)
    assert done.choices[0].message.parsed == Weather(**ANSWER)
    body = openai_upstream.requests[-1].body
    assert body["response_format"]["type"] == "json_schema" and "tools" not in body

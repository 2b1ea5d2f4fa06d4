"""The `vertex` kind end to end: the OpenAI Chat and Anthropic Messages SDKs -> the gateway -> the Vertex
emulator, streamed and not, for a Gemini model and a Claude model of one provider that authenticates
with a test service account (the emulator verifies its signed JWT and then only its tokens)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from support.clients import anthropic_client, call_anthropic, call_openai, openai_client
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url
from upstreams.script import Reply, ToolCall
from upstreams.vertex_server import VERSION, VertexUpstream

GEMINI = "gemini-2.5-flash"
CLAUDE = "claude-sonnet-4-5@20250929"
PREFIX = "/v1/projects/test-project/locations/us-east5/publishers"
TOOLS_OA = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]  # fmt: skip


@pytest_asyncio.fixture
async def gw(vertex_upstream: VertexUpstream, key_file: Path, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    caps = ["streaming", "tools", "reasoning", "vision"]
    provider = {"api": "vertex", "project": "test-project", "location": "us-east5",
                "base_url": vertex_upstream.url, "credentials": str(key_file)}  # fmt: skip
    cfg = {
        "database": sqlite_url(tmp_path),
        "admin_key": ADMIN_KEY,
        "providers": {"vx": provider},
        "models": {
            "gem": {"name": "Gemini", "maker": "Google", "context_length": 1000000, "endpoints": [
                {"provider": "vx", "model": GEMINI, "capabilities": caps, "pricing": {"input": 0.3, "output": 2.5}}]},
            "son": {"name": "Sonnet", "maker": "Anthropic", "context_length": 200000, "endpoints": [
                {"provider": "vx", "model": CLAUDE, "capabilities": caps, "pricing": {"input": 3, "output": 15}}]},
        },
    }  # fmt: skip
    async with run_gateway(cfg) as g:
        yield g


def _last(up: VertexUpstream) -> Any:
    return next(r for r in reversed(up.requests) if r.path != "/token")


def _check_sent(up: VertexUpstream, family: str, stream: bool) -> None:
    rec = _last(up)
    assert rec.header(
        "authorization",
    ).startswith("Bearer ya29.")
    if family == "gem":
        method = "streamGenerateContent" if stream else "generateContent"
        assert rec.path == f"{PREFIX}/google/models/{GEMINI}:{method}"
        assert rec.query == ({"alt": "sse"} if stream else {})
    else:
        method = "streamRawPredict" if stream else "rawPredict"
        assert rec.path == f"{PREFIX}/anthropic/models/{CLAUDE}:{method}"
        assert rec.body["anthropic_version"] == VERSION and "model" not in rec.body


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["gem", "son"])
async def test_text_and_usage_from_both_clients(
    gw: RunningGateway, vertex_upstream: VertexUpstream, model: str, stream: bool
) -> None:
    reply = Reply(text=f"Hello from {model}", input_tokens=12, output_tokens=5)
    vertex_upstream.script(reply, reply)
    async with openai_client(gw.url, gw.admin_key) as oa:
        got = await call_openai(oa, stream, model=model, messages=[{"role": "user", "content": "Hi"}])
    assert (got.text, got.stop, got.input_tokens, got.output_tokens) == (f"Hello from {model}", "end", 12, 5)
    _check_sent(vertex_upstream, model, stream)
    async with anthropic_client(gw.url, gw.admin_key) as an:
        got = await call_anthropic(an, stream, model=model, messages=[{"role": "user", "content": "Hi"}])
    assert (got.text, got.stop, got.input_tokens, got.output_tokens) == (f"Hello from {model}", "end", 12, 5)
    _check_sent(vertex_upstream, model, stream)
    assert vertex_upstream.grants == 1  # one token for every request


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["gem", "son"])
async def test_a_tool_round_trip_from_the_openai_client(
    gw: RunningGateway, vertex_upstream: VertexUpstream, model: str, stream: bool
) -> None:
    vertex_upstream.script(
        Reply(text=None, tool_calls=[ToolCall(None, "get_weather", {"city": "Paris"})]), Reply(text="Sunny.")
    )
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    async with openai_client(gw.url, gw.admin_key) as oa:
        first = await call_openai(oa, stream, model=model, messages=messages, tools=TOOLS_OA)
        assert first.stop == "tool_use"
        ((call_id, name, args),) = first.tool_calls
        assert (name, args) == ("get_weather", {"city": "Paris"})
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": '{"city": "Paris"}'}}]},
            {"role": "tool", "tool_call_id": call_id, "content": "sunny, 24C"},
        ]  # fmt: skip
        second = await call_openai(oa, stream, model=model, messages=messages, tools=TOOLS_OA)
    assert second.text == "Sunny."
    _check_sent(vertex_upstream, model, stream)


@pytest.mark.parametrize("model", ["gem", "son"])
async def test_count_tokens_asks_vertex(gw: RunningGateway, vertex_upstream: VertexUpstream, model: str) -> None:
    async with anthropic_client(gw.url, gw.admin_key) as an:
        counted = await an.messages.count_tokens(model=model, messages=[{"role": "user", "content": "Hi there"}])
    assert counted.input_tokens > 0
    rec = _last(vertex_upstream)
    if model == "gem":
        assert rec.path == f"{PREFIX}/google/models/{GEMINI}:countTokens" and "contents" in rec.body
    else:
        assert rec.path == f"{PREFIX}/anthropic/models/count-tokens:rawPredict" and rec.body["model"] == CLAUDE
        assert rec.body["anthropic_version"] == VERSION  # as Anthropic's own Vertex clients send it

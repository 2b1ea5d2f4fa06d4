"""Acceptance: openai-node and the Vercel AI SDK, unmodified, through the gateway to both upstream formats.

Each case runs tests/e2e/node/sdk.mjs once (node, bounded, one at a time) with one client, one mode and
one model: ``gpt-test`` is served by an OpenAI-format upstream, ``claude-test`` by an Anthropic-format
one. The script prints what the SDK returned; the test asserts it and what reached the upstream.

Clients: openai-node ``chat.completions`` and ``responses``; Vercel ``ai`` with ``@ai-sdk/openai``'s
default provider (Responses API), its ``.chat()`` (Chat Completions), and ``@ai-sdk/anthropic``
(Messages). Modes: generate, stream, and a tool round trip non-streamed and streamed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams import AnthropicUpstream, OpenAIUpstream, Received, Reply, ToolCall

from e2e.node_sdk import no_install, node_sdk_dir, node_sdk_problem, run_script

pytestmark = pytest.mark.slow

CLIENTS = ["openai-chat", "openai-responses", "ai-responses", "ai-chat", "ai-anthropic"]
UPSTREAMS = {"openai": ("gpt-test", "up-gpt"), "anthropic": ("claude-test", "up-claude")}
# where each client posts, on the gateway
CLIENT_PATH = {
    "openai-chat": "/v1/chat/completions",
    "openai-responses": "/v1/responses",
    "ai-responses": "/v1/responses",
    "ai-chat": "/v1/chat/completions",
    "ai-anthropic": "/v1/messages",
}
UPSTREAM_PATH = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
TEXT = "Hello from the emulated upstream."
FINAL = "It is sunny in Paris, 21 degrees."
CALL_ID = {"openai": "call_e2eweather1", "anthropic": "toolu_e2eweather1"}


@pytest.fixture(scope="session")
def node_dir() -> Path:
    path = node_sdk_dir()
    if path is None:
        if no_install():
            pytest.skip(f"node SDKs unavailable: {node_sdk_problem()}")
        pytest.fail(f"could not install the node SDKs: {node_sdk_problem()}")
    return path


@dataclass
class Stack:
    gw: RunningGateway
    key: str
    upstreams: dict[str, OpenAIUpstream | AnthropicUpstream]


@pytest_asyncio.fixture
async def stack(
    tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> AsyncIterator[Stack]:
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))
    async with run_gateway(cfg) as gw:
        key = (await gw.create_key("node-sdk-e2e"))["key"]
        yield Stack(gw, key, {"openai": openai_upstream, "anthropic": anthropic_upstream})


async def _run(node_dir: Path, stack: Stack, client: str, mode: str, fmt: str) -> Any:
    case = {"client": client, "mode": mode, "baseURL": stack.gw.url, "apiKey": stack.key, "model": UPSTREAMS[fmt][0]}
    run = await run_script(node_dir, "sdk.mjs", case)
    assert run.output is not None and run.output.get("ok") is True, run.describe()
    return run.output["result"]


def _generations(stack: Stack, fmt: str) -> list[Received]:
    up = stack.upstreams[fmt]
    other = stack.upstreams["anthropic" if fmt == "openai" else "openai"]
    assert other.requests == [], "the model's other-format upstream was called"
    reqs = [r for r in up.requests if r.path == UPSTREAM_PATH[fmt]]
    assert [r.path for r in up.requests] == [UPSTREAM_PATH[fmt]] * len(reqs)
    for r in reqs:
        assert r.model == UPSTREAMS[fmt][1]
        assert r.api_key == ("sk-up-openai" if fmt == "openai" else "sk-up-anthropic")  # never the client's
    return reqs


def _check_stream_shape(client: str, result: dict[str, Any]) -> None:
    """What each SDK's stream must have looked like, beyond the text it assembled."""
    if client == "openai-chat":
        assert result["finishChunks"] == 1
        assert result["usageChunks"] == 1 and result["emptyChoiceChunks"] == 1  # include_usage: its own chunk
    elif client == "openai-responses":
        types = result["eventTypes"]
        assert types[:2] == ["response.created", "response.in_progress"]
        assert types[-1] == "response.completed"
        assert result["sequenceNumbers"] == list(range(len(types)))
    else:
        assert result["errors"] == [], result
        assert "error" not in result["parts"], result


@pytest.mark.parametrize("fmt", list(UPSTREAMS))
@pytest.mark.parametrize("client", CLIENTS)
async def test_generate(node_dir: Path, stack: Stack, client: str, fmt: str) -> None:
    stack.upstreams[fmt].script(Reply(text=TEXT, input_tokens=12, output_tokens=7))
    result = await _run(node_dir, stack, client, "generate", fmt)
    assert result["text"] == TEXT
    assert result["usage"] == {"input": 12, "output": 7}
    if client.startswith("ai-"):
        assert result["finishReason"] == "stop"
        assert result["warnings"] == []
    (req,) = _generations(stack, fmt)
    assert req.stream is False


@pytest.mark.parametrize("fmt", list(UPSTREAMS))
@pytest.mark.parametrize("client", CLIENTS)
async def test_stream(node_dir: Path, stack: Stack, client: str, fmt: str) -> None:
    stack.upstreams[fmt].script(Reply(text=TEXT, input_tokens=12, output_tokens=7, chunk_size=4))
    result = await _run(node_dir, stack, client, "stream", fmt)
    assert result["text"] == TEXT
    assert result["usage"] == {"input": 12, "output": 7}
    _check_stream_shape(client, result)
    if client.startswith("ai-"):
        assert result["finishReason"] == "stop"
        assert result["textDeltas"] > 1  # streamed, not delivered in one piece
    (req,) = _generations(stack, fmt)
    assert req.stream is True
    if fmt == "openai":  # the gateway asks for usage whatever the client asked
        assert req.body["stream_options"] == {"include_usage": True}


def _offered_tool(fmt: str, req: Received) -> dict[str, Any]:
    (t,) = req.body["tools"]
    if fmt == "openai":
        assert t["type"] == "function"
        return {"name": t["function"]["name"], "schema": t["function"]["parameters"]}
    return {"name": t["name"], "schema": t["input_schema"]}


def _tool_result(fmt: str, req: Received) -> tuple[str, str, str]:
    """(id of the assistant's call, id the result answers, result text) from the follow-up request."""
    messages = req.body["messages"]
    if fmt == "openai":
        (assistant,) = [m for m in messages if m["role"] == "assistant"]
        (call,) = assistant["tool_calls"]
        assert call["function"]["name"] == "get_weather"
        assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
        (tool,) = [m for m in messages if m["role"] == "tool"]
        content = tool["content"] if isinstance(tool["content"], str) else json.dumps(tool["content"])
        return call["id"], tool["tool_call_id"], content
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    (use,) = [b for b in messages[1]["content"] if b["type"] == "tool_use"]
    assert use["name"] == "get_weather" and use["input"] == {"city": "Paris"}
    (res,) = [b for b in messages[2]["content"] if b["type"] == "tool_result"]
    return use["id"], res["tool_use_id"], json.dumps(res["content"])


@pytest.mark.parametrize("mode", ["tool", "stream-tool"])
@pytest.mark.parametrize("fmt", list(UPSTREAMS))
@pytest.mark.parametrize("client", CLIENTS)
async def test_tool_round_trip(node_dir: Path, stack: Stack, client: str, fmt: str, mode: str) -> None:
    call = ToolCall(CALL_ID[fmt], "get_weather", {"city": "Paris"})
    stack.upstreams[fmt].script(
        Reply(text=None, tool_calls=[call], input_tokens=30, output_tokens=9),
        Reply(text=FINAL, input_tokens=50, output_tokens=11),
    )
    result = await _run(node_dir, stack, client, mode, fmt)
    first, second = result["steps"]
    assert [(c["id"], c["name"], c["args"]) for c in first["toolCalls"]] == [
        (CALL_ID[fmt], "get_weather", {"city": "Paris"})
    ]
    assert second["toolCalls"] == []
    assert result["text"] == FINAL
    if client.startswith("ai-"):
        assert first["finishReason"] == "tool-calls" and second["finishReason"] == "stop"
        assert first["toolResults"][0]["output"]["forecast"] == "sunny"
        assert result["usage"] == {"input": 80, "output": 20}
        if mode == "stream-tool":
            _check_stream_shape(client, result)
    elif client == "openai-chat":
        assert first["finishReason"] == "tool_calls"
        assert (first["usage"], second["usage"]) == ({"input": 30, "output": 9}, {"input": 50, "output": 11})
    else:
        assert first["outputTypes"] == ["function_call"] and second["outputTypes"] == ["message"]
        assert first["status"] == "completed"

    reqs = _generations(stack, fmt)
    assert len(reqs) == 2
    assert all(r.stream is (mode == "stream-tool") for r in reqs)
    offered = _offered_tool(fmt, reqs[0])
    assert offered["name"] == "get_weather"
    assert offered["schema"]["properties"] == {"city": {"type": "string"}}
    assert offered["schema"]["required"] == ["city"]
    call_id, answered, content = _tool_result(fmt, reqs[1])
    assert call_id == answered == CALL_ID[fmt]  # the upstream's own id, both ways
    assert "sunny" in content

"""Acceptance: the Vercel AI SDK's default OpenAI provider, `openai(model)`, unmodified, on the
gateway's stored responses (issue 17): the Responses API with its default `store: true`.

tests/e2e/node/sdk_stored.mjs runs (node, bounded) through a recording tap to the gateway, whose model
is served by an OpenAI-format or an Anthropic-format emulated upstream:

- a two-step tool loop with the provider's defaults (no `providerOptions`), whole and streamed: with
  `store: true` the SDK may send earlier output back by `item_reference`, which the gateway expands;
- the same loop on Claude with thinking on (the `:thinking` variant), whose upstream verifies signed
  thinking: the SDK sends the reasoning item back as an `item_reference` (its default with
  `store: true`), so turn 2 succeeds only if the gateway stored Claude's signed thinking and expands
  the reference to exactly it;
- three turns chained by `previousResponseId` alone: each turn sends only its new prompt, and the
  upstream must get the whole conversation so far.
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
from e2e.tap import GatewayTap

pytestmark = pytest.mark.slow

UPSTREAMS = {"openai": ("gpt-test", "/v1/chat/completions"), "anthropic": ("claude-test", "/v1/messages")}
CALL_ID = {"openai": "call_e2estored1", "anthropic": "toolu_e2estored1"}
FINAL = "It is sunny in Paris, 21 degrees."
TURNS = ["My name is Ada.", "What is my name?", "Spell it backwards."]  # as sdk_stored.mjs sends them
ANSWERS = ["Nice to meet you, Ada.", "Your name is Ada.", "adA"]


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
    tap: GatewayTap
    key: str
    upstreams: dict[str, OpenAIUpstream | AnthropicUpstream]


@pytest_asyncio.fixture
async def stack(
    tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> AsyncIterator[Stack]:
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))
    async with run_gateway(cfg) as gw, GatewayTap(gw.url) as tap:
        key = (await gw.create_key("node-sdk-stored"))["key"]
        yield Stack(gw, tap, key, {"openai": openai_upstream, "anthropic": anthropic_upstream})


@pytest_asyncio.fixture
async def thinking_stack(tmp_path: Path, openai_upstream: OpenAIUpstream) -> AsyncIterator[Stack]:
    """The same, with the Anthropic-format upstream verifying signed thinking as Anthropic does."""
    async with AnthropicUpstream(verify_thinking=True) as claude:
        cfg = two_format_config(openai_upstream.url, claude.url, sqlite_url(tmp_path))
        async with run_gateway(cfg) as gw, GatewayTap(gw.url) as tap:
            key = (await gw.create_key("node-sdk-stored-thinking"))["key"]
            yield Stack(gw, tap, key, {"openai": openai_upstream, "anthropic": claude})


async def _run(node_dir: Path, stack: Stack, mode: str, fmt: str, **options: Any) -> Any:
    case = {"mode": mode, "baseURL": stack.tap.url, "apiKey": stack.key, "model": UPSTREAMS[fmt][0], **options}
    run = await run_script(node_dir, "sdk_stored.mjs", case)
    context = f"{run.describe()}\n--- gateway traffic ---\n{stack.tap.summary()}"
    assert run.output is not None and run.output.get("ok") is True, context
    assert [e.line() for e in stack.tap.exchanges if not e.ok] == [], context
    return run.output["result"]


def _sent(stack: Stack) -> list[dict[str, Any]]:
    """What the SDK posted to the gateway's Responses API, in order."""
    posts = [e for e in stack.tap.exchanges if e.method == "POST"]
    assert posts and all(e.path == "/v1/responses" for e in posts)
    return [json.loads(e.request_body) for e in posts]


def _upstream(stack: Stack, fmt: str) -> list[Received]:
    return [r for r in stack.upstreams[fmt].requests if r.path == UPSTREAMS[fmt][1]]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text") or "" for b in content or [] if isinstance(b, dict) and b.get("type") == "text")


def _conversation(rec: Received) -> list[tuple[str, str]]:
    """(role, text) of each message with text, either wire format."""
    return [(m["role"], t) for m in rec.body["messages"] if (t := _text(m.get("content")))]


@pytest.mark.parametrize("mode", ["tool", "stream-tool"])
@pytest.mark.parametrize("fmt", list(UPSTREAMS))
async def test_default_provider_tool_loop_with_default_store(node_dir: Path, stack: Stack, fmt: str, mode: str) -> None:
    call = ToolCall(CALL_ID[fmt], "get_weather", {"city": "Paris"})
    stack.upstreams[fmt].script(Reply(text=None, tool_calls=[call]), Reply(text=FINAL))
    result = await _run(node_dir, stack, mode, fmt)
    assert result["errors"] == [] and result["text"] == FINAL
    first, second = result["steps"]
    assert [(c["id"], c["name"], c["args"]) for c in first["toolCalls"]] == [
        (CALL_ID[fmt], "get_weather", {"city": "Paris"})
    ]
    assert first["toolResults"][0]["output"]["forecast"] == "sunny" and second["toolCalls"] == []

    # the SDK's defaults: nothing said about `store` (true), or true
    sent = _sent(stack)
    assert len(sent) == 2 and all(b.get("store", True) is True for b in sent), sent
    # its second request is served whole: the upstream gets the call and its result, the call's own id
    reqs = _upstream(stack, fmt)
    assert len(reqs) == 2
    follow = json.dumps(reqs[1].body)
    assert follow.count(CALL_ID[fmt]) >= 2 and "sunny" in follow, follow


@pytest.mark.parametrize("fmt", list(UPSTREAMS))
async def test_previous_response_id_chains_three_turns(node_dir: Path, stack: Stack, fmt: str) -> None:
    stack.upstreams[fmt].script(*(Reply(text=a) for a in ANSWERS))
    result = await _run(node_dir, stack, "chain", fmt)
    turns = result["turns"]
    assert [t["text"] for t in turns] == ANSWERS
    ids = [t["responseId"] for t in turns]
    assert all(ids) and len(set(ids)) == 3

    # each turn sent only its new prompt, naming the turn before by id
    sent = _sent(stack)
    assert [b.get("previous_response_id") for b in sent] == [None, ids[0], ids[1]]
    assert all(b.get("store", True) is True for b in sent)
    # and the upstream got the whole conversation so far, in order, each time
    reqs = _upstream(stack, fmt)
    assert len(reqs) == 3
    want: list[tuple[str, str]] = []
    for rec, prompt, answer in zip(reqs, TURNS, ANSWERS, strict=True):
        want.append(("user", prompt))
        assert _conversation(rec) == want
        want.append(("assistant", answer))


@pytest.mark.parametrize("mode", ["tool", "stream-tool"])
async def test_default_store_tool_loop_with_thinking_sends_reasoning_back_by_reference(
    node_dir: Path, thinking_stack: Stack, mode: str
) -> None:
    stack = thinking_stack
    claude = stack.upstreams["anthropic"]
    call = ToolCall(CALL_ID["anthropic"], "get_weather", {"city": "Paris"})
    claude.script(Reply(text=None, thinking="Paris weather: call the tool.", tool_calls=[call]), Reply(text=FINAL))
    result = await _run(node_dir, stack, mode, "anthropic", model="claude-test:thinking", maxOutputTokens=4096)
    assert result["errors"] == [] and result["text"] == FINAL

    sent = _sent(stack)
    assert len(sent) == 2 and all(b.get("store", True) is True for b in sent), sent
    refs = [i for i in sent[1]["input"] if i.get("type") == "item_reference"]
    assert any(r["id"].startswith("rs_") for r in refs), sent[1]["input"]  # the reasoning, by reference
    reqs = _upstream(stack, "anthropic")
    assert len(reqs) == 2 and all(r.body["thinking"]["type"] == "enabled" for r in reqs)
    first = next(m for m in reqs[1].body["messages"] if m["role"] == "assistant")["content"][0]
    assert first["type"] == "thinking" and claude.issued[first["signature"]] == first["thinking"]

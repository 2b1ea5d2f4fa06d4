"""Acceptance: the real Claude Code CLI works through KeepRouter against an OpenAI-format upstream.

``claude -p`` talks Anthropic Messages to the gateway (via a recording tap), the gateway translates to
Chat Completions for the emulated upstream, which plays a one-step agent: it calls Claude Code's
``Write`` tool to create hello.py, then answers ``Done.`` once the tool result comes back. Everything
listens on 127.0.0.1; an egress trap set as HTTP(S)_PROXY catches any request to another host.

Fails when Claude Code cannot be found or installed from npm (skips only with
KEEPROUTER_E2E_NO_INSTALL=1); see e2e/npm_cache.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.anthropic_server import AnthropicUpstream

from e2e.agent_upstream import FINAL_TEXT, HELLO_CONTENT, AgentUpstream
from e2e.claude_code import CLAUDE, claude_env, run_claude
from e2e.tap import EgressTrap, GatewayTap
from keeprouter.clients.anthropic_messages import request as anthropic_fmt
from keeprouter.formats import tokens
from keeprouter.routing.fit import MIN_OUTPUT, prompt_bound

pytestmark = pytest.mark.slow

MODEL = "gpt-test"  # served by provider "oa" (OpenAI format) as upstream model "up-gpt"
PROMPT = "Create hello.py that prints hello"
RUN_TIMEOUT = 120.0
SMALL_CONTEXT = 32768


@pytest.fixture(scope="session")
def claude_binary() -> str:
    return CLAUDE.require()


@dataclass
class Stack:
    gw: RunningGateway
    tap: GatewayTap
    trap: EgressTrap
    upstream: AgentUpstream
    other: AnthropicUpstream
    work: Path
    home: Path


@asynccontextmanager
async def _stack(tmp_path: Path, other: AnthropicUpstream, context_length: int | None = None) -> AsyncIterator[Stack]:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    async with AgentUpstream(work) as upstream:
        cfg = two_format_config(upstream.url, other.url, sqlite_url(tmp_path))
        if context_length is not None:
            cfg["models"][MODEL]["context_length"] = context_length
        async with run_gateway(cfg) as gw, GatewayTap(gw.url) as tap, EgressTrap() as trap:
            yield Stack(gw, tap, trap, upstream, other, work, home)


@pytest_asyncio.fixture
async def stack(tmp_path: Path, anthropic_upstream: AnthropicUpstream) -> AsyncIterator[Stack]:
    async with _stack(tmp_path, anthropic_upstream) as s:
        yield s


@pytest_asyncio.fixture
async def small_stack(tmp_path: Path, anthropic_upstream: AnthropicUpstream) -> AsyncIterator[Stack]:
    """The same, with the OpenAI-format model's context window only 32k tokens."""
    async with _stack(tmp_path, anthropic_upstream, SMALL_CONTEXT) as s:
        yield s


def _messages(body: Any) -> list[dict[str, Any]]:
    return [m for m in (body or {}).get("messages") or [] if isinstance(m, dict)]


async def test_claude_code_creates_file_through_gateway(claude_binary: str, stack: Stack) -> None:
    key = (await stack.gw.create_key("claude-code-e2e"))["key"]
    env = claude_env(base_url=stack.tap.url, api_key=key, model=MODEL, home=stack.home, proxy=stack.trap.url)
    run = await run_claude(claude_binary, PROMPT, cwd=stack.work, env=env, seconds=RUN_TIMEOUT)

    traffic = stack.tap.summary()
    decisions = [(d.kind, d.received.path) for d in stack.upstream.decisions]
    context = f"{run.describe()}\n--- gateway traffic ---\n{traffic}\n--- upstream decisions ---\n{decisions}"
    print(f"\nClaude Code {claude_binary}\n--- gateway traffic ---\n{traffic}")

    # 1. nothing left the machine, and every gateway answer was a success
    assert stack.trap.attempts == [], f"requests to non-local hosts: {stack.trap.attempts}\n{context}"
    failed = [e.line() for e in stack.tap.exchanges if not e.ok]
    assert not failed, "gateway answered Claude Code with non-2xx:\n" + "\n".join(failed) + f"\n{context}"

    # 2. the CLI succeeded and did the work
    assert run.returncode == 0, context
    result = run.result
    assert result is not None, context
    assert result.get("subtype") == "success" and result.get("is_error") is False, context
    assert FINAL_TEXT in (result.get("result") or ""), context
    target = stack.work / "hello.py"
    assert target.is_file(), context
    assert target.read_text() == HELLO_CONTENT
    uses = run.tool_uses()
    assert [u.get("name") for u in uses] == ["Write"], context
    assert uses[0]["input"] == {"file_path": str(target), "content": HELLO_CONTENT}

    # 3. Claude Code spoke Anthropic Messages to the gateway
    messages = [e for e in stack.tap.exchanges if e.method == "POST" and e.path == "/v1/messages"]
    assert len(messages) >= 2, context  # the tool call, then the answer to the tool result
    for e in messages:
        assert e.headers.get("anthropic-version"), e.line()
        assert "claude-code" in e.headers.get("anthropic-beta", ""), e.line()
        assert e.content_type.startswith("text/event-stream"), e.line()
        sent = json.loads(e.request_body)
        assert sent["model"] == MODEL and sent["stream"] is True

    # 4. the upstream saw Chat Completions with the tool round trip, tool_call_id preserved
    chat = [r for r in stack.upstream.requests if r.path == "/v1/chat/completions"]
    assert chat and all(r.model == "up-gpt" for r in chat), context
    assert all(r.api_key == "sk-up-openai" for r in chat)  # the provider key, never the client's
    assert [r.path for r in stack.upstream.requests if r.path != "/v1/chat/completions"] == []
    calls = [d for d in stack.upstream.decisions if d.kind == "tool_call"]
    finals = [d for d in stack.upstream.decisions if d.kind == "final"]
    assert len(calls) == 1 and len(finals) >= 1, context
    call_id = calls[0].tool_call_id
    first = calls[0].received.body
    assert any((t.get("function") or {}).get("name") == "Write" for t in first.get("tools") or []), (
        "the Write tool was not offered upstream in OpenAI function format"
    )
    follow = finals[0].received.body
    assistant = [m for m in _messages(follow) if m.get("role") == "assistant" and m.get("tool_calls")]
    assert [c["id"] for c in assistant[-1]["tool_calls"]] == [call_id]
    assert assistant[-1]["tool_calls"][0]["function"]["name"] == "Write"
    assert json.loads(assistant[-1]["tool_calls"][0]["function"]["arguments"]) == uses[0]["input"]
    results = [m for m in _messages(follow) if m.get("role") == "tool"]
    assert [m.get("tool_call_id") for m in results] == [call_id]
    assert "hello.py" in json.dumps(results[0].get("content"))

    # 5. the model served by the OpenAI-format provider never touched the Anthropic one
    assert stack.other.requests == []


async def _generation(gw: RunningGateway, gen_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {gw.admin_key}"}
    async with aiohttp.ClientSession() as s:
        for _ in range(300):  # the record is written off the request path: at most ~3 s late
            async with s.get(gw.url + "/api/v1/generation", params={"id": gen_id}, headers=headers) as r:
                if r.status == 200:
                    data: dict[str, Any] = (await r.json())["data"]
                    return data
            await asyncio.sleep(0.01)
    raise AssertionError(f"generation {gen_id} was never recorded")


async def test_claude_code_on_a_32k_openai_model_gets_a_lowered_output_budget(
    claude_binary: str, small_stack: Stack
) -> None:
    """Claude Code asks max_tokens 32000 beside a 11-19k-token prompt: more than a 32k window holds.
    The gateway serves it with the output budget that fits, and says nothing to the client."""
    stack = small_stack
    key = (await stack.gw.create_key("claude-code-32k"))["key"]
    env = claude_env(base_url=stack.tap.url, api_key=key, model=MODEL, home=stack.home, proxy=stack.trap.url)
    run = await run_claude(claude_binary, PROMPT, cwd=stack.work, env=env, seconds=RUN_TIMEOUT)
    traffic = stack.tap.summary()
    context = f"{run.describe()}\n--- gateway traffic ---\n{traffic}"
    print(f"\nClaude Code on a {SMALL_CONTEXT}-token model\n--- gateway traffic ---\n{traffic}")

    # nothing answered 404 (nor anything else but success), nothing left the machine
    assert stack.trap.attempts == [], context
    assert [e.line() for e in stack.tap.exchanges if not e.ok] == [], context
    # the Write round trip completed
    assert run.returncode == 0 and run.result is not None and run.result.get("is_error") is False, context
    assert (stack.work / "hello.py").read_text() == HELLO_CONTENT, context
    assert [u.get("name") for u in run.tool_uses()] == ["Write"], context

    # each agent-loop request: Claude Code's real size, and a max_tokens that fits beside it upstream
    asked = [e for e in stack.tap.exchanges if e.path == "/v1/messages" and json.loads(e.request_body).get("tools")]
    got = [r for r in stack.upstream.requests if r.path == "/v1/chat/completions" and r.body.get("tools")]
    assert len(asked) == len(got) >= 2, context
    for e, rec in zip(asked, got, strict=True):
        body = json.loads(e.request_body)
        # Claude Code 2.1.3xx: ~49 KB, 12 tools (more behind ToolSearch), ~11k tokens; older ones 76 KB, 24
        assert body["max_tokens"] == 32000 and len(body["tools"]) >= 10 and len(e.request_body) > 40_000
        estimate = tokens.estimate_request(anthropic_fmt.parse_request(body))
        assert estimate + 32000 > SMALL_CONTEXT  # what was asked does not fit: the budget must come down
        sent = rec.body.get("max_tokens") or rec.body.get("max_completion_tokens")
        assert sent == SMALL_CONTEXT - prompt_bound(estimate), (sent, estimate)
        assert MIN_OUTPUT <= sent < 32000 and prompt_bound(estimate) + sent <= SMALL_CONTEXT
        # recorded on the generation, never told to the caller
        assert e.generation_id, e.line()
        gen = await _generation(stack.gw, e.generation_id)
        served = gen["provider_responses"][-1]
        assert (served["max_tokens_requested"], served["max_tokens_sent"]) == (32000, sent)

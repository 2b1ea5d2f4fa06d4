"""Acceptance: the real Claude Code CLI works through KeepRouter against an OpenAI-format upstream.

``claude -p`` talks Anthropic Messages to the gateway (via a recording tap), the gateway translates to
Chat Completions for the emulated upstream, which plays a one-step agent: it calls Claude Code's
``Write`` tool to create hello.py, then answers ``Done.`` once the tool result comes back. Everything
listens on 127.0.0.1; an egress trap set as HTTP(S)_PROXY catches any request to another host.

Fails when Claude Code cannot be found or installed from npm (skips only with
KEEPROUTER_E2E_NO_INSTALL=1); see e2e/npm_cache.py.
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
from upstreams.anthropic_server import AnthropicUpstream

from e2e.agent_upstream import FINAL_TEXT, HELLO_CONTENT, AgentUpstream
from e2e.claude_code import CLAUDE, claude_env, run_claude
from e2e.tap import EgressTrap, GatewayTap

pytestmark = pytest.mark.slow

MODEL = "gpt-test"  # served by provider "oa" (OpenAI format) as upstream model "up-gpt"
PROMPT = "Create hello.py that prints hello"
RUN_TIMEOUT = 120.0


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


@pytest_asyncio.fixture
async def stack(tmp_path: Path, anthropic_upstream: AnthropicUpstream) -> AsyncIterator[Stack]:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    async with AgentUpstream(work) as upstream:
        cfg = two_format_config(upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))
        async with run_gateway(cfg) as gw, GatewayTap(gw.url) as tap, EgressTrap() as trap:
            yield Stack(gw, tap, trap, upstream, anthropic_upstream, work, home)


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

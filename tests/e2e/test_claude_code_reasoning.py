"""Acceptance: Claude Code with thinking on, through KeepRouter, on a DeepSeek-style model.

DeepSeek's (and Kimi's) thinking mode refuses a tool loop whose assistant turn with tool calls does
not carry back, as ``reasoning_content``, exactly the reasoning it was answered with. The emulated
upstream is that rule (``OpenAIUpstream(thinking_mode=True)``), playing a one-step agent that thinks
before every answer. Claude Code (thinking on, as ``MAX_THINKING_TOKENS`` asks) gets that reasoning
as thinking blocks, sends them back in its Anthropic history, and the gateway must turn them into
DeepSeek's field again, or turn 2 is DeepSeek's 400 and Claude Code fails.

Fails when Claude Code cannot be found or installed from npm (skips only with
KEEPROUTER_E2E_NO_INSTALL=1); see e2e/npm_cache.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.base import Received
from upstreams.script import Reply

from e2e.agent_upstream import FINAL_TEXT, HELLO_CONTENT, AgentUpstream, Decision
from e2e.claude_code import CLAUDE, claude_env, run_claude
from e2e.tap import EgressTrap, GatewayTap

pytestmark = pytest.mark.slow

MODEL = "deepseek-test"
PROMPT = "Create hello.py that prints hello"
THOUGHT = "The user wants hello.py; write it with the Write tool."
RUN_TIMEOUT = 120.0


class ThinkingAgent(AgentUpstream):
    """The one-step agent, answering every request with its reasoning first (DeepSeek's thinking mode)."""

    def decide(self, rec: Received) -> tuple[Reply, Decision]:
        reply, decision = super().decide(rec)
        return dataclasses.replace(reply, thinking=THOUGHT, reasoning_tokens=9, output_tokens=20), decision


@pytest.fixture(scope="session")
def claude_binary() -> str:
    return CLAUDE.require()


@dataclasses.dataclass
class Stack:
    gw: RunningGateway
    tap: GatewayTap
    trap: EgressTrap
    upstream: ThinkingAgent
    work: Path
    home: Path


@pytest_asyncio.fixture
async def stack(tmp_path: Path, anthropic_upstream: AnthropicUpstream) -> AsyncIterator[Stack]:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    async with ThinkingAgent(work, thinking_mode=True) as upstream:
        cfg = two_format_config(upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))
        endpoint = {**cfg["models"]["gpt-test"]["endpoints"][0]}
        endpoint["capabilities"] = [*endpoint["capabilities"], "reasoning"]
        cfg["models"][MODEL] = {"name": "DeepSeek-style", "maker": "Test", "context_length": 128000,
                                "endpoints": [endpoint]}  # fmt: skip
        async with run_gateway(cfg) as gw, GatewayTap(gw.url) as tap, EgressTrap() as trap:
            yield Stack(gw, tap, trap, upstream, work, home)


def _assistant_calls(body: Any) -> list[dict[str, Any]]:
    return [m for m in (body or {}).get("messages") or [] if m.get("role") == "assistant" and m.get("tool_calls")]


async def test_claude_code_with_thinking_completes_a_tool_round_trip_on_a_deepseek_style_model(
    claude_binary: str, stack: Stack
) -> None:
    key = (await stack.gw.create_key("claude-code-thinking"))["key"]
    env = claude_env(
        base_url=stack.tap.url,
        api_key=key,
        model=MODEL,
        home=stack.home,
        proxy=stack.trap.url,
        extra={"MAX_THINKING_TOKENS": "4096"},
    )
    run = await run_claude(claude_binary, PROMPT, cwd=stack.work, env=env, seconds=RUN_TIMEOUT)
    traffic = stack.tap.summary()
    decisions = [(d.kind, d.received.path) for d in stack.upstream.decisions]
    context = f"{run.describe()}\n--- gateway traffic ---\n{traffic}\n--- upstream decisions ---\n{decisions}"
    print(f"\nClaude Code {claude_binary} with thinking\n--- gateway traffic ---\n{traffic}")

    # nothing left the machine, every gateway answer was a success (no DeepSeek 400 on turn 2)
    assert stack.trap.attempts == [], context
    assert [e.line() for e in stack.tap.exchanges if not e.ok] == [], context
    assert run.returncode == 0 and run.result is not None and run.result.get("is_error") is False, context
    assert FINAL_TEXT in (run.result.get("result") or ""), context
    assert (stack.work / "hello.py").read_text() == HELLO_CONTENT, context
    assert [u.get("name") for u in run.tool_uses()] == ["Write"], context

    # Claude Code asked for thinking, and saw the upstream's reasoning as a thinking block
    loop = [json.loads(e.request_body) for e in stack.tap.exchanges if e.path == "/v1/messages"]
    loop = [b for b in loop if b.get("tools")]
    assert loop and all((b.get("thinking") or {}).get("type") in ("enabled", "adaptive") for b in loop), context
    thought = [
        block
        for e in run.events
        if e.get("type") == "assistant"
        for block in (e.get("message") or {}).get("content") or []
        if block.get("type") == "thinking"
    ]
    assert thought and thought[0].get("thinking") == THOUGHT, context

    # turn 2 reached DeepSeek with its own reasoning back on the tool-call turn, byte for byte
    finals = [d for d in stack.upstream.decisions if d.kind == "final"]
    assert finals, context
    [call_turn] = _assistant_calls(finals[0].received.body)
    assert call_turn["reasoning_content"] == THOUGHT
    # and DeepSeek was asked to think: `reasoning_effort`, never OpenRouter's own fields
    first = next(d for d in stack.upstream.decisions if d.kind == "tool_call").received.body
    assert first.get("reasoning_effort") and not {"reasoning", "include_reasoning", "thinking"} & set(first)

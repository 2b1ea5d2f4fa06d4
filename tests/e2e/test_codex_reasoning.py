"""Acceptance: Codex (`codex exec`), reasoning on, completes a two-step tool loop through KeepRouter
on a Claude model whose upstream verifies signed thinking.

Codex speaks the Responses API statelessly (`store: false`) and asks for
`include: ["reasoning.encrypted_content"]`: it keeps the reasoning items it is given, opaque, and sends
them back with the next turn's input. The emulated Anthropic upstream signs its thinking (an HMAC of
the text under its own key) and, as Anthropic does, refuses a tool loop with thinking on whose
assistant turn does not start with exactly the thinking it signed. So the loop completes only if the
gateway carried Claude's signed thinking out as `encrypted_content` and back in, byte for byte.

Fails when Codex cannot be found or installed from npm (skips only with KEEPROUTER_E2E_NO_INSTALL=1).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.base import Received
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply

from e2e.agent_upstream import FINAL_TEXT, HELLO_CONTENT, AnthropicAgentUpstream, Decision
from e2e.codex import CODEX, codex_config, codex_env, run_codex
from e2e.tap import EgressTrap, GatewayTap

pytestmark = pytest.mark.slow

MODEL = "claude-test"  # served by provider "an" (Anthropic format) as upstream model "up-claude"
PROMPT = "Create hello.py that prints hello"
THOUGHT = "The user wants hello.py; run a shell command that writes it."
RUN_TIMEOUT = 150.0
# Codex's reasoning settings for a model it does not know (top-level keys, before any table)
REASONING = """\
model_reasoning_effort = "medium"
model_reasoning_summary = "auto"
"""


class ThinkingClaude(AnthropicAgentUpstream):
    """The one-step agent on Claude's wire, thinking (signed) before every answer."""

    def decide(self, rec: Received) -> tuple[Reply, Decision]:
        reply, decision = super().decide(rec)
        return dataclasses.replace(reply, thinking=THOUGHT), decision


@pytest.fixture(scope="session")
def codex_binary() -> str:
    return CODEX.require()


@dataclasses.dataclass
class Stack:
    gw: RunningGateway
    tap: GatewayTap
    trap: EgressTrap
    upstream: ThinkingClaude
    work: Path
    home: Path


@pytest_asyncio.fixture
async def stack(tmp_path: Path, openai_upstream: OpenAIUpstream) -> AsyncIterator[Stack]:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    async with ThinkingClaude(work, verify_thinking=True) as claude:
        cfg = two_format_config(openai_upstream.url, claude.url, sqlite_url(tmp_path))
        async with run_gateway(cfg) as gw, GatewayTap(gw.url) as tap, EgressTrap() as trap:
            yield Stack(gw, tap, trap, claude, work, home)


async def test_codex_with_encrypted_reasoning_completes_a_tool_loop_on_claude(codex_binary: str, stack: Stack) -> None:
    key = (await stack.gw.create_key("codex-reasoning"))["key"]
    config = stack.home / ".codex" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(REASONING + codex_config(base_url=stack.tap.url + "/v1", model=MODEL))
    env = codex_env(home=stack.home, api_key=key, proxy=stack.trap.url)
    run = await run_codex(codex_binary, PROMPT, cwd=stack.work, env=env, seconds=RUN_TIMEOUT)
    traffic = stack.tap.summary()
    decisions = [(d.kind, d.received.path) for d in stack.upstream.decisions]
    context = f"{run.describe()}\n--- gateway traffic ---\n{traffic}\n--- upstream decisions ---\n{decisions}"
    print(f"\nCodex {codex_binary} with reasoning on Claude\n--- gateway traffic ---\n{traffic}")

    # nothing left the machine, every answer a success (no "Invalid signature", no missing thinking)
    assert stack.trap.attempts == [], context
    assert [e.line() for e in stack.tap.exchanges if not e.ok] == [], context
    assert run.returncode == 0, context
    assert (stack.work / "hello.py").read_text() == HELLO_CONTENT, context
    assert run.last_message == FINAL_TEXT, context

    # Codex asked, statelessly, for reasoning and its encrypted content
    posts = [json.loads(e.request_body) for e in stack.tap.exchanges if e.method == "POST"]
    assert len(posts) >= 2, context
    for body in posts:
        assert body["store"] is False and "reasoning.encrypted_content" in (body.get("include") or []), body
        assert (body.get("reasoning") or {}).get("effort"), body

    # turn 2 sent back the reasoning item it was given, opaque, and Claude got its own signed thinking
    echoed = [i for i in posts[-1]["input"] if isinstance(i, dict) and i.get("type") == "reasoning"]
    assert echoed and all(i.get("encrypted_content") for i in echoed), context
    calls = [d for d in stack.upstream.decisions if d.kind == "tool_call"]
    finals = [d for d in stack.upstream.decisions if d.kind == "final"]
    assert len(calls) == 1 and finals, context
    assert calls[0].received.body["thinking"]["type"] == "enabled"
    follow = finals[0].received.body
    assert follow["thinking"]["type"] == "enabled"  # thinking stayed on: the loop kept its signed state
    turn = next(m for m in follow["messages"] if m["role"] == "assistant")
    first = turn["content"][0]
    assert (first["type"], first["thinking"]) == ("thinking", THOUGHT)
    assert stack.upstream.issued[first["signature"]] == THOUGHT  # the signature it issued, unchanged

"""Acceptance: the real Codex CLI (`codex exec`) works through KeepRouter's Responses API, on a model
served by an OpenAI-format upstream and on one served by an Anthropic-format upstream.

Codex talks Responses to the gateway (via a recording tap); the gateway translates for the emulated
upstream, which plays a one-step agent: it calls Codex's shell tool (`exec_command`) to create
hello.py, then answers ``Done.`` once the command's output comes back. Everything listens on
127.0.0.1; an egress trap set as HTTP(S)_PROXY catches any request to another host.

Fails when Codex cannot be found or installed from npm (skips only with KEEPROUTER_E2E_NO_INSTALL=1).
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
from upstreams.script import Reply, ToolCall

from e2e.agent_upstream import FINAL_TEXT, HELLO_CONTENT, AgentUpstream, AnthropicAgentUpstream
from e2e.codex import CODEX, codex_env, run_codex, write_config
from e2e.tap import EgressTrap, GatewayTap
from keeprouter.clients.openai_responses.tools import flat_name

pytestmark = pytest.mark.slow

PROMPT = "Create hello.py that prints hello"
RUN_TIMEOUT = 150.0
# gateway model -> (upstream format, the upstream's model name, its path)
MODELS = {
    "gpt-test": ("openai", "up-gpt", "/v1/chat/completions"),
    "claude-test": ("anthropic", "up-claude", "/v1/messages"),
}


@pytest.fixture(scope="session")
def codex_binary() -> str:
    return CODEX.require()


@dataclass
class Stack:
    gw: RunningGateway
    tap: GatewayTap
    trap: EgressTrap
    upstreams: dict[str, AgentUpstream | AnthropicAgentUpstream]
    work: Path
    home: Path


@pytest_asyncio.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    async with AgentUpstream(work) as oa, AnthropicAgentUpstream(work) as an:
        cfg = two_format_config(oa.url, an.url, sqlite_url(tmp_path))
        async with run_gateway(cfg) as gw, GatewayTap(gw.url) as tap, EgressTrap() as trap:
            yield Stack(gw, tap, trap, {"openai": oa, "anthropic": an}, work, home)


def _names(tools: list[Any]) -> set[str]:
    """Tool names in an upstream body, either format."""
    out = set()
    for t in tools:
        fn = t.get("function") if isinstance(t, dict) else None
        out.add((fn or t).get("name"))
    return out


@pytest.mark.parametrize("model", list(MODELS))
async def test_codex_exec_creates_file_through_gateway(codex_binary: str, stack: Stack, model: str) -> None:
    fmt, up_model, up_path = MODELS[model]
    upstream = stack.upstreams[fmt]
    key = (await stack.gw.create_key("codex-e2e"))["key"]
    write_config(stack.home, base_url=stack.tap.url + "/v1", model=model)
    env = codex_env(home=stack.home, api_key=key, proxy=stack.trap.url)
    run = await run_codex(codex_binary, PROMPT, cwd=stack.work, env=env, seconds=RUN_TIMEOUT)

    traffic = stack.tap.summary()
    decisions = [(d.kind, d.received.path) for d in upstream.decisions]
    context = f"{run.describe()}\n--- gateway traffic ---\n{traffic}\n--- upstream decisions ---\n{decisions}"
    print(f"\nCodex {codex_binary} on {model}\n--- gateway traffic ---\n{traffic}")

    # 1. nothing left the machine, and every gateway answer was a success
    assert stack.trap.attempts == [], f"requests to non-local hosts: {stack.trap.attempts}\n{context}"
    failed = [e.line() for e in stack.tap.exchanges if not e.ok]
    assert not failed, "gateway answered Codex with non-2xx:\n" + "\n".join(failed) + f"\n{context}"

    # 2. the CLI succeeded and did the work
    assert run.returncode == 0, context
    assert (stack.work / "hello.py").read_text() == HELLO_CONTENT, context
    assert run.last_message == FINAL_TEXT, context
    commands = run.items("command_execution")
    assert len(commands) == 1 and commands[0].get("exit_code") == 0, context

    # 3. Codex spoke Responses (streamed, stateless) to the gateway
    posts = [e for e in stack.tap.exchanges if e.method == "POST"]
    assert posts and all(e.path == "/v1/responses" for e in posts), context
    assert len(posts) >= 2, context  # the tool call, then the answer to its output
    sent = [json.loads(e.request_body) for e in posts]
    for e, body in zip(posts, sent, strict=True):
        assert e.content_type.startswith("text/event-stream"), e.line()
        assert body["model"] == model and body["stream"] is True and body["store"] is False
        assert not any(t.get("type") == "web_search" for t in body.get("tools") or [])

    # 4. the upstream saw its own format: Codex's tools (namespace members flattened), then the result
    calls = [d for d in upstream.decisions if d.kind == "tool_call"]
    finals = [d for d in upstream.decisions if d.kind == "final"]
    assert len(calls) == 1 and len(finals) >= 1, context
    first = calls[0].received
    assert first.path == up_path and first.model == up_model, context
    offered = _names(first.body.get("tools") or [])
    assert calls[0].tool_name == "exec_command" and "exec_command" in offered
    spaces = [t for t in sent[0].get("tools") or [] if t.get("type") == "namespace"]
    members = {flat_name(t["name"], m["name"]) for t in spaces for m in t["tools"]}
    assert members <= offered, f"namespace members not offered upstream: {members - offered}"
    assert all("namespace" != t.get("type") for t in first.body.get("tools") or [])
    follow = finals[0].received.body
    text = json.dumps(follow)
    assert calls[0].tool_call_id is not None
    assert calls[0].tool_call_id in text and "exec_command" in text
    # the command's output came back to the model as the tool result of that call
    assert any(call_id_in(m, calls[0].tool_call_id) for m in follow["messages"]), context

    # 5. the other format's upstream was never used
    other = stack.upstreams["anthropic" if fmt == "openai" else "openai"]
    assert other.requests == []


def call_id_in(message: dict[str, Any], call_id: str | None) -> bool:
    """Whether an upstream message is the tool result for ``call_id`` (either format)."""
    if message.get("role") == "tool":
        return bool(message.get("tool_call_id") == call_id)
    content = message.get("content")
    blocks = content if isinstance(content, list) else []
    return any(isinstance(b, dict) and b.get("type") == "tool_result" and b.get("tool_use_id") == call_id
               for b in blocks)  # fmt: skip


async def test_codex_runs_a_namespaced_tool_called_by_its_flat_name(codex_binary: str, stack: Stack) -> None:
    """The upstream calls `multi_agent_v1__close_agent` (a member of Codex's `multi_agent_v1`
    namespace, flattened by the gateway); Codex must get it back as `close_agent` in that namespace,
    run it, and send its output (not an "unsupported call") on the next turn."""
    upstream = stack.upstreams["openai"]
    flat = flat_name("multi_agent_v1", "close_agent")
    upstream.script(Reply(text=None, tool_calls=[ToolCall(id="call_ns1", name=flat,
                                                          arguments_json={"target": "no-such-agent"})]))  # fmt: skip
    key = (await stack.gw.create_key("codex-ns"))["key"]
    write_config(stack.home, base_url=stack.tap.url + "/v1", model="gpt-test")
    env = codex_env(home=stack.home, api_key=key, proxy=stack.trap.url)
    run = await run_codex(codex_binary, "Close the agent no-such-agent", cwd=stack.work, env=env, seconds=RUN_TIMEOUT)
    context = f"{run.describe()}\n--- gateway traffic ---\n{stack.tap.summary()}"

    assert stack.trap.attempts == [] and all(e.ok for e in stack.tap.exchanges), context
    assert run.returncode == 0 and run.last_message == FINAL_TEXT, context
    sent = [json.loads(e.request_body) for e in stack.tap.exchanges if e.path == "/v1/responses"]
    assert flat in _names(upstream.requests[0].body["tools"]), context
    # Codex's next request replays the call as it understood it: the member's name and its namespace
    replayed = [i for i in sent[1]["input"] if i.get("type") == "function_call"]
    assert [(i["name"], i.get("namespace"), i["call_id"]) for i in replayed] == [
        ("close_agent", "multi_agent_v1", "call_ns1")], context  # fmt: skip
    outputs = [i for i in sent[1]["input"] if i.get("type") == "function_call_output"]
    assert [o["call_id"] for o in outputs] == ["call_ns1"], context
    # the close_agent handler itself ran (it rejects the id), not Codex's answer to an unknown tool
    assert "agent id" in str(outputs[0]["output"]) and "unsupported" not in str(outputs[0]["output"]), context
    # ... and the upstream saw the flat name again, with the output as its result
    follow = upstream.requests[-1].body
    calls = [c for m in follow["messages"] if m.get("tool_calls") for c in m["tool_calls"]]
    assert [c["function"]["name"] for c in calls] == [flat], context
    assert any(call_id_in(m, "call_ns1") for m in follow["messages"]), context


async def test_codex_with_its_default_web_search_tool_is_served_without_it(codex_binary: str, stack: Stack) -> None:
    """Without `web_search = "disabled"` Codex offers a built-in web_search tool on every request; the
    gateway drops it (it runs none) rather than refusing every turn."""
    key = (await stack.gw.create_key("codex-web"))["key"]
    write_config(stack.home, base_url=stack.tap.url + "/v1", model="claude-test", web_search=True)
    env = codex_env(home=stack.home, api_key=key, proxy=stack.trap.url)
    run = await run_codex(codex_binary, PROMPT, cwd=stack.work, env=env, seconds=RUN_TIMEOUT)
    context = f"{run.describe()}\n--- gateway traffic ---\n{stack.tap.summary()}"

    assert stack.trap.attempts == [] and all(e.ok for e in stack.tap.exchanges), context
    assert run.returncode == 0 and run.last_message == FINAL_TEXT, context
    assert (stack.work / "hello.py").read_text() == HELLO_CONTENT, context
    first = json.loads(stack.tap.exchanges[0].request_body)
    assert any(t.get("type") == "web_search" for t in first["tools"]), "Codex no longer sends web_search"
    for rec in stack.upstreams["anthropic"].requests:
        assert all(t.get("type") in (None, "custom") and "name" in t for t in rec.body.get("tools") or [])
        assert "web_search" not in _names(rec.body.get("tools") or [])

"""Acceptance: the real agent CLIs on the clouds' own wire formats, through KeepRouter.

- Claude Code (Anthropic Messages) on a Claude model served by AWS Bedrock: the gateway signs each
  request with SigV4 (checked by the emulator as AWS does) and speaks Converse / ConverseStream,
  AWS's binary event stream included; the Write tool's call and result make the round trip as
  Bedrock's ``toolUse`` / ``toolResult``.
- Codex (OpenAI Responses) on a Gemini 3 model served by Gemini's native API: Gemini 3 refuses a tool
  loop whose function call comes back without the thought signature it issued, so the round trip
  only completes when the signature travels through Codex and back to the right part.

The emulated upstreams play a one-step agent (``e2e.cloud_agents``). Everything listens on
127.0.0.1; an egress trap set as HTTP(S)_PROXY catches any request to another host.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from support.gateway import RunningGateway, run_gateway, sqlite_url
from upstreams.bedrock_server import ACCESS_KEY, REGION, SECRET_KEY

from e2e.agent_upstream import FINAL_TEXT, HELLO_CONTENT
from e2e.claude_code import CLAUDE, claude_env, run_claude
from e2e.cloud_agents import BedrockAgentUpstream, GeminiAgentUpstream
from e2e.codex import CODEX, codex_env, run_codex, write_config
from e2e.tap import EgressTrap, GatewayTap

pytestmark = pytest.mark.slow

PROMPT = "Create hello.py that prints hello"
RUN_TIMEOUT = 150.0
BEDROCK_MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"  # an inference profile: `:` in the path
GEMINI_MODEL = "gemini-3-pro-preview"


def _config(db: str, provider: dict[str, Any], model: str, upstream_model: str, caps: list[str]) -> dict[str, Any]:
    endpoint = {"provider": "cloud", "model": upstream_model, "pricing": {"input": 3.0, "output": 15.0},
                "capabilities": caps}  # fmt: skip
    return {
        "database": db,
        "providers": {"cloud": provider},
        "models": {model: {"name": model, "maker": "Test", "context_length": 200000, "endpoints": [endpoint]}},
    }


@asynccontextmanager
async def _gateway(cfg: dict[str, Any]) -> AsyncIterator[tuple[RunningGateway, GatewayTap, EgressTrap]]:
    async with run_gateway(cfg) as gw, GatewayTap(gw.url) as tap, EgressTrap() as trap:
        yield gw, tap, trap


def _dirs(tmp_path: Path) -> tuple[Path, Path]:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    return work, home


def _all_ok(tap: GatewayTap, trap: EgressTrap, context: str) -> None:
    assert trap.attempts == [], f"requests to non-local hosts: {trap.attempts}\n{context}"
    failed = [e.line() for e in tap.exchanges if not e.ok]
    assert not failed, "the gateway answered the CLI with non-2xx:\n" + "\n".join(failed) + f"\n{context}"


async def test_claude_code_writes_a_file_with_a_claude_model_on_bedrock(tmp_path: Path) -> None:
    claude = CLAUDE.require()
    work, home = _dirs(tmp_path)
    async with BedrockAgentUpstream(work) as bedrock:
        provider = {"api": "bedrock", "base_url": bedrock.url, "region": REGION,
                    "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}  # fmt: skip
        caps = ["streaming", "tools", "vision", "reasoning", "prompt_caching"]
        cfg = _config(sqlite_url(tmp_path), provider, "claude-on-bedrock", BEDROCK_MODEL, caps)
        async with _gateway(cfg) as (gw, tap, trap):
            key = (await gw.create_key("claude-code-bedrock"))["key"]
            env = claude_env(base_url=tap.url, api_key=key, model="claude-on-bedrock", home=home, proxy=trap.url)
            run = await run_claude(claude, PROMPT, cwd=work, env=env, seconds=RUN_TIMEOUT)
            decisions = [(d.kind, d.received.path) for d in bedrock.decisions]
            context = f"{run.describe()}\n--- gateway traffic ---\n{tap.summary()}\n--- upstream ---\n{decisions}"
            _all_ok(tap, trap, context)

    # the CLI succeeded and did the work with its own Write tool
    assert run.returncode == 0 and run.result is not None, context
    assert run.result.get("is_error") is False and FINAL_TEXT in (run.result.get("result") or ""), context
    target = work / "hello.py"
    assert target.read_text() == HELLO_CONTENT, context
    uses = run.tool_uses()
    assert [u.get("name") for u in uses] == ["Write"], context

    # Bedrock saw ConverseStream at the inference profile's path (its `:` percent-encoded, as SigV4
    # signs it), signed with the provider's key, never the caller's
    generations = [r for r in bedrock.requests if "/converse" in r.path]
    assert generations and all(r.path == f"/model/{BEDROCK_MODEL}/converse-stream" for r in generations), context
    assert all((r.header("authorization") or "").startswith("AWS4-HMAC-SHA256 Credential=" + ACCESS_KEY)
               for r in generations)  # fmt: skip
    calls = [d for d in bedrock.decisions if d.kind == "tool_call"]
    finals = [d for d in bedrock.decisions if d.kind == "final"]
    assert len(calls) == 1 and finals, context
    offered = [t["toolSpec"]["name"] for t in calls[0].received.body["toolConfig"]["tools"] if "toolSpec" in t]
    assert "Write" in offered

    # the round trip in Bedrock's shapes: the call as the assistant's toolUse, its result as the
    # user's toolResult, both under the id Bedrock gave the call
    call_id = calls[0].tool_call_id
    follow = finals[0].received.body["messages"]
    used = [b["toolUse"] for m in follow if m["role"] == "assistant" for b in m["content"] if "toolUse" in b]
    assert [(u["toolUseId"], u["name"], u["input"]) for u in used] == [(call_id, "Write", uses[0]["input"])]
    results = [b["toolResult"] for m in follow if m["role"] == "user" for b in m["content"] if "toolResult" in b]
    assert [r["toolUseId"] for r in results] == [call_id]
    assert "hello.py" in json.dumps(results[0]["content"])


async def test_codex_runs_a_command_with_a_gemini_3_model_on_the_native_api(tmp_path: Path) -> None:
    codex = CODEX.require()
    work, home = _dirs(tmp_path)
    async with GeminiAgentUpstream(work) as gemini:
        provider = {"api": "gemini", "base_url": gemini.url, "api_key": GeminiAgentUpstream.DEFAULT_KEY}
        caps = ["streaming", "tools", "vision", "reasoning", "response_format"]
        cfg = _config(sqlite_url(tmp_path), provider, "gemini-3-test", GEMINI_MODEL, caps)
        async with _gateway(cfg) as (gw, tap, trap):
            key = (await gw.create_key("codex-gemini"))["key"]
            write_config(home, base_url=tap.url + "/v1", model="gemini-3-test")
            env = codex_env(home=home, api_key=key, proxy=trap.url)
            run = await run_codex(codex, PROMPT, cwd=work, env=env, seconds=RUN_TIMEOUT)
            decisions = [(d.kind, d.received.path) for d in gemini.decisions]
            context = f"{run.describe()}\n--- gateway traffic ---\n{tap.summary()}\n--- upstream ---\n{decisions}"
            _all_ok(tap, trap, context)
            posts = [e for e in tap.exchanges if e.method == "POST"]

    # the CLI succeeded and did the work with its shell tool
    assert run.returncode == 0, context
    assert (work / "hello.py").read_text() == HELLO_CONTENT, context
    assert run.last_message == FINAL_TEXT, context
    commands = run.items("command_execution")
    assert len(commands) == 1 and commands[0].get("exit_code") == 0, context
    assert len(posts) >= 2 and all(e.path == "/v1/responses" for e in posts), context

    # Gemini saw its own API, with the provider's key
    calls = [d for d in gemini.decisions if d.kind == "tool_call"]
    finals = [d for d in gemini.decisions if d.kind == "final"]
    assert len(calls) == 1 and finals, context
    assert calls[0].received.path == f"/v1beta/models/{GEMINI_MODEL}:streamGenerateContent", context
    assert all(r.header("x-goog-api-key") == GeminiAgentUpstream.DEFAULT_KEY for r in gemini.requests)
    assert calls[0].tool_name == "exec_command"

    # the function call came back in the model's turn with exactly the signature Gemini issued for it
    # (the emulator refuses the turn otherwise, as Gemini 3 does), and its output as functionResponse
    contents = finals[0].received.body["contents"]
    model_calls = [p for c in contents if c["role"] == "model" for p in c["parts"] if "functionCall" in p]
    assert [p["functionCall"]["name"] for p in model_calls] == ["exec_command"], context
    assert model_calls[0]["thoughtSignature"] == gemini.issued_signature("exec_command:")
    responses = [p["functionResponse"] for c in contents for p in c["parts"] if "functionResponse" in p]
    assert [r["name"] for r in responses] == ["exec_command"], context

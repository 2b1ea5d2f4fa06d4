"""The agent upstream itself, driven by the official OpenAI SDK (fast; no Claude Code needed)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest_asyncio
from upstreams.script import Fault

from e2e.agent_upstream import FINAL_TEXT, HELLO_CONTENT, PLAIN_TEXT, AgentUpstream, find_write_tool

WRITE: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "Write",
        "description": "Writes a file",
        "parameters": {
            "type": "object",
            "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["file_path", "content"],
        },
    },
}
READ: dict[str, Any] = {
    "type": "function",
    "function": {"name": "Read", "parameters": {"type": "object", "properties": {"file_path": {}}}},
}


@pytest_asyncio.fixture
async def agent(tmp_path: Path) -> AsyncIterator[AgentUpstream]:
    async with AgentUpstream(tmp_path) as server:
        yield server


def client(agent: AgentUpstream) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=agent.url, api_key=AgentUpstream.DEFAULT_KEY, max_retries=0, timeout=10)


async def stream_turn(agent: AgentUpstream, **kw: Any) -> tuple[str, list[dict[str, str]], str | None]:
    text, finish = "", None
    calls: dict[int, dict[str, str]] = {}
    async with client(agent) as c:
        stream = await c.chat.completions.create(model="up-gpt", stream=True, **kw)
        async for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for tc in choice.delta.tool_calls or []:
                    slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] += tc.id or ""
                    slot["name"] += (tc.function.name if tc.function else None) or ""
                    slot["arguments"] += (tc.function.arguments if tc.function else None) or ""
                finish = choice.finish_reason or finish
    return text, [calls[i] for i in sorted(calls)], finish


async def test_tool_round_trip_streamed(agent: AgentUpstream, tmp_path: Path) -> None:
    user = {"role": "user", "content": "Create hello.py that prints hello"}
    text, calls, finish = await stream_turn(agent, messages=[user], tools=[READ, WRITE])
    assert (text, finish) == ("", "tool_calls")
    assert [c["name"] for c in calls] == ["Write"]
    args = json.loads(calls[0]["arguments"])
    assert args == {"file_path": str(tmp_path / "hello.py"), "content": HELLO_CONTENT}

    function = {"name": "Write", "arguments": calls[0]["arguments"]}
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": calls[0]["id"], "type": "function", "function": function}],
    }
    result = {"role": "tool", "tool_call_id": calls[0]["id"], "content": "File created"}
    text, calls2, finish = await stream_turn(agent, messages=[user, assistant, result], tools=[READ, WRITE])
    assert (text, calls2, finish) == (FINAL_TEXT, [], "stop")
    assert [d.kind for d in agent.decisions] == ["tool_call", "final"]
    assert agent.decisions[0].tool_call_id == calls[0]["id"]


async def test_no_tools_gets_plain_text_and_script_still_wins(agent: AgentUpstream) -> None:
    async with client(agent) as c:
        r = await c.chat.completions.create(model="up-gpt", messages=[{"role": "user", "content": "title?"}])
        assert r.choices[0].message.content == PLAIN_TEXT
        agent.script(Fault(status=503))
        try:
            await c.chat.completions.create(model="up-gpt", messages=[{"role": "user", "content": "again"}])
        except openai.InternalServerError as exc:
            assert exc.status_code == 503
        else:
            raise AssertionError("the scripted fault was not used")
    assert [d.kind for d in agent.decisions] == ["plain", "scripted"]


def test_find_write_tool_by_schema() -> None:
    other = {"type": "function", "function": {"name": "create_file", "parameters": WRITE["function"]["parameters"]}}
    assert find_write_tool([READ, WRITE]) == "Write"
    assert find_write_tool([READ, other]) == "create_file"
    assert find_write_tool([READ]) is None

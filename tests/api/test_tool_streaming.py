"""Parallel tool calls reach a Messages caller as they arrive (issue 9 §3), end to end through the
anthropic SDK's streaming, from upstreams of both formats.

Timing-independent: the emulated upstream stops before the second call's arguments and waits for
the test. The test must see the first call's `content_block_stop` (and the second call's block
start) before it releases the upstream; a gateway that held later calls back until the end would
never write them, and the bounded wait fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from anthropic.types import ToolParam
from support.clients import anthropic_client
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply, ToolCall

MODELS = {"openai": "gpt-test", "anthropic": "claude-test"}
WAIT = 10.0  # seconds: bound on the whole exchange


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    async with run_gateway(two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))) as g:
        yield g


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
async def test_the_first_call_is_closed_before_the_second_calls_arguments_are_sent(
    gw: RunningGateway, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, fmt: str
) -> None:
    up = openai_upstream if fmt == "openai" else anthropic_upstream
    calls = [ToolCall(None, "Read", {"path": "first.txt"}), ToolCall(None, "Read", {"path": "second.txt"})]
    up.script(Fault(hold_before=b"second.txt", reply=Reply(text="Reading.", tool_calls=calls, args_chunk=100)))
    tools: list[ToolParam] = [{"name": "Read", "description": "read", "input_schema": {"type": "object"}}]
    seen: list[tuple[str, int]] = []
    async with anthropic_client(gw.url, gw.admin_key) as client, asyncio.timeout(WAIT):
        async with client.messages.stream(
            model=MODELS[fmt], max_tokens=512, tools=tools, messages=[{"role": "user", "content": "read both"}]
        ) as stream:
            async for ev in stream:
                if ev.type in ("content_block_start", "content_block_stop"):
                    seen.append((ev.type, ev.index))
                if ev.type == "content_block_start" and ev.content_block.type == "tool_use" and ev.index == 2:
                    # the first call (block 1) is already closed and the second is open, while the
                    # upstream cannot send the second call's arguments until released
                    assert ("content_block_stop", 1) in seen
                    assert not any(b"second.txt" in r.raw for r in up.requests)  # not an echo of ours
                    await up.held.wait()
                    up.release()
            msg = await stream.get_final_message()
    assert seen == [
        ("content_block_start", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_stop", 2),
    ]
    assert [(b.type, getattr(b, "input", None)) for b in msg.content] == [
        ("text", None),
        ("tool_use", {"path": "first.txt"}),
        ("tool_use", {"path": "second.txt"}),
    ]
    assert msg.stop_reason == "tool_use"

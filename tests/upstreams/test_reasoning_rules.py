"""The emulators enforce the providers' documented rules for reasoning sent back, as the real APIs
refuse: DeepSeek's thinking mode (`reasoning_content` on every tool-call turn, exactly as answered)
and Anthropic's signed thinking (exact signature, redacted data as issued, a tool loop with thinking
on must start its last assistant turn with its thinking). SDKs pointed straight at them."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from upstreams import AnthropicUpstream, OpenAIUpstream, Reply, ToolCall
from upstreams.anthropic_server import MISSING_THINKING
from upstreams.openai_server import DEEPSEEK_REASONING_MISSING

pytestmark = pytest.mark.asyncio
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}}
CALL = ToolCall(None, "get_weather", {"city": "Paris"})


def _turns(*messages: Any) -> list[Any]:
    """A conversation as the SDKs take it (their TypedDicts cannot type these hand-built turns)."""
    return list(messages)


async def test_deepseek_thinking_mode_wants_its_exact_reasoning_back_on_tool_turns() -> None:
    async with (
        OpenAIUpstream(thinking_mode=True) as server,
        openai.AsyncOpenAI(base_url=server.url, api_key=server.expected_key, max_retries=0) as client,
    ):
        server.script(Reply(text=None, thinking="why", tool_calls=[CALL]))
        q: list[Any] = [{"role": "user", "content": "Weather?"}]
        first = (await client.chat.completions.create(model="m", messages=q)).choices[0].message
        assert (first.model_extra or {})["reasoning_content"] == "why"
        call = first.tool_calls[0]  # type: ignore[index]
        assistant: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]}
        result: dict[str, Any] = {"role": "tool", "tool_call_id": call.id, "content": "sunny"}
        for wrong in ({}, {"reasoning_content": ""}, {"reasoning_content": "other"}):
            with pytest.raises(openai.BadRequestError, match="reasoning_content in the thinking mode") as e:
                await client.chat.completions.create(model="m", messages=_turns(*q, {**assistant, **wrong}, result))
            assert e.value.body == {
                "message": DEEPSEEK_REASONING_MISSING,
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        ok = await client.chat.completions.create(
            model="m", messages=_turns(*q, {**assistant, "reasoning_content": "why"}, result)
        )
        assert ok.choices[0].message.content == "Hello!"
        # a tool call it did not make (another model's) needs the field, any text
        other: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "reasoning_content": "",
            "tool_calls": [{"id": "x1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        }
        await client.chat.completions.create(model="m", messages=_turns(*q, other, {**result, "tool_call_id": "x1"}))


async def test_anthropic_wants_its_exact_signed_thinking_back_in_a_tool_loop() -> None:
    async with (
        AnthropicUpstream(verify_thinking=True) as server,
        anthropic.AsyncAnthropic(base_url=server.url, api_key=server.expected_key, max_retries=0) as client,
    ):
        server.script(Reply(text=None, thinking="why", redacted="opaque", tool_calls=[CALL]))
        kw: dict[str, Any] = {
            "model": "m",
            "max_tokens": 4096,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "tools": [{"name": "get_weather", "input_schema": WEATHER}],
        }
        q: list[Any] = [{"role": "user", "content": "Weather?"}]
        first = await client.messages.create(messages=q, **kw)
        blocks = [b.model_dump() for b in first.content]
        assert [b["type"] for b in blocks] == ["redacted_thinking", "thinking", "tool_use"]
        assert blocks[1]["signature"] == server.sign("why")
        result: dict[str, Any] = {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": blocks[2]["id"], "content": "x"}],
        }

        async def turn(content: list[dict[str, Any]], **extra: Any) -> Any:
            return await client.messages.create(
                messages=_turns(*q, {"role": "assistant", "content": content}, result), **{**kw, **extra}
            )

        with pytest.raises(anthropic.BadRequestError) as e:
            await turn(blocks[2:])
        assert e.value.body["error"]["message"] == MISSING_THINKING.format(i=1, found="tool_use")  # type: ignore[index]
        with pytest.raises(anthropic.BadRequestError, match="Invalid `signature`"):
            await turn([blocks[0], {**blocks[1], "thinking": "edited"}, blocks[2]])
        with pytest.raises(anthropic.BadRequestError, match="redacted_thinking"):
            await turn([{**blocks[0], "data": "forged"}, blocks[1], blocks[2]])
        assert (await turn(blocks)).content[0].type == "text"
        # with thinking off the loop goes on without it, as Anthropic's own advice says
        assert (await turn(blocks[2:], thinking={"type": "disabled"})).content[0].type == "text"

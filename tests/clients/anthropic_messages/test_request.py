"""Anthropic Messages client bodies -> canonical: fields, blocks, thinking, tools, validation."""

from __future__ import annotations

from typing import Any

import pytest

from keeprouter.clients.anthropic_messages import request as messages_req
from keeprouter.errors import (
    InvalidRequest,
)
from keeprouter.formats.canonical import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    Reasoning,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
EPH = {"type": "ephemeral"}


def body(**kw: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        **kw,
    }


def test_parse_request_full_claude_code_style_body() -> None:
    web = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    req = messages_req.parse_request(
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 32000,
            "system": [
                {"type": "text", "text": "You are Claude Code."},
                {"type": "text", "text": "Env", "cache_control": EPH},
            ],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://x/i.png"}},
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "doc"},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "plan", "signature": "SIG"},
                        {"type": "redacted_thinking", "data": "RED"},
                        {"type": "text", "text": "Checking."},
                        {
                            "type": "server_tool_use",
                            "id": "srvtoolu_1",
                            "name": "web_search",
                            "input": {"q": "x"},
                        },
                        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "get_weather",
                            "input": {"city": "Paris", "n": [1, 2]},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "is_error": True,
                            "content": [
                                {"type": "text", "text": "boom"},
                                {"type": "image", "source": {"type": "url", "url": "u"}},
                            ],
                        },
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "content": "ok",
                            "cache_control": EPH,
                        },
                    ],
                },
            ],
            "tools": [
                {
                    "name": "get_weather",
                    "description": "Weather",
                    "input_schema": SCHEMA,
                    "cache_control": EPH,
                },
                web,
            ],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "stop_sequences": ["STOP"],
            "temperature": 0.5,
            "top_p": 0.9,
            "top_k": 10,
            "metadata": {"user_id": "user_abc"},
            "thinking": {"type": "enabled", "budget_tokens": 4096},
            "stream": True,
            "context_management": {"edits": []},
            "provider": {"order": ["anthropic"]},
        }
    )
    assert req == ChatRequest(
        model="claude-sonnet-4-6",
        source="anthropic",
        max_tokens=32000,
        system=[TextPart(text="You are Claude Code."), TextPart(text="Env", cache_control=EPH)],
        messages=[
            Message(
                role="user",
                content=[
                    TextPart(text="look"),
                    ImagePart(media_type="image/png", data="AAAA"),
                    ImagePart(url="https://x/i.png"),
                    DocumentPart(text="doc", where="messages[0].content[3]"),
                ],
            ),
            Message(
                role="assistant",
                content=[
                    ThinkingPart(text="plan", signature="SIG", origin="anthropic"),
                    ThinkingPart(redacted="RED", origin="anthropic"),
                    TextPart(text="Checking."),
                    ToolCallPart(id="toolu_1", name="get_weather", arguments='{"city":"Paris","n":[1,2]}'),
                ],
            ),
            Message(
                role="user",
                content=[
                    ToolResultPart(
                        tool_call_id="toolu_1",
                        is_error=True,
                        content=[TextPart(text="boom"), ImagePart(url="u")],
                    ),
                    ToolResultPart(tool_call_id="toolu_2", content=[TextPart(text="ok")], cache_control=EPH),
                ],
            ),
        ],
        tools=[Tool(name="get_weather", description="Weather", parameters=SCHEMA, cache_control=EPH)],
        tool_choice=ToolChoice(mode="required", disable_parallel=True),
        stop=["STOP"],
        temperature=0.5,
        top_p=0.9,
        top_k=10,
        user="user_abc",
        reasoning=Reasoning(budget_tokens=4096),
        stream=True,
        extra={"context_management": {"edits": []}},
        server_tools=[web],
    )


def test_parse_request_count_tokens_does_not_need_max_tokens() -> None:
    b = body()
    del b["max_tokens"]
    assert messages_req.parse_request(b, require_max_tokens=False).max_tokens is None
    with pytest.raises(InvalidRequest, match="max_tokens"):
        messages_req.parse_request(b)


@pytest.mark.parametrize(
    "thinking,extra,expected",
    [
        ({"type": "disabled"}, {}, Reasoning(enabled=False)),
        ({"type": "adaptive"}, {"output_config": {"effort": "high"}}, Reasoning(effort="high")),
    ],
)
def test_parse_request_thinking_forms(thinking: dict[str, Any], extra: dict[str, Any], expected: Reasoning) -> None:
    req = messages_req.parse_request(body(thinking=thinking, **extra))
    assert req.reasoning == expected
    # a config Reasoning cannot express is kept whole for an Anthropic upstream, never in `extra`
    assert req.thinking_config == (thinking if thinking["type"] == "adaptive" else None)
    assert "thinking" not in req.extra


@pytest.mark.parametrize(
    "tc,expected",
    [
        ({"type": "auto"}, ToolChoice(mode="auto")),
        ({"type": "none"}, ToolChoice(mode="none")),
        ({"type": "tool", "name": "f"}, ToolChoice(mode="tool", name="f")),
    ],
)
def test_parse_request_tool_choice(tc: dict[str, Any], expected: ToolChoice) -> None:
    assert messages_req.parse_request(body(tool_choice=tc)).tool_choice == expected


@pytest.mark.parametrize(
    "bad,field",
    [
        ({"model": 3}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "moderator", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"type": "weird"}]}]}, "messages[0].content[0].type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
            "messages[0].content[0].tool_use_id",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "base64"}}]}]},
            "messages[0].content[0].source",
        ),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"system": [{"type": "image"}]}, "system[0]"),
        ({"tool_choice": {"type": "maybe"}}, "tool_choice.type"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"stop_sequences": "x"}, "stop_sequences"),
        ({"tools": [{"input_schema": {}}]}, "tools[0].name"),
    ],
)
def test_parse_request_invalid_names_the_field(bad: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        messages_req.parse_request(body(**bad))
    assert f"`{field}`" in e.value.message


def test_parse_request_keeps_text_of_search_result_blocks() -> None:
    block = {
        "type": "search_result",
        "source": "s",
        "title": "t",
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
    }
    req = messages_req.parse_request(
        body(messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "content": [block]}]}])
    )
    assert req.messages[0].content == [ToolResultPart(tool_call_id="x", content=[TextPart(text="a\n\nb")])]

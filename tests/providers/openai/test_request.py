"""Canonical -> OpenAI Chat Completions upstream bodies: messages, extra fields, cache_control."""

from __future__ import annotations

from typing import Any

from keeprouter.clients.openai_chat import request as chat_req
from keeprouter.formats.canonical import (
    ChatRequest,
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
from keeprouter.providers.openai import request as openai_req

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def body(**kw: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **kw}


def test_build_request_from_anthropic_canonical() -> None:
    req = ChatRequest(
        model="claude",
        source="anthropic",
        system=[TextPart(text="A"), TextPart(text="B")],
        messages=[
            Message(role="user", content=[TextPart(text="hi"), ImagePart(media_type="image/jpeg", data="QQ")]),
            Message(
                role="assistant",
                content=[
                    ThinkingPart(text="t", signature="sig", origin="anthropic"),
                    TextPart(text="Let me check."),
                    ToolCallPart(id="toolu_1", name="f", arguments='{"x":1}'),
                ],
            ),
            Message(
                role="user",
                content=[
                    TextPart(text="and"),
                    ToolResultPart(tool_call_id="toolu_1", content=[TextPart(text="r1"), TextPart(text="r2")]),
                ],
            ),
        ],
        tools=[Tool(name="f", parameters=WEATHER)],
        tool_choice=ToolChoice(mode="required", disable_parallel=True),
        max_tokens=10,
        temperature=0.2,
        top_k=5,
        stop=["x"],
        user="u",
        reasoning=Reasoning(budget_tokens=4000),
        stream=True,
        extra={"context_management": {}},
    )
    assert openai_req.build_request(req, "gpt-4o") == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "A\n\nB"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QQ"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "r1r2"},
            {"role": "user", "content": "and"},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": WEATHER}}],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "max_tokens": 10,
        "temperature": 0.2,
        "stop": ["x"],
        "user": "u",
        "reasoning_effort": "medium",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_build_request_passes_openai_extra_and_always_asks_stream_usage() -> None:
    req = chat_req.parse_request(body(stream=True, logprobs=True, top_k=3, tool_choice="auto"))
    out = openai_req.build_request(req, "up")
    assert out == {
        "logprobs": True,
        "model": "up",
        "messages": [{"role": "user", "content": "hi"}],
        "top_k": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_build_request_keeps_system_parts_when_cache_control_present() -> None:
    req = ChatRequest(
        model="m",
        messages=[Message(role="user", content=[TextPart(text="q")])],
        system=[TextPart(text="a", cache_control={"type": "ephemeral"})],
    )
    assert openai_req.build_request(req, "m")["messages"][0] == {
        "role": "system",
        "content": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}],
    }


def test_build_request_assistant_with_only_tool_calls_has_null_content() -> None:
    req = ChatRequest(
        model="m",
        messages=[Message(role="assistant", content=[ToolCallPart(id="1", name="f", arguments="")])],
    )
    assert openai_req.build_request(req, "m")["messages"] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": ""}}],
        }
    ]

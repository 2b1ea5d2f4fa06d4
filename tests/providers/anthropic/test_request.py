"""Canonical -> Anthropic Messages upstream bodies: tools, thinking, sampling, system, turns."""

from __future__ import annotations

from typing import Any

import pytest

from keeprouter.clients.anthropic_messages import request as messages_req
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
from keeprouter.formats.wire.anthropic import tool_id
from keeprouter.providers.anthropic import request as anthropic_req

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
EPH = {"type": "ephemeral"}


def body(**kw: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        **kw,
    }


def test_build_request_from_openai_canonical() -> None:
    req = ChatRequest(
        model="gpt",
        source="openai",
        system=[TextPart(text="sys")],
        messages=[
            Message(role="user", content=[TextPart(text="q"), ImagePart(url="https://i")]),
            Message(role="user", content=[TextPart(text="q2")]),
            Message(
                role="assistant",
                content=[
                    ThinkingPart(text="unsigned"),
                    ThinkingPart(text="other", signature="s", origin="gemini"),
                    TextPart(text=""),
                    ToolCallPart(id="call_1", name="f", arguments='{"a":1}'),
                    ToolCallPart(id="call_2", name="f", arguments="not json"),
                    ToolCallPart(id="call_3", name="f", arguments=""),
                ],
            ),
            Message(role="user", content=[ToolResultPart(tool_call_id="call_1", content=[TextPart(text="r")])]),
            Message(
                role="user",
                content=[ToolResultPart(tool_call_id="call_2", content=[]), TextPart(text="next")],
            ),
            Message(
                role="user",
                content=[ToolResultPart(tool_call_id="call_3", content=[TextPart(text="e")], is_error=True)],
            ),
        ],
        tools=[Tool(name="f", description="d", parameters=SCHEMA), Tool(name="g")],
        tool_choice=ToolChoice(mode="tool", name="f", disable_parallel=True),
        max_tokens=None,
        temperature=1.7,
        top_p=0.9,
        top_k=3,
        stop=["s"],
        seed=1,
        user="u",
        response_format={"type": "text"},  # plain text: nothing to send (json modes: test_fmt_structured)
        stream=True,
        extra={"logprobs": True},
    )
    assert anthropic_req.build_request(req, "claude-x", default_max_tokens=4096) == {
        "model": "claude-x",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "q"},
                    {"type": "image", "source": {"type": "url", "url": "https://i"}},
                    {"type": "text", "text": "q2"},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
                    {"type": "tool_use", "id": "call_2", "name": "f", "input": {}},
                    {"type": "tool_use", "id": "call_3", "name": "f", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_1",
                        "content": [{"type": "text", "text": "r"}],
                    },
                    {"type": "tool_result", "tool_use_id": "call_2"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_3",
                        "content": [{"type": "text", "text": "e"}],
                        "is_error": True,
                    },
                    {"type": "text", "text": "next"},
                ],
            },
        ],
        "system": "sys",
        "tools": [
            {"name": "f", "description": "d", "input_schema": SCHEMA},
            {"name": "g", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        "max_tokens": 4096,
        "temperature": 1.0,
        "top_k": 3,
        "stop_sequences": ["s"],
        "metadata": {"user_id": "u"},
        "stream": True,
    }


def test_build_request_replays_only_signed_anthropic_thinking_and_extra_for_anthropic_clients() -> None:
    web = {"type": "web_search_20250305", "name": "web_search"}
    req = messages_req.parse_request(
        body(
            system="plain",
            messages=[
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "t", "signature": "SIG"},
                        {"type": "thinking", "thinking": "u", "signature": ""},
                        {"type": "redacted_thinking", "data": "R"},
                        {"type": "text", "text": "a"},
                    ],
                },
            ],
            tools=[web],
            tool_choice={"type": "auto"},
            temperature=0.3,
            top_p=0.8,
            thinking={"type": "adaptive"},
            output_config={"effort": "low"},
            service_tier="auto",
        )
    )
    assert anthropic_req.build_request(req, "up", default_max_tokens=1) == {
        "output_config": {"effort": "low"},
        "service_tier": "auto",
        "model": "up",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "q"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "SIG"},
                    {"type": "redacted_thinking", "data": "R"},
                    {"type": "text", "text": "a"},
                ],
            },
        ],
        "system": "plain",
        "tools": [web],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "adaptive"},
        "max_tokens": 100,
    }


def test_build_request_without_a_callers_cap_makes_room_for_the_budget() -> None:
    req = ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text="q")])],
                      reasoning=Reasoning(effort="high"))  # fmt: skip
    out = anthropic_req.build_request(req, "m", default_max_tokens=4096)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 16000} and out["max_tokens"] == 16000 + 4096


@pytest.mark.parametrize(
    "reasoning,max_tokens,thinking,final_max",
    [
        (Reasoning(effort="low"), 8000, {"type": "enabled", "budget_tokens": 2048}, 8000),
        # the budget fits inside the caller's cap, which is never raised: it shrinks to half the
        # cap, and where Anthropic's minimum does not fit beside an answer, thinking stays off
        (Reasoning(effort="high"), 10000, {"type": "enabled", "budget_tokens": 5000}, 10000),
        (Reasoning(effort="high"), 1500, {"type": "enabled", "budget_tokens": 1024}, 1500),
        (Reasoning(effort="high"), 1000, None, 1000),
        (Reasoning(budget_tokens=10), 5000, {"type": "enabled", "budget_tokens": 1024}, 5000),
        (Reasoning(), 20000, {"type": "enabled", "budget_tokens": 8192}, 20000),
        (Reasoning(enabled=False), 10, None, 10),
        (Reasoning(effort="none", enabled=False), 10, None, 10),
    ],
)
def test_build_request_reasoning_budget_and_max_tokens(
    reasoning: Reasoning, max_tokens: int, thinking: dict[str, Any] | None, final_max: int
) -> None:
    req = ChatRequest(
        model="m",
        messages=[Message(role="user", content=[TextPart(text="q")])],
        reasoning=reasoning,
        max_tokens=max_tokens,
        temperature=0.2,
        top_p=0.5,
        top_k=4,
    )
    out = anthropic_req.build_request(req, "m", default_max_tokens=1)
    assert out.get("thinking") == thinking and out["max_tokens"] == final_max
    if thinking:  # Anthropic rejects sampling overrides with thinking on
        assert "temperature" not in out and "top_k" not in out and "top_p" not in out
    else:
        assert out["temperature"] == 0.2 and "top_p" not in out and out["top_k"] == 4


def test_build_request_system_blocks_keep_cache_control_and_skip_empty() -> None:
    req = ChatRequest(
        model="m",
        messages=[Message(role="user", content=[TextPart(text="q")])],
        system=[TextPart(text="a"), TextPart(text=""), TextPart(text="b", cache_control=EPH)],
    )
    assert anthropic_req.build_request(req, "m", default_max_tokens=5)["system"] == [
        {"type": "text", "text": "a"},
        {"type": "text", "text": "b", "cache_control": EPH},
    ]


def test_build_request_merges_turns_left_adjacent_by_an_empty_message() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message(role="user", content=[TextPart(text="a")]),
            Message(role="assistant", content=[ThinkingPart(text="dropped")]),
            Message(role="user", content=[TextPart(text="b"), ToolResultPart(tool_call_id="t", content=[])]),
        ],
    )
    assert anthropic_req.build_request(req, "m", default_max_tokens=5)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t"},
                {"type": "text", "text": "a"},
                {"type": "text", "text": "b"},
            ],
        }
    ]


def test_build_request_rewrites_tool_ids_anthropic_rejects_consistently() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message(
                role="assistant",
                content=[ToolCallPart(id="functions.get_weather:0", name="f", arguments="{}")],
            ),
            Message(role="user", content=[ToolResultPart(tool_call_id="functions.get_weather:0", content=[])]),
        ],
    )
    msgs = anthropic_req.build_request(req, "m", default_max_tokens=5)["messages"]
    assert msgs[0]["content"][0]["id"] == msgs[1]["content"][0]["tool_use_id"] == "functions_get_weather_0"
    assert tool_id("toolu_01-ok") == "toolu_01-ok"


def test_build_request_forced_tool_wins_over_reasoning_for_openai_clients() -> None:
    req = ChatRequest(
        model="m",
        messages=[Message(role="user", content=[TextPart(text="q")])],
        tools=[Tool(name="f")],
        tool_choice=ToolChoice(mode="required"),
        reasoning=Reasoning(effort="high"),
    )
    out = anthropic_req.build_request(req, "m", default_max_tokens=100)
    assert "thinking" not in out and out["tool_choice"] == {"type": "any"} and out["max_tokens"] == 100


def test_mid_conversation_system_message_is_accepted_and_kept_for_anthropic_upstreams() -> None:
    # Claude Code sends {"role": "system"} mid-conversation (anthropic-beta mid-conversation-system-...).
    req = messages_req.parse_request(
        body(
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "Available agent types: ..."},
                {"role": "user", "content": "go"},
            ]
        )
    )
    assert [m.role for m in req.messages] == ["user", "system", "user"]
    out = anthropic_req.build_request(req, "claude-x", default_max_tokens=100)
    assert [m["role"] for m in out["messages"]] == ["user", "system", "user"]


def test_mid_conversation_system_message_goes_in_place_to_openai_upstreams() -> None:
    from keeprouter.providers.openai import request as openai_req

    req = messages_req.parse_request(
        body(
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            ]
        )
    )
    out = openai_req.build_request(req, "gpt-x")
    assert out["messages"][-1] == {"role": "system", "content": "Be brief."}


def test_thinking_left_off_for_a_tool_loop_whose_last_turn_lost_its_thinking() -> None:
    # begun on another provider (its reasoning is not Anthropic's to verify), or not sent back: with
    # thinking on, Anthropic would refuse it; without, it answers
    from keeprouter.formats.canonical import ThinkingPart, ToolCallPart, ToolResultPart

    def loop(*thinking: ThinkingPart) -> ChatRequest:
        return ChatRequest(
            model="m",
            messages=[
                Message(role="user", content=[TextPart(text="q")]),
                Message(role="assistant", content=[*thinking, ToolCallPart(id="c", name="f", arguments="{}")]),
                Message(role="user", content=[ToolResultPart(tool_call_id="c", content=[TextPart(text="r")])]),
            ],
            reasoning=Reasoning(effort="low"),
            max_tokens=8000,
        )

    lost = anthropic_req.build_request(loop(ThinkingPart(text="deepseek's")), "m", default_max_tokens=1)
    assert "thinking" not in lost
    signed = anthropic_req.build_request(
        loop(ThinkingPart(text="t", signature="S", origin="anthropic")), "m", default_max_tokens=1
    )
    assert signed["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert signed["messages"][1]["content"][0] == {"type": "thinking", "thinking": "t", "signature": "S"}

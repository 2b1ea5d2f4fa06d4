"""Converse translator: nothing silently lost. `n` > 1 refused, an Anthropic client's structured
output carried as a forced tool, a tool loop begun on another provider goes on without thinking,
and what the body cannot carry named (X-KeepRouter-Dropped)."""

from __future__ import annotations

import pytest

from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import (
    ChatRequest,
    Message,
    Reasoning,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from keeprouter.providers.bedrock.request import build_request, dropped_fields

CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
WEATHER = Tool(name="get_weather", description="Weather", parameters={"type": "object"})
SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}


def req(**kw: object) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text="Hi")])], **kw)  # type: ignore[arg-type]


def test_n_above_one_is_refused() -> None:
    with pytest.raises(InvalidRequest) as e:
        build_request(req(n=2), CLAUDE, default_max_tokens=100)
    assert e.value.param == "n"


def test_an_anthropic_clients_structured_output_is_a_forced_tool() -> None:
    b = build_request(req(source="anthropic", response_format=SCHEMA), CLAUDE, default_max_tokens=100)
    assert b["toolConfig"]["toolChoice"] == {"tool": {"name": "answer"}}
    assert b["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {"json": {"type": "object"}}


def test_adaptive_thinking_is_left_out_beside_a_forced_tool_and_said() -> None:
    r = req(source="anthropic", response_format=SCHEMA, thinking_config={"type": "adaptive"}, reasoning=Reasoning())
    b = build_request(r, CLAUDE, default_max_tokens=100)
    assert "thinking" not in b.get("additionalModelRequestFields", {})
    assert dropped_fields(r, CLAUDE) == ["thinking"]


def loop(*first: ThinkingPart) -> list[Message]:
    call = ToolCallPart(id="t1", name="get_weather", arguments='{"city":"Paris"}')
    return [
        Message(role="user", content=[TextPart(text="Weather?")]),
        Message(role="assistant", content=[*first, call]),
        Message(role="user", content=[ToolResultPart(tool_call_id="t1", content=[TextPart(text="sunny")])]),
    ]


def test_a_tool_loop_without_its_reasoning_goes_on_without_thinking() -> None:
    """Begun on another provider (its reasoning not this endpoint's, so left out), Claude would refuse
    the loop with thinking on: thinking is left out for this turn."""
    r = ChatRequest(model="m", messages=loop(), tools=[WEATHER], reasoning=Reasoning(effort="low"), max_tokens=4096)
    assert "additionalModelRequestFields" not in build_request(r, CLAUDE, default_max_tokens=None)
    signed = ThinkingPart(text="why", signature="sig", origin="bedrock")
    r2 = ChatRequest(
        model="m", messages=loop(signed), tools=[WEATHER], reasoning=Reasoning(effort="low"), max_tokens=4096
    )
    b = build_request(r2, CLAUDE, default_max_tokens=None)
    assert b["additionalModelRequestFields"]["thinking"]["type"] == "enabled"
    replayed = {"reasoningContent": {"reasoningText": {"text": "why", "signature": "sig"}}}
    assert b["messages"][1]["content"][0] == replayed


def test_dropped_fields_name_what_converse_cannot_carry() -> None:
    openai = req(
        extra={"frequency_penalty": 1, "presence_penalty": 1, "prompt_cache_key": "k", "cache_control": {}},
        seed=1,
        logprobs=True,
        top_logprobs=2,
        user="u",
        tools=[WEATHER],
        tool_choice=ToolChoice(mode="auto", disable_parallel=True),
        top_k=5,
    )
    assert dropped_fields(openai, CLAUDE) == [
        "frequency_penalty",
        "presence_penalty",
        "seed",
        "logprobs",
        "top_logprobs",
        "user",
        "parallel_tool_calls",
    ]
    assert "top_k" in dropped_fields(openai, NOVA)  # a Claude knob only
    anthropic = req(
        source="anthropic",
        extra={"output_config": {"effort": "low"}, "service_tier": "auto"},
        user="u",
        server_tools=[{"type": "web_search_20250305", "name": "web_search"}],
    )
    assert dropped_fields(anthropic, CLAUDE) == [
        "service_tier",
        "output_config.effort",
        "tools[type=web_search_20250305]",
        "metadata.user_id",
    ]
    assert dropped_fields(req(reasoning=Reasoning(effort="high")), NOVA) == ["reasoning"]  # thinking is Claude's
    assert dropped_fields(req(temperature=0.5, stop=["x"]), CLAUDE) == []
    assert dropped_fields(req(temperature=0.5, top_p=0.9), CLAUDE) == ["top_p"]  # Claude refuses both
    assert dropped_fields(req(temperature=0.5, top_p=0.9), NOVA) == []
    assert dropped_fields(req(source="anthropic", temperature=0.5, top_p=0.9), CLAUDE) == []  # sent as asked

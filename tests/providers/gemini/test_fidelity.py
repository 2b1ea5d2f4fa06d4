"""Gemini translator: nothing silently lost. `n` > 1 refused, and what the body cannot carry
named (X-KeepRouter-Dropped); what it carries (seed, top_k, structured output) is not."""

from __future__ import annotations

import pytest

from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import ChatRequest, Message, Reasoning, TextPart, Tool, ToolChoice
from keeprouter.providers.gemini.request import build_request, dropped_fields

WEATHER = Tool(name="get_weather", description="Weather", parameters={"type": "object"})


def req(**kw: object) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text="Hi")])], **kw)  # type: ignore[arg-type]


def test_n_above_one_is_refused() -> None:
    with pytest.raises(InvalidRequest) as e:
        build_request(req(n=2), "gemini-2.5-flash")
    assert e.value.param == "n"


def test_dropped_fields_name_what_gemini_cannot_carry() -> None:
    openai = req(
        extra={"frequency_penalty": 1, "logit_bias": {}, "prompt_cache_key": "k"},
        seed=1,
        top_k=3,
        logprobs=True,
        top_logprobs=2,
        user="u",
        tools=[WEATHER],
        tool_choice=ToolChoice(mode="auto", disable_parallel=True),
    )
    assert dropped_fields(openai) == [
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "parallel_tool_calls",
    ]
    g = build_request(openai, "gemini-2.5-flash")["generationConfig"]
    assert (g["seed"], g["topK"]) == (1, 3)  # carried, so not named
    anthropic = req(
        source="anthropic",
        extra={"output_config": {"effort": "low", "format": {}}, "output_format": {}},
        server_tools=[{"type": "web_search_20250305", "name": "web_search"}],
    )
    assert dropped_fields(anthropic) == ["output_config.effort", "tools[type=web_search_20250305]"]
    adaptive = req(
        source="anthropic",
        extra={"output_config": {"effort": "low"}},
        thinking_config={"type": "adaptive"},
        reasoning=Reasoning(effort="low"),
    )
    assert dropped_fields(adaptive) == []  # the effort became thinkingConfig

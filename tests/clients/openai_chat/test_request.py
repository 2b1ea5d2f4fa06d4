"""OpenAI Chat Completions client bodies -> canonical: messages, tools, reasoning, validation."""

from __future__ import annotations

from typing import Any

import pytest

from keeprouter.clients.openai_chat import request as chat_req
from keeprouter.errors import InvalidRequest
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

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def body(**kw: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **kw}


def test_parse_request_full_conversation() -> None:
    req = chat_req.parse_request(
        {
            "model": "openai/gpt-4o",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "developer",
                    "content": [{"type": "text", "text": "Use tools.", "cache_control": {"type": "ephemeral"}}],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Weather?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                        },
                        {"type": "image_url", "image_url": {"url": "https://x/y.jpg"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "reasoning": "think",
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "25C"}]},
                {"role": "user", "content": "thanks"},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER},
                }
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": False,
            "max_completion_tokens": 100,
            "temperature": 1,
            "top_p": 0.5,
            "top_k": 40,
            "stop": "END",
            "seed": 7,
            "response_format": {"type": "json_object"},
            "user": "u1",
            "reasoning": {"effort": "high"},
            "stream": True,
            "stream_options": {"include_usage": True},
            "frequency_penalty": 0.1,
            "provider": {"order": ["x"]},
            "models": ["a", "b"],
        }
    )
    assert req == ChatRequest(
        model="openai/gpt-4o",
        source="openai",
        system=[TextPart(text="Be brief."), TextPart(text="Use tools.", cache_control={"type": "ephemeral"})],
        messages=[
            Message(
                role="user",
                content=[
                    TextPart(text="Weather?"),
                    ImagePart(media_type="image/png", data="AAAA", detail="low"),
                    ImagePart(url="https://x/y.jpg"),
                ],
            ),
            Message(
                role="assistant",
                content=[
                    ThinkingPart(text="think"),
                    ToolCallPart(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
                    ToolCallPart(id="call_2", name="get_weather", arguments='{"city":"Rome"}'),
                ],
            ),
            Message(
                role="user",
                content=[
                    ToolResultPart(tool_call_id="call_1", content=[TextPart(text="18C")]),
                    ToolResultPart(tool_call_id="call_2", content=[TextPart(text="25C")]),
                    TextPart(text="thanks"),
                ],
            ),
        ],
        tools=[Tool(name="get_weather", description="Weather", parameters=WEATHER)],
        tool_choice=ToolChoice(mode="tool", name="get_weather", disable_parallel=True),
        max_tokens=100,
        temperature=1.0,
        top_p=0.5,
        top_k=40,
        stop=["END"],
        seed=7,
        response_format={"type": "json_object"},
        user="u1",
        reasoning=Reasoning(effort="high"),
        stream=True,
        include_usage=True,
        extra={"frequency_penalty": 0.1},
        fallback_models=["a", "b"],
    )


def test_consecutive_tool_messages_merge_into_one_user_turn_without_following_user() -> None:
    req = chat_req.parse_request(
        body(
            messages=[
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "a", "content": "1"},
                {"role": "tool", "tool_call_id": "b", "content": "2"},
                {"role": "assistant", "content": "done"},
            ]
        )
    )
    assert [m.role for m in req.messages] == ["assistant", "user", "assistant"]
    assert req.messages[0].content == [ToolCallPart(id="a", name="f", arguments="{}")]
    assert [p.tool_call_id for p in req.messages[1].content] == ["a", "b"]  # type: ignore[union-attr]


def test_parallel_tool_calls_false_creates_auto_tool_choice() -> None:
    assert chat_req.parse_request(body(parallel_tool_calls=False)).tool_choice == ToolChoice(
        mode="auto", disable_parallel=True
    )


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("auto", ToolChoice(mode="auto")),
        ("none", ToolChoice(mode="none")),
        ("required", ToolChoice(mode="required")),
    ],
)
def test_tool_choice_strings(raw: str, expected: ToolChoice) -> None:
    assert chat_req.parse_request(body(tool_choice=raw)).tool_choice == expected


@pytest.mark.parametrize(
    "extra,expected",
    [
        ({"reasoning_effort": "low"}, Reasoning(effort="low")),
        ({"reasoning_effort": "none"}, Reasoning(effort="none", enabled=False)),
        ({"reasoning": {"max_tokens": 2000}}, Reasoning(budget_tokens=2000)),
        ({"reasoning": {"enabled": False}}, Reasoning(enabled=False)),
    ],
)
def test_reasoning_forms(extra: dict[str, Any], expected: Reasoning) -> None:
    assert chat_req.parse_request(body(**extra)).reasoning == expected


def test_max_tokens_and_stop_list() -> None:
    req = chat_req.parse_request(body(max_tokens=5, stop=["a", "b"]))
    assert (req.max_tokens, req.stop, req.stream, req.include_usage) == (5, ["a", "b"], False, False)


def test_missing_model_falls_back_to_models_list() -> None:
    assert chat_req.parse_request({"models": ["x/y"], "messages": [{"role": "user", "content": "hi"}]}).model == "x/y"


@pytest.mark.parametrize(
    "bad,field",
    [
        ({"model": None}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "messages[0].content[0].type",
        ),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"temperature": "hot"}, "temperature"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"stream": True, "stop": 3}, "stop"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"user": 1}, "user"),
    ],
)
def test_invalid_requests_name_the_field(bad: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        chat_req.parse_request(body(**bad))
    assert f"`{field}`" in e.value.message


def test_a_call_thought_signature_in_extra_content_is_gemini_signed_state() -> None:
    call = {"id": "c0", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    signed = {**call, "extra_content": {"google": {"thought_signature": "SIG"}}}
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [signed, call]}]
    req = chat_req.parse_request({"model": "m", "messages": turns})
    assert req.messages[1].content == [
        ToolCallPart(id="c0", name="f", arguments="{}", signature="SIG", origin="gemini"),
        ToolCallPart(id="c0", name="f", arguments="{}"),
    ]

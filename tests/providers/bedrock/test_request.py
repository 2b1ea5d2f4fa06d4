"""Canonical -> Converse request bodies."""

from __future__ import annotations

import pytest

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
from keeprouter.providers.bedrock.request import build_request

CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
WEATHER = Tool(name="get_weather", description="Weather for a city", parameters={"type": "object"})


def body(req: ChatRequest, model: str = CLAUDE) -> dict:  # type: ignore[type-arg]
    return build_request(req, model, default_max_tokens=1000)


def user(text: str) -> Message:
    return Message(role="user", content=[TextPart(text=text)])


def test_text_system_and_inference_config() -> None:
    b = body(
        ChatRequest(
            model="m",
            messages=[user("hi")],
            system=[TextPart(text="Be brief.")],
            max_tokens=50,
            temperature=1.7,
            stop=["END"],
        )
    )
    assert b == {
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 50, "temperature": 1.0, "stopSequences": ["END"]},
        "additionalModelResponseFieldPaths": ["/stop_sequence"],  # which one matched (Claude)
    }
    assert "model" not in b


def test_parallel_tool_calls_and_results_all_kept_with_tools() -> None:
    history = [
        user("Paris and Rome?"),
        Message(
            role="assistant",
            content=[
                TextPart(text="Checking both."),
                ToolCallPart(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
                ToolCallPart(id="functions.get_weather:2", name="get_weather", arguments='{"city":"Rome"}'),
            ],
        ),
        Message(
            role="user",
            content=[
                ToolResultPart(tool_call_id="call_1", content=[TextPart(text="18C")]),
                ToolResultPart(tool_call_id="functions.get_weather:2", content=[TextPart(text="boom")], is_error=True),
            ],
        ),
    ]
    b = body(ChatRequest(model="m", messages=history, tools=[WEATHER], tool_choice=ToolChoice(mode="auto")))
    assistant, results = b["messages"][1]["content"], b["messages"][2]["content"]
    assert assistant == [
        {"text": "Checking both."},
        {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}},
        {"toolUse": {"toolUseId": "functions_get_weather_2", "name": "get_weather", "input": {"city": "Rome"}}},
    ]
    assert results == [
        {"toolResult": {"toolUseId": "call_1", "content": [{"text": "18C"}]}},
        {"toolResult": {"toolUseId": "functions_get_weather_2", "content": [{"text": "boom"}], "status": "error"}},
    ]
    assert b["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "inputSchema": {"json": {"type": "object"}},
                }
            }
        ],
        "toolChoice": {"auto": {}},
    }


def test_tool_history_without_tools_still_gets_a_tool_config() -> None:
    history = [
        user("x"),
        Message(role="assistant", content=[ToolCallPart(id="a", name="lookup", arguments="{}")]),
        Message(role="user", content=[ToolResultPart(tool_call_id="a", content=[TextPart(text="ok")])]),
    ]
    b = body(ChatRequest(model="m", messages=history))
    assert b["toolConfig"] == {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}]}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice(mode="required"), {"any": {}}),
        (ToolChoice(mode="tool", name="get_weather"), {"tool": {"name": "get_weather"}}),
        (None, None),
    ],
)
def test_tool_choice(choice: ToolChoice | None, expected: dict | None) -> None:  # type: ignore[type-arg]
    b = body(ChatRequest(model="m", messages=[user("x")], tools=[WEATHER], tool_choice=choice))
    assert b["toolConfig"].get("toolChoice") == expected


def test_empty_tool_result_is_not_blank() -> None:
    history = [
        user("x"),
        Message(role="assistant", content=[ToolCallPart(id="a", name="lookup", arguments="{}")]),
        Message(role="user", content=[ToolResultPart(tool_call_id="a", content=[TextPart(text="")])]),
    ]
    b = body(ChatRequest(model="m", messages=history, tools=[WEATHER]))
    assert b["messages"][2]["content"] == [{"toolResult": {"toolUseId": "a", "content": [{"text": "(no output)"}]}}]


def test_tool_choice_none_leaves_tools_out() -> None:
    b = body(ChatRequest(model="m", messages=[user("x")], tools=[WEATHER], tool_choice=ToolChoice(mode="none")))
    assert "toolConfig" not in b


def test_images_inline_only() -> None:
    img = ImagePart(media_type="image/jpeg", data="aGVs\nbG8=")
    b = body(ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text="what?"), img])]))
    assert b["messages"][0]["content"][1] == {"image": {"format": "jpeg", "source": {"bytes": "aGVsbG8="}}}
    with pytest.raises(InvalidRequest, match="inline"):
        body(ChatRequest(model="m", messages=[Message(role="user", content=[ImagePart(url="https://x/y.png")])]))
    with pytest.raises(InvalidRequest, match="png, jpeg"):
        body(
            ChatRequest(
                model="m",
                messages=[Message(role="user", content=[ImagePart(media_type="image/tiff", data="aGVsbG8=")])],
            )
        )


def test_reasoning_becomes_claude_thinking() -> None:
    req = ChatRequest(
        model="m", messages=[user("x")], max_tokens=4000, temperature=0.5, top_k=5, reasoning=Reasoning(effort="low")
    )
    b = body(req)
    assert b["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert b["inferenceConfig"] == {"maxTokens": 4000}  # temperature dropped
    assert "additionalModelRequestFields" not in body(req, NOVA)  # not a Claude model


def test_a_thinking_budget_fits_inside_the_callers_max_tokens() -> None:
    """The caller's cap on billed output is never raised: the budget shrinks to fit under it, and
    thinking stays off when even the smallest budget cannot fit beside an answer."""
    roomy = ChatRequest(model="m", messages=[user("x")], max_tokens=3000, reasoning=Reasoning(effort="high"))
    b = body(roomy)
    assert b["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 1500}}
    assert b["inferenceConfig"] == {"maxTokens": 3000}
    tight = ChatRequest(model="m", messages=[user("x")], max_tokens=1000, reasoning=Reasoning(effort="low"))
    b = body(tight)
    assert "thinking" not in b.get("additionalModelRequestFields", {})
    assert b["inferenceConfig"] == {"maxTokens": 1000}


def test_max_tokens_left_to_the_model_without_one() -> None:
    assert "inferenceConfig" not in build_request(
        ChatRequest(model="m", messages=[user("x")]), NOVA, default_max_tokens=None
    )


def test_top_k_for_claude_only() -> None:
    req = ChatRequest(model="m", messages=[user("x")], top_k=7, top_p=0.9)
    assert body(req)["additionalModelRequestFields"] == {"top_k": 7}
    assert body(req)["inferenceConfig"]["topP"] == 0.9
    assert "additionalModelRequestFields" not in body(req, NOVA)


def test_thinking_not_sent_with_a_forced_tool() -> None:
    req = ChatRequest(
        model="m",
        messages=[user("x")],
        tools=[WEATHER],
        tool_choice=ToolChoice(mode="required"),
        reasoning=Reasoning(effort="high"),
    )
    assert "additionalModelRequestFields" not in body(req)


def test_signed_reasoning_replayed_by_origin() -> None:
    history = [
        user("x"),
        Message(
            role="assistant",
            content=[
                ThinkingPart(text="hmm", signature="sig-b", origin="bedrock"),
                ThinkingPart(text="", signature="sig-a", origin="anthropic"),
                ThinkingPart(redacted="cmVk", origin="bedrock"),
                ThinkingPart(text="other", signature="sig-o", origin="gemini"),
                ThinkingPart(text="unsigned", origin="bedrock"),
                TextPart(text="answer"),
            ],
        ),
        user("y"),
    ]
    content = body(ChatRequest(model="m", messages=history))["messages"][1]["content"]
    assert content == [
        {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig-b"}}},
        {"reasoningContent": {"reasoningText": {"text": "", "signature": "sig-a"}}},
        {"reasoningContent": {"redactedContent": "cmVk"}},
        {"text": "answer"},
    ]


def test_cache_points_and_merged_turns() -> None:
    history = [
        Message(role="user", content=[TextPart(text="a", cache_control={"type": "ephemeral"})]),
        Message(role="system", content=[TextPart(text="be nice")]),
        Message(role="user", content=[TextPart(text="")]),  # empty: skipped
    ]
    b = body(
        ChatRequest(
            model="m",
            messages=history,
            system=[TextPart(text="s", cache_control={"type": "ephemeral"})],
            tools=[Tool(name="t", cache_control={"type": "ephemeral"})],
        )
    )
    assert b["messages"] == [
        {"role": "user", "content": [{"text": "a"}, {"cachePoint": {"type": "default"}}, {"text": "be nice"}]}
    ]
    assert b["system"] == [{"text": "s"}, {"cachePoint": {"type": "default"}}]
    assert b["toolConfig"]["tools"][1] == {"cachePoint": {"type": "default"}}
    llama = build_request(
        ChatRequest(model="m", messages=history, system=[TextPart(text="s", cache_control={})]),
        "meta.llama3-70b-instruct-v1:0",
        default_max_tokens=10,
    )
    assert llama["messages"][0]["content"] == [{"text": "a"}, {"text": "be nice"}]
    assert llama["system"] == [{"text": "s"}]


def test_structured_output_is_a_forced_tool() -> None:
    rf = {"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object"}}}
    b = body(ChatRequest(model="m", messages=[user("x")], response_format=rf))
    assert b["toolConfig"]["toolChoice"] == {"tool": {"name": "city"}}
    assert b["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {"json": {"type": "object"}}

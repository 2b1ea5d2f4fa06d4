"""Canonical request -> Gemini generateContent body, field by field."""

from __future__ import annotations

from typing import Any

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
from keeprouter.providers.gemini.request import SKIP_SIGNATURE, build_request, count_body, model_path


def req(*messages: Message, **kw: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=list(messages), **kw)


def user(*parts: Any) -> Message:
    return Message(role="user", content=[TextPart(text=p) if isinstance(p, str) else p for p in parts])


def model(*parts: Any) -> Message:
    return Message(role="assistant", content=[TextPart(text=p) if isinstance(p, str) else p for p in parts])


def call(id: str, name: str = "get_weather", args: str = '{"city":"Paris"}', sig: str | None = None,
         origin: str | None = "gemini") -> ToolCallPart:  # fmt: skip
    return ToolCallPart(id=id, name=name, arguments=args, signature=sig, origin=origin if sig else None)


def result(id: str, text: str = "sunny", error: bool = False) -> ToolResultPart:
    return ToolResultPart(tool_call_id=id, content=[TextPart(text=text)], is_error=error)


def test_text_roles_and_system() -> None:
    body = build_request(req(user("Hi"), model("Hello"), user("Bye"), system=[TextPart(text="Be brief.")]), "g")
    assert body == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello"}]},
            {"role": "user", "parts": [{"text": "Bye"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
    }


def test_turns_of_one_role_merge_and_mid_conversation_system_is_user_text() -> None:
    body = build_request(req(user("a"), Message(role="system", content=[TextPart(text="rule")]), user("b")), "g")
    assert body["contents"] == [{"role": "user", "parts": [{"text": "a"}, {"text": "rule"}, {"text": "b"}]}]


def test_images_inline_data_url_and_file_uri() -> None:
    body = build_request(
        req(user(
            ImagePart(media_type="image/png", data="iVBORw0KGgo="),
            ImagePart(url="data:image/webp;base64,UklGRg=="),
            ImagePart(url="https://example.com/cat.gif"),
        )),
        "g",
    )  # fmt: skip
    assert body["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
        {"fileData": {"mimeType": "image/gif", "fileUri": "https://example.com/cat.gif"}},
    ]


def test_tool_loop_function_call_and_response_by_name_with_signature() -> None:
    body = build_request(
        req(user("Weather?"), model(call("c1", sig="SIG1")), user(result("c1")), model("Sunny."), user("Thanks")),
        "g",
    )
    assert body["contents"][1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "SIG1"}],
    }
    assert body["contents"][2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}],
    }


def test_error_results_use_the_error_key_and_images_follow_the_response() -> None:
    content: list[TextPart | ImagePart] = [TextPart(text="boom"), ImagePart(media_type="image/png", data="AA==")]
    res = ToolResultPart(tool_call_id="c1", content=content, is_error=True)
    body = build_request(req(user("q"), model(call("c1", sig="S")), user(res)), "g")
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"error": "boom"}}},
        {"inlineData": {"mimeType": "image/png", "data": "AA=="}},
    ]


def test_a_result_for_an_unknown_call_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="answers no tool call"):
        build_request(req(user("q"), user(result("nope"))), "g")


def test_parallel_calls_keep_the_signature_on_the_first_only() -> None:
    body = build_request(
        req(
            user("q"),
            model(call("a", sig="S1"), call("b", name="get_time", args="{}")),
            user(result("a"), result("b")),
        ),
        "g",
    )
    assert body["contents"][1]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "S1"},
        {"functionCall": {"name": "get_time", "args": {}}},
    ]
    assert [p["functionResponse"]["name"] for p in body["contents"][2]["parts"]] == ["get_weather", "get_time"]


def test_sequential_steps_each_keep_their_signature() -> None:
    body = build_request(
        req(user("q"), model(call("a", sig="S1")), user(result("a")), model(call("b", sig="S2")), user(result("b"))),
        "g",
    )
    assert body["contents"][1]["parts"][0]["thoughtSignature"] == "S1"
    assert body["contents"][3]["parts"][0]["thoughtSignature"] == "S2"


def test_signed_thinking_before_an_unsigned_call_gives_the_call_its_signature() -> None:
    """How the Anthropic and Responses clients carry a call's signature: a signed block right before it."""
    signed = ThinkingPart(signature="S1", origin="gemini")
    body = build_request(req(user("q"), model(signed, call("a")), user(result("a"))), "g")
    assert body["contents"][1]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "S1"}
    ]


def test_thought_parts_text_signatures_and_signature_only_parts() -> None:
    body = build_request(
        req(user("q"), model(
            ThinkingPart(text="hmm", signature="T1", origin="gemini"),
            TextPart(text="Answer"),
            ThinkingPart(signature="T2", origin="gemini"),
        ), user("next"), model(ThinkingPart(signature="T3", origin="gemini")), user("more")),
        "g",
    )  # fmt: skip
    assert body["contents"][1]["parts"] == [
        {"text": "hmm", "thought": True, "thoughtSignature": "T1"},
        {"text": "Answer", "thoughtSignature": "T2"},  # the signature that closed this text goes back on it
    ]
    assert body["contents"][3]["parts"] == [{"text": "", "thoughtSignature": "T3"}]


def test_foreign_and_unsigned_state_is_never_sent() -> None:
    body = build_request(
        req(user("q"), model(
            ThinkingPart(text="claude thinks", signature="ANTHROPIC", origin="anthropic"),
            ThinkingPart(text="summary only", origin="gemini"),
            ToolCallPart(id="a", name="f", arguments="{}", signature="X", origin="bedrock"),
        ), user(result("a")), model("done"), user("thanks")),
        "g",
    )  # fmt: skip
    assert body["contents"][1]["parts"] == [{"functionCall": {"name": "f", "args": {}}}]


def test_current_turn_steps_without_signature_get_the_documented_placeholder() -> None:
    body = build_request(
        req(
            user("old"), model(call("o")), user(result("o")), model("ok"),  # an earlier turn: left alone
            user("new"), model(call("a")), user(result("a")), model(call("b", sig="S2")), user(result("b")),
        ),
        "gemini-3-pro-preview",
    )  # fmt: skip
    c = body["contents"]
    assert "thoughtSignature" not in c[1]["parts"][0]
    assert c[5]["parts"][0]["thoughtSignature"] == SKIP_SIGNATURE
    assert c[7]["parts"][0]["thoughtSignature"] == "S2"
    lenient = build_request(req(user("q"), model(call("a")), user(result("a"))), "gemini-2.5-flash")
    assert "thoughtSignature" not in lenient["contents"][1]["parts"][0]  # 2.5 does not validate: nothing added


def test_tools_declarations_json_schema_and_tool_config() -> None:
    params = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
              "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}  # fmt: skip
    tools = [Tool(name="get_weather", description="Weather", parameters=params), Tool(name="now", parameters={})]
    body = build_request(req(user("q"), tools=tools, tool_choice=ToolChoice(mode="tool", name="get_weather")), "g")
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather", "parametersJsonSchema": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
            "additionalProperties": False}},
        {"name": "now"},
    ]}]  # fmt: skip
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    for mode, wire in (("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")):
        b = build_request(req(user("q"), tools=tools, tool_choice=ToolChoice(mode=mode)), "g")  # type: ignore[arg-type]
        assert b["toolConfig"] == {"functionCallingConfig": {"mode": wire}}


def test_generation_config_sampling_stop_seed_and_structured_output() -> None:
    rf = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object", "$schema": "x"}}}
    body = build_request(
        req(user("q"), max_tokens=100, temperature=0.2, top_p=0.9, top_k=40, stop=["END"], seed=7, response_format=rf),
        "gemini-2.5-flash",
    )
    assert body["generationConfig"] == {
        "maxOutputTokens": 100, "temperature": 0.2, "topP": 0.9, "topK": 40, "stopSequences": ["END"], "seed": 7,
        "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"},
    }  # fmt: skip
    json_mode = build_request(req(user("q"), response_format={"type": "json_object"}), "g")
    assert json_mode["generationConfig"] == {"responseMimeType": "application/json"}


@pytest.mark.parametrize(
    ("model_id", "reasoning", "max_tokens", "expected"),
    [
        ("gemini-3-pro-preview", Reasoning(effort="low"), None, {"thinkingLevel": "low", "includeThoughts": True}),
        ("gemini-3-flash-preview", Reasoning(effort="xhigh"), None, {"thinkingLevel": "high", "includeThoughts": True}),
        ("gemini-3-flash-preview", Reasoning(budget_tokens=4000), None,
         {"thinkingLevel": "medium", "includeThoughts": True}),
        # Gemini 3 cannot stop thinking: "off" is the least level every Gemini 3 model takes, not
        # the default (high), which spends the most on thoughts the caller declined.
        ("gemini-3-flash-preview", Reasoning(enabled=False), None, {"thinkingLevel": "low"}),
        ("gemini-3-pro-preview", Reasoning(effort="none"), None, {"thinkingLevel": "low"}),
        ("gemini-3-flash-preview", Reasoning(effort="medium"), None,
         {"thinkingLevel": "medium", "includeThoughts": True}),
        ("gemini-3-flash-preview", Reasoning(effort="minimal"), None,
         {"thinkingLevel": "minimal", "includeThoughts": True}),
        # Gemini 3 Pro takes low and high only: medium rounds up to its default, minimal to low.
        ("gemini-3-pro-preview", Reasoning(effort="medium"), None, {"thinkingLevel": "high", "includeThoughts": True}),
        ("gemini-3-pro-preview", Reasoning(effort="minimal"), None, {"thinkingLevel": "low", "includeThoughts": True}),
        ("gemini-3-pro-preview", Reasoning(budget_tokens=4000), None,
         {"thinkingLevel": "high", "includeThoughts": True}),
        ("gemini-2.5-flash", Reasoning(effort="medium"), None, {"thinkingBudget": 8192, "includeThoughts": True}),
        ("gemini-2.5-flash", Reasoning(budget_tokens=3000), 2000, {"thinkingBudget": 1000, "includeThoughts": True}),
        ("gemini-2.5-flash", Reasoning(effort="none"), None, {"thinkingBudget": 0}),
        # Each 2.5 model's documented range: Pro 128-32768 and never off, Flash to 24576, Lite 512-24576.
        ("gemini-2.5-pro", Reasoning(effort="none"), None, {"thinkingBudget": 128}),
        ("gemini-2.5-pro", Reasoning(budget_tokens=64), None, {"thinkingBudget": 128, "includeThoughts": True}),
        ("gemini-2.5-pro", Reasoning(budget_tokens=50000), None, {"thinkingBudget": 32768, "includeThoughts": True}),
        ("gemini-2.5-flash", Reasoning(effort="xhigh"), None, {"thinkingBudget": 24576, "includeThoughts": True}),
        ("gemini-2.5-flash-lite", Reasoning(effort="minimal"), None, {"thinkingBudget": 512, "includeThoughts": True}),
        ("gemini-2.5-flash-lite", Reasoning(budget_tokens=100), None, {"thinkingBudget": 512, "includeThoughts": True}),
        ("gemini-2.5-flash-lite", Reasoning(enabled=False), None, {"thinkingBudget": 0}),
    ],
)  # fmt: skip
def test_thinking_config_per_model_generation(
    model_id: str, reasoning: Reasoning, max_tokens: int | None, expected: dict[str, Any] | None
) -> None:
    body = build_request(req(user("q"), reasoning=reasoning, max_tokens=max_tokens), model_id)
    assert body.get("generationConfig", {}).get("thinkingConfig") == expected


def test_count_body_and_model_path() -> None:
    body = count_body(req(user("q"), max_tokens=5, system=[TextPart(text="s")]), "gemini-2.5-flash")
    assert body == {"generateContentRequest": {
        "model": "models/gemini-2.5-flash",
        "contents": [{"role": "user", "parts": [{"text": "q"}]}],
        "systemInstruction": {"parts": [{"text": "s"}]},
    }}  # fmt: skip
    assert model_path("models/x") == "models/x"
    assert model_path("tunedModels/t") == "tunedModels/t"


def test_arguments_that_are_not_json_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="not JSON"):
        build_request(req(user("q"), model(ToolCallPart(id="a", name="f", arguments="{oops"))), "g")

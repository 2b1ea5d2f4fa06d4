"""Responses client bodies -> canonical (pure), and what upstream bodies they make."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from openai.types.responses import Response

from keeprouter.clients.openai_chat import response as chat_resp
from keeprouter.clients.openai_responses.request import parse_request
from keeprouter.clients.openai_responses.response import (
    build_response,
    echo_of,
)
from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import (
    ChatResponse,
    ImagePart,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from keeprouter.providers.anthropic import request as anthropic_req
from keeprouter.providers.openai import request as openai_req

PNG = "iVBORw0KGgo="
WX = {"type": "function", "name": "wx", "description": "Weather", "parameters": {"type": "object"}}


def parse(**body: Any) -> Any:
    return parse_request({"model": "m", **body})


def refused(body: dict[str, Any], param: str, says: str = "") -> InvalidRequest:
    with pytest.raises(InvalidRequest) as e:
        parse_request({"model": "m", "input": "hi", **body})
    assert e.value.param == param and e.value.status == 400, e.value.message
    assert says in e.value.message
    return e.value


def test_string_input_and_instructions() -> None:
    req = parse(input="Hello", instructions="Be brief.", stream=True, user="u")
    assert req.source == "responses" and req.stream and req.user == "u"
    assert [p.text for p in req.system] == ["Be brief."]
    assert len(req.messages) == 1 and req.messages[0].role == "user"
    assert req.messages[0].content == [TextPart(text="Hello")]
    assert parse(input="x", instructions="").system == []


def test_models_list_stands_in_for_a_missing_model() -> None:
    assert parse_request({"models": ["a", "b"], "input": "x"}).model == "a"
    refused({"model": None}, "model")


def test_message_items_keep_roles_order_and_parts() -> None:
    req = parse(
        input=[
            {"role": "developer", "content": "dev rules"},
            {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "sys"}]},
            {"role": "user", "content": [{"type": "input_text", "text": "look"},
                                         {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
                                         {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "a", "annotations": []},
                                              {"type": "refusal", "refusal": "no"}]},
            {"role": "developer", "content": "later rule"},
            {"role": "user", "content": "next"},
        ]
    )  # fmt: skip
    assert [p.text for p in req.system] == ["dev rules", "sys"]
    assert [m.role for m in req.messages] == ["user", "assistant", "system", "user"]
    user = req.messages[0].content
    assert user[1] == ImagePart(media_type="image/png", data=PNG)
    assert user[2] == ImagePart(url="https://x/y.png", detail="low")
    assert req.messages[1].content == [TextPart(text="a")]


def test_function_calls_join_the_assistant_turn_and_outputs_one_user_turn() -> None:
    req = parse(
        input=[
            {"role": "user", "content": "weather?"},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}],
             "encrypted_content": "opaque"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "c1", "name": "wx", "arguments": '{"city":"Paris"}', "id": "fc_1"},
            {"type": "function_call", "call_id": "c2", "name": "wx", "arguments": '{"city":"Rome"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "c2",
             "output": [{"type": "input_text", "text": "rain"}]},
            {"role": "user", "content": "thanks"},
        ]
    )  # fmt: skip
    assert [m.role for m in req.messages] == ["user", "assistant", "user", "user"]
    assert req.messages[1].content == [
        ThinkingPart(text="think"),
        TextPart(text="Checking."),
        ToolCallPart(id="c1", name="wx", arguments='{"city":"Paris"}'),
        ToolCallPart(id="c2", name="wx", arguments='{"city":"Rome"}'),
    ]
    assert req.messages[2].content == [
        ToolResultPart(tool_call_id="c1", content=[TextPart(text="sunny")]),
        ToolResultPart(tool_call_id="c2", content=[TextPart(text="rain")]),
    ]
    # the OpenAI upstream gets tool messages; the Anthropic one tool_result blocks in one user turn
    oa = openai_req.build_request(req, "up")
    assert [m["role"] for m in oa["messages"]] == ["user", "assistant", "tool", "tool", "user"]
    assert oa["messages"][1]["tool_calls"][1]["id"] == "c2"
    an = anthropic_req.build_request(req, "up", default_max_tokens=100)
    assert [b["type"] for b in an["messages"][2]["content"]] == ["tool_result", "tool_result", "text"]
    assert all(b["type"] != "thinking" for b in an["messages"][1]["content"]), "unsigned thinking is not replayed"


def test_reasoning_items_without_text_and_empty_outputs() -> None:
    req = parse(input=[{"role": "user", "content": "x"}, {"type": "reasoning", "summary": []},
                       {"type": "function_call", "call_id": "c", "name": "f"},
                       {"type": "function_call_output", "call_id": "c", "output": None}])  # fmt: skip
    assert req.messages[1].content == [ToolCallPart(id="c", name="f", arguments="")]
    assert req.messages[2].content == [ToolResultPart(tool_call_id="c", content=[])]


@pytest.mark.parametrize(
    ("input", "param", "says"),
    [
        (None, "input", "required"),
        ([], "input", "required"),
        (["text"], "input[0]", "object"),
        ([{"type": "item_reference", "id": "msg_1"}], "input[0].type", "stored response"),  # unresolved
        ([{"type": "web_search_call"}], "input[0].type", "web_search_call"),
        ([{"role": "tool", "content": "x"}], "input[0].role", "tool"),
        ([{"role": "user", "content": 3}], "input[0].content", "string or a list"),
        (
            [{"role": "user", "content": [{"type": "input_file", "filename": "a.pdf"}]}],
            "input[0].content[0]",
            "file_data",
        ),
        ([{"role": "user", "content": [{"type": "input_text"}]}], "input[0].content[0].text", "string"),
        (
            [{"role": "assistant", "content": [{"type": "input_image", "image_url": "https://x"}]}],
            "input[0].content[0].type",
            "input_image",
        ),
        (
            [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}],
            "input[0].content[0].image_url",
            "file_id",
        ),
        ([{"role": "user", "content": [{"type": "input_image"}]}], "input[0].content[0].image_url", "no image"),
        (
            [{"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png,abc"}]}],
            "input[0].content[0].image_url",
            "base64",
        ),
        (
            [{"role": "user", "content": [{"type": "input_image", "image_url": "data:text/plain;base64,YQ=="}]}],
            "input[0].content[0].image_url",
            "image/*",
        ),
        ([{"type": "function_call", "name": "f"}], "input[0].call_id", "string"),
        ([{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}], "input[0].arguments", "JSON"),
        ([{"type": "function_call_output", "output": "x"}], "input[0].call_id", "string"),
        ([{"type": "reasoning", "summary": "x"}], "input[0].summary", "list"),
    ],
)
def test_bad_input_items_name_the_field(input: Any, param: str, says: str) -> None:
    refused({"input": input}, param, says)


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ({"previous_response_id": 1}, "previous_response_id", "string"),
        ({"store": "yes"}, "store", "boolean"),
        ({"conversation": "conv_1"}, "conversation", "previous_response_id"),
        ({"background": True}, "background", "not supported"),
        ({"instructions": ["x"]}, "instructions", "string"),
        ({"tools": {}}, "tools", "list"),
        ({"tools": [{"type": "image_generation"}]}, "tools[0].type", "built-in"),
        ({"tools": [{"type": "file_search", "vector_store_ids": []}]}, "tools[0].type", "file_search"),
        ({"tools": [{"type": "computer_use_preview"}]}, "tools[0].type", "computer_use_preview"),
        ({"tools": [{"type": "function"}]}, "tools[0].name", "required"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice", "function"),
        ({"tool_choice": "sometimes"}, "tool_choice", "auto"),
        ({"parallel_tool_calls": "no"}, "parallel_tool_calls", "boolean"),
        ({"max_output_tokens": 0}, "max_output_tokens", "positive"),
        ({"max_output_tokens": True}, "max_output_tokens", "positive"),
        ({"temperature": "hot"}, "temperature", "number"),
        ({"text": "json"}, "text", "object"),
        ({"text": {"format": {"type": "xml"}}}, "text.format.type", "json_schema"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema", "JSON schema"),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name", "string"),
        ({"reasoning": "high"}, "reasoning", "object"),
        ({"reasoning": {"effort": 3}}, "reasoning.effort", "string"),
        ({"user": 1}, "user", "string"),
        ({"metadata": [1]}, "metadata", "object"),
        ({"stream": "yes"}, "stream", "boolean"),
    ],
)
def test_bad_fields_are_400_naming_the_param(body: dict[str, Any], param: str, says: str) -> None:
    err = refused(body, param, says)
    assert chat_resp.render_error(err)["error"]["param"] == param


def test_tools_tool_choice_and_parallel_calls() -> None:
    req = parse(input="x", tools=[WX, {"type": "function", "name": "bare"}],
                tool_choice={"type": "function", "name": "wx"}, parallel_tool_calls=False)  # fmt: skip
    assert [(t.name, t.description, t.parameters) for t in req.tools] == [
        ("wx", "Weather", {"type": "object"}),
        ("bare", None, {}),
    ]
    assert req.tool_choice is not None and (req.tool_choice.mode, req.tool_choice.name) == ("tool", "wx")
    assert req.tool_choice.disable_parallel
    for mode in ("auto", "none", "required"):
        tc = parse(input="x", tool_choice=mode).tool_choice
        assert tc is not None and tc.mode == mode
    tc = parse(input="x", parallel_tool_calls=False).tool_choice
    assert tc is not None and tc.mode == "auto" and tc.disable_parallel
    oa = openai_req.build_request(req, "up")
    assert oa["parallel_tool_calls"] is False and oa["tool_choice"] == {"type": "function", "function": {"name": "wx"}}
    an = anthropic_req.build_request(req, "up", default_max_tokens=10)
    assert an["tool_choice"] == {"type": "tool", "name": "wx", "disable_parallel_tool_use": True}


def test_custom_tools_stand_in_as_functions_taking_one_string() -> None:
    grammar = {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}
    req = parse(input=[{"role": "user", "content": "patch it"},
                       {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin"},
                       {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"}],
                tools=[{"type": "custom", "name": "apply_patch", "description": "Edit files.", "format": grammar},
                       {"type": "custom", "name": "free"}],
                tool_choice={"type": "custom", "name": "apply_patch"})  # fmt: skip
    patch, free = req.tools
    assert patch.parameters == free.parameters == {
        "type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}  # fmt: skip
    assert patch.description is not None and patch.description.startswith("Edit files.")
    assert "lark grammar:\nstart: /.+/" in patch.description
    assert free.description == "Send the tool's whole input as the string `input`."
    assert req.tool_choice is not None and req.tool_choice.name == "apply_patch"
    assert req.messages[1].content == [ToolCallPart(id="c1", name="apply_patch", arguments='{"input":"*** Begin"}')]
    assert req.messages[2].content == [ToolResultPart(tool_call_id="c1", content=[TextPart(text="done")])]
    refused({"input": [{"type": "custom_tool_call", "call_id": "c", "name": "f"}]}, "input[0].input", "string")


def test_custom_tool_calls_answer_with_their_bare_input() -> None:
    tools = [{"type": "custom", "name": "apply_patch"}, {"type": "function", "name": "wx"}]
    content: list[Part] = [ToolCallPart(id="c1", name="apply_patch", arguments='{"input":"*** Begin"}'),
               ToolCallPart(id="c2", name="apply_patch", arguments="not json"),
               ToolCallPart(id="c3", name="apply_patch", arguments='{"other":1}'),
               ToolCallPart(id="c4", name="wx", arguments="{}")]  # fmt: skip
    out = respond(ChatResponse(id="u", model="u", content=content, stop_reason="tool_use"), tools=tools)["output"]
    assert out[0] == {"id": "ctc_9-x_0", "type": "custom_tool_call", "call_id": "c1", "name": "apply_patch",
                      "input": "*** Begin"}  # fmt: skip
    assert [o.get("input") for o in out] == ["*** Begin", "not json", '{"other":1}', None]
    assert out[3]["type"] == "function_call"
    Response.model_validate({**respond(ChatResponse(id="u", model="u", content=content, stop_reason="tool_use"),
                                       tools=tools)})  # fmt: skip


def test_sampling_budget_formats_and_reasoning() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    req = parse(input="x", max_output_tokens=50, temperature=0.2, top_p=1,
                reasoning={"effort": "low", "summary": "auto"},
                text={"format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True},
                      "verbosity": "low"})  # fmt: skip
    assert (req.max_tokens, req.temperature, req.top_p) == (50, 0.2, 1.0)
    want = {"name": "out", "schema": schema, "strict": True}
    assert req.response_format == {"type": "json_schema", "json_schema": want}
    assert req.reasoning is not None and req.reasoning.effort == "low" and req.reasoning.enabled
    assert parse(input="x", text={"format": {"type": "json_object"}}).response_format == {"type": "json_object"}
    assert parse(input="x", text={"format": {"type": "text"}}).response_format is None
    assert parse(input="x", text={"verbosity": "low"}).response_format is None
    assert parse(input="x", reasoning={"summary": "auto"}).reasoning is None
    none = parse(input="x", reasoning={"effort": "none"}).reasoning
    assert none is not None and not none.enabled
    oa = openai_req.build_request(req, "up")
    assert oa["response_format"]["json_schema"]["name"] == "out" and oa["reasoning_effort"] == "low"
    assert oa["max_tokens"] == 50


def test_router_and_unknown_fields_never_reach_an_upstream() -> None:
    req = parse(input="x", store=False, metadata={"a": "b"}, include=["reasoning.encrypted_content"],
                provider={"order": ["oa"]}, models=["m2"], truncation="auto", prompt_cache_key="k")  # fmt: skip
    oa = openai_req.build_request(req, "up")
    assert set(oa) == {"model", "messages"}
    an = anthropic_req.build_request(req, "up", default_max_tokens=10)
    assert set(an) == {"model", "messages", "max_tokens"}


def test_echo_defaults_and_values() -> None:
    echo = echo_of(parse(input="x"))
    assert echo == {**echo_of(None), "store": True}  # stored unless `store: false`, as OpenAI's
    assert echo_of(parse(input="x", store=False, previous_response_id="resp_1"))["store"] is False
    assert echo_of(parse(input="x", previous_response_id="resp_1"))["previous_response_id"] == "resp_1"
    full = echo_of(parse(input="x", tools=[WX], tool_choice="none", metadata={"a": "b"}, max_output_tokens=9,
                         text={"format": {"type": "json_object"}, "verbosity": "low"}))  # fmt: skip
    assert full["tools"] == [WX] and full["tool_choice"] == "none" and full["metadata"] == {"a": "b"}
    assert full["text"] == {"format": {"type": "json_object"}, "verbosity": "low"} and full["max_output_tokens"] == 9


def respond(resp: ChatResponse, cost: Decimal | None = None, **body: Any) -> dict[str, Any]:
    return build_response(resp, id="resp_9-x", model="m", created=5, echo=echo_of(parse(input="x", **body)), cost=cost)

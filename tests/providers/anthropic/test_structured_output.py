"""Structured output to Anthropic-format upstreams as a forced tool, and back as text (pure)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from keeprouter.clients.anthropic_messages import request as messages_req
from keeprouter.formats.canonical import (
    ChatRequest,
    Finish,
    Message,
    Reasoning,
    TextDelta,
    TextPart,
    Tool,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
)
from keeprouter.providers.anthropic import request as anthropic_req
from keeprouter.providers.anthropic import response as anthropic_resp
from keeprouter.providers.anthropic.stream import AnthropicStreamDecoder

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def req(rf: dict[str, Any] | None, **kw: Any) -> ChatRequest:
    return ChatRequest(
        model="m", messages=[Message(role="user", content=[TextPart(text="hi")])], response_format=rf, **kw
    )


def body(r: ChatRequest) -> dict[str, Any]:
    return anthropic_req.build_request(r, "up", default_max_tokens=100)


@pytest.mark.parametrize(
    "rf",
    [
        {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True}},
        {"type": "json_schema", "name": "answer", "schema": SCHEMA, "strict": True},  # Responses' text.format
    ],
)
def test_json_schema_becomes_a_forced_tool_with_the_callers_schema(rf: dict[str, Any]) -> None:
    b = body(req(rf))
    assert b["tools"] == [{"name": "answer", "description": b["tools"][0]["description"], "input_schema": SCHEMA}]
    assert b["tool_choice"] == {"type": "tool", "name": "answer", "disable_parallel_tool_use": True}
    assert "response_format" not in b and "strict" not in b["tools"][0]


def test_json_object_and_odd_names() -> None:
    b = body(req({"type": "json_object"}))
    assert b["tools"][0]["name"] == "json_response"
    assert b["tools"][0]["input_schema"]["type"] == "object"
    spec = {"type": "json_schema", "json_schema": {"name": "my answer!", "description": "The result."}}
    b = body(req(spec))
    assert b["tools"][0]["name"] == "my_answer_"
    assert b["tools"][0]["input_schema"] == {"type": "object"}
    assert b["tools"][0]["description"].endswith("The result.")
    assert anthropic_req.json_tool(req({"type": "text"})) is None
    assert anthropic_req.json_tool(req(None)) is None


def test_with_the_callers_tools_a_tool_must_be_called_and_names_never_clash() -> None:
    tools = [Tool(name="answer", parameters={"type": "object"})]
    rf = {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}
    b = body(req(rf, tools=tools))
    assert [t["name"] for t in b["tools"]] == ["answer", "answer_output"]
    assert b["tool_choice"] == {"type": "any"}
    b = body(req(rf, tools=tools, tool_choice=ToolChoice(mode="tool", name="answer")))
    assert b["tool_choice"] == {"type": "tool", "name": "answer"}  # the caller's forced tool wins
    b = body(req(rf, tools=tools, tool_choice=ToolChoice(mode="none")))
    assert b["tool_choice"]["name"] == "answer_output"


def test_thinking_is_dropped_with_the_forced_tool_and_anthropic_callers_are_left_alone() -> None:
    rf = {"type": "json_object"}
    assert "thinking" not in body(req(rf, reasoning=Reasoning(effort="high")))
    b = body(msgspec.structs.replace(req(rf), source="anthropic"))
    assert "tools" not in b


def test_the_answer_call_comes_back_as_text_with_end_turn() -> None:
    upstream = {
        "id": "msg_1",
        "model": "up",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "answer", "input": {"a": 1}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }
    resp = anthropic_resp.parse_response(upstream, "answer")
    assert resp.content == [TextPart(text='{"a":1}')] and resp.stop_reason == "end_turn"
    other = {**upstream, "content": [*upstream["content"], {"type": "tool_use", "id": "t2", "name": "f", "input": {}}]}
    resp = anthropic_resp.parse_response(other, "answer")
    assert isinstance(resp.content[1], ToolCallPart) and resp.stop_reason == "tool_use"
    assert isinstance(anthropic_resp.parse_response(upstream).content[0], ToolCallPart)  # no structured output asked


def test_the_answer_call_streams_as_text() -> None:
    dec = AnthropicStreamDecoder("answer")

    def feed(t: str, **d: Any) -> list[Any]:
        return dec.feed(t, {"type": t, **d})

    start = {"type": "tool_use", "id": "toolu_1", "name": "answer", "input": {}}
    assert feed("content_block_start", index=0, content_block=start) == []
    assert feed("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": '{"a":'}) == [
        TextDelta(text='{"a":')
    ]
    assert feed("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": "1}"}) == [
        TextDelta(text="1}")
    ]
    assert feed("content_block_stop", index=0) == []
    assert feed("message_delta", delta={"stop_reason": "tool_use"}) == [Finish(stop_reason="end_turn")]


def test_an_empty_answer_and_an_answer_given_whole_at_the_start() -> None:
    dec = AnthropicStreamDecoder("answer")
    start = {"type": "tool_use", "id": "toolu_1", "name": "answer", "input": {}}
    dec.feed("content_block_start", {"type": "content_block_start", "index": 0, "content_block": start})
    assert dec.feed("content_block_stop", {"type": "content_block_stop", "index": 0}) == [TextDelta(text="{}")]
    dec = AnthropicStreamDecoder("answer")
    whole = {**start, "input": {"a": 2}}
    got = dec.feed("content_block_start", {"type": "content_block_start", "index": 0, "content_block": whole})
    assert got == [TextDelta(text='{"a":2}')]
    other = {"type": "tool_use", "id": "toolu_2", "name": "f", "input": {}}
    got = dec.feed("content_block_start", {"type": "content_block_start", "index": 1, "content_block": other})
    assert got == [ToolCallStart(index=0, id="toolu_2", name="f")]
    assert dec.feed("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}}) == [
        Finish(stop_reason="tool_use")
    ]


# ---- an Anthropic client's native structured output (output_config.format / output_format) ----------
def _messages_body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}], **fields}


@pytest.mark.parametrize(
    "fields",
    [
        {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "low"}},  # GA
        {"output_format": {"type": "json_schema", "schema": SCHEMA}},  # beta structured-outputs-2025-11-13
    ],
)
def test_native_structured_output_reaches_an_openai_upstream_as_response_format(fields: dict[str, Any]) -> None:
    from keeprouter.providers.openai import request as openai_req

    r = messages_req.parse_request(_messages_body(**fields))
    assert r.response_format == {"type": "json_schema", "json_schema": {"name": "response", "schema": SCHEMA}}
    up = openai_req.build_request(r, "up-gpt")
    assert up["response_format"] == r.response_format
    assert "output_config" not in up and "output_format" not in up and "tools" not in up


def test_native_structured_output_to_an_anthropic_upstream_is_the_clients_own_field() -> None:
    fields = {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}
    b = body(messages_req.parse_request(_messages_body(**fields)))
    assert b["output_config"] == fields["output_config"]
    assert "tools" not in b and "tool_choice" not in b  # no forced tool on top of the native form


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"output_config": {"format": {"type": "text"}}}, "output_config.format.type"),
        ({"output_format": {"type": "json_schema", "schema": "x"}}, "output_format.schema"),
        ({"output_format": "json"}, "output_format.type"),
    ],
)
def test_native_structured_output_that_is_not_a_schema_is_refused_naming_the_field(
    fields: dict[str, Any], param: str
) -> None:
    from keeprouter.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as e:
        messages_req.parse_request(_messages_body(**fields))
    assert str(e.value).startswith(f"`{param}` ")


def test_effort_alone_asks_for_no_structured_output() -> None:
    assert messages_req.parse_request(_messages_body(output_config={"effort": "low"})).response_format is None

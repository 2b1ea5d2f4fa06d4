from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from keeprouter.clients.openai_chat import request as chat_req
from keeprouter.clients.openai_chat import response as chat_resp
from keeprouter.errors import InsufficientCredit, InvalidRequest, RateLimited, UpstreamError
from keeprouter.formats.canonical import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    Reasoning,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
)
from keeprouter.providers.openai import request as openai_req
from keeprouter.providers.openai import response as openai_resp

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def body(**kw: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **kw}


# ---- parse_request -------------------------------------------------------------------------


def test_parse_request_full_conversation() -> None:
    req = chat_req.parse_request(
        {
            "model": "openai/gpt-4o",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "developer",
                    "content": [
                        {"type": "text", "text": "Use tools.", "cache_control": {"type": "ephemeral"}}
                    ],
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
    )


def test_consecutive_tool_messages_merge_into_one_user_turn_without_following_user() -> None:
    req = chat_req.parse_request(
        body(
            messages=[
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
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
    assert (
        chat_req.parse_request({"models": ["x/y"], "messages": [{"role": "user", "content": "hi"}]}).model == "x/y"
    )


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


# ---- build_request -------------------------------------------------------------------------


def test_build_request_from_anthropic_canonical() -> None:
    req = ChatRequest(
        model="claude",
        source="anthropic",
        system=[TextPart(text="A"), TextPart(text="B")],
        messages=[
            Message(
                role="user", content=[TextPart(text="hi"), ImagePart(media_type="image/jpeg", data="QQ")]
            ),
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
                    ToolResultPart(
                        tool_call_id="toolu_1", content=[TextPart(text="r1"), TextPart(text="r2")]
                    ),
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


# ---- responses -----------------------------------------------------------------------------


def test_parse_response_with_reasoning_text_and_tool_calls() -> None:
    resp = openai_resp.parse_response(
        {
            "id": "chatcmpl-1",
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {
                        "role": "assistant",
                        "content": "ok",
                        "reasoning_content": "hmm",
                        "tool_calls": [
                            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                        ],
                    },
                }
            ],
            "usage": {
                "prompt_tokens": 100,
                "completion_tokens": 20,
                "total_tokens": 120,
                "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 10},
                "completion_tokens_details": {"reasoning_tokens": 5},
            },
        }
    )
    assert resp == ChatResponse(
        id="chatcmpl-1",
        model="gpt-4o",
        content=[
            ThinkingPart(text="hmm"),
            TextPart(text="ok"),
            ToolCallPart(id="c1", name="f", arguments="{}"),
        ],
        stop_reason="tool_use",
        usage=Usage(
            input_tokens=100,
            output_tokens=20,
            cache_read_tokens=60,
            cache_write_tokens=10,
            reasoning_tokens=5,
        ),
    )


@pytest.mark.parametrize(
    "fr,stop",
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "content_filter"),
        (None, None),
    ],
)
def test_parse_response_finish_reasons(fr: str | None, stop: str | None) -> None:
    resp = openai_resp.parse_response({"choices": [{"finish_reason": fr, "message": {"content": "x"}}]})
    assert resp.stop_reason == stop


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"choices": []},
        {"choices": [{"message": None}]},
        {"choices": "x"},
        {"choices": [{"message": {"content": 5}}]},
    ],
)
def test_parse_response_malformed_raises_upstream_error(bad: dict[str, Any]) -> None:
    with pytest.raises(UpstreamError, match="malformed"):
        openai_resp.parse_response(bad)


def test_parse_usage_missing_and_deepseek_cache_field() -> None:
    assert openai_resp.parse_usage(None) == Usage()
    assert openai_resp.parse_usage(
        {"prompt_tokens": 9, "completion_tokens": 1, "prompt_cache_hit_tokens": 4}
    ) == Usage(input_tokens=9, output_tokens=1, cache_read_tokens=4)


def test_usage_dict_with_cost() -> None:
    u = Usage(
        input_tokens=100, output_tokens=20, cache_read_tokens=60, cache_write_tokens=10, reasoning_tokens=5
    )
    assert chat_resp.usage_dict(u, Decimal("0.0012")) == {
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "total_tokens": 120,
        "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 10},
        "completion_tokens_details": {"reasoning_tokens": 5},
        "cost": 0.0012,
    }
    assert "cost" not in chat_resp.usage_dict(u, None)


def test_build_response_exact_shape_and_sdk_validates() -> None:
    resp = ChatResponse(
        id="up",
        model="up",
        stop_reason="end_turn",
        usage=Usage(input_tokens=3, output_tokens=2),
        content=[ThinkingPart(text="r", signature="s"), ToolCallPart(id="c", name="f", arguments="{}")],
    )
    out = chat_resp.build_response(resp, id="gen-1", model="a/b", created=5, provider="P", cost=None)
    assert out == {
        "id": "gen-1",
        "object": "chat.completion",
        "created": 5,
        "model": "a/b",
        "provider": "P",
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "logprobs": None,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "reasoning": "r",
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 3,
            "completion_tokens": 2,
            "total_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    ChatCompletion.model_validate(out)


@pytest.mark.parametrize(
    "stop,finish",
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("content_filter", "content_filter"),
        ("error", "error"),
    ],
)
def test_build_response_finish_reasons(stop: Any, finish: str) -> None:
    resp = ChatResponse(id="x", model="x", content=[TextPart(text="hi")], stop_reason=stop)
    out = chat_resp.build_response(resp, id="g", model="m", created=1, provider=None, cost=Decimal(1))
    assert out["choices"][0]["finish_reason"] == finish
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "hi", "refusal": None}
    assert "provider" not in out and out["usage"]["cost"] == 1.0


def test_render_error_credit_error_is_code_402_with_metadata() -> None:
    err = InsufficientCredit("insufficient credits", metadata={"balance": "0"})
    assert chat_resp.render_error(err) == {
        "error": {
            "message": "insufficient credits",
            "type": "insufficient_quota",
            "code": 402,
            "param": None,
            "metadata": {"balance": "0"},
        }
    }


@pytest.mark.parametrize(
    "err,etype",
    [
        (InvalidRequest("x"), "invalid_request_error"),
        (RateLimited("x"), "rate_limit_error"),
        (UpstreamError("x"), "server_error"),
        (UpstreamError("x", status=504), "timeout_error"),
    ],
)
def test_render_error_types(err: Any, etype: str) -> None:
    out = chat_resp.render_error(err)
    assert (
        out["error"]["type"] == etype
        and out["error"]["code"] == err.status
        and "metadata" not in out["error"]
    )

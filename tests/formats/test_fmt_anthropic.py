from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import Message as AnthropicMessage

from keeprouter.clients.anthropic_messages import request as messages_req
from keeprouter.clients.anthropic_messages import response as messages_resp
from keeprouter.errors import (
    AuthenticationFailed,
    GatewayError,
    InsufficientCredit,
    InvalidRequest,
    NoEndpointAvailable,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
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
from keeprouter.providers.anthropic import request as anthropic_req
from keeprouter.providers.anthropic import response as anthropic_resp

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
EPH = {"type": "ephemeral"}


def body(**kw: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        **kw,
    }


# ---- parse_request -------------------------------------------------------------------------


def test_parse_request_full_claude_code_style_body() -> None:
    web = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    req = messages_req.parse_request(
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 32000,
            "system": [
                {"type": "text", "text": "You are Claude Code."},
                {"type": "text", "text": "Env", "cache_control": EPH},
            ],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://x/i.png"}},
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "doc"},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "plan", "signature": "SIG"},
                        {"type": "redacted_thinking", "data": "RED"},
                        {"type": "text", "text": "Checking."},
                        {
                            "type": "server_tool_use",
                            "id": "srvtoolu_1",
                            "name": "web_search",
                            "input": {"q": "x"},
                        },
                        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "get_weather",
                            "input": {"city": "Paris", "n": [1, 2]},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "is_error": True,
                            "content": [
                                {"type": "text", "text": "boom"},
                                {"type": "image", "source": {"type": "url", "url": "u"}},
                            ],
                        },
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "content": "ok",
                            "cache_control": EPH,
                        },
                    ],
                },
            ],
            "tools": [
                {
                    "name": "get_weather",
                    "description": "Weather",
                    "input_schema": SCHEMA,
                    "cache_control": EPH,
                },
                web,
            ],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "stop_sequences": ["STOP"],
            "temperature": 0.5,
            "top_p": 0.9,
            "top_k": 10,
            "metadata": {"user_id": "user_abc"},
            "thinking": {"type": "enabled", "budget_tokens": 4096},
            "stream": True,
            "context_management": {"edits": []},
            "provider": {"order": ["anthropic"]},
        }
    )
    assert req == ChatRequest(
        model="claude-sonnet-4-6",
        source="anthropic",
        max_tokens=32000,
        system=[TextPart(text="You are Claude Code."), TextPart(text="Env", cache_control=EPH)],
        messages=[
            Message(
                role="user",
                content=[
                    TextPart(text="look"),
                    ImagePart(media_type="image/png", data="AAAA"),
                    ImagePart(url="https://x/i.png"),
                    TextPart(text="doc"),
                ],
            ),
            Message(
                role="assistant",
                content=[
                    ThinkingPart(text="plan", signature="SIG", origin="anthropic"),
                    ThinkingPart(redacted="RED", origin="anthropic"),
                    TextPart(text="Checking."),
                    ToolCallPart(id="toolu_1", name="get_weather", arguments='{"city":"Paris","n":[1,2]}'),
                ],
            ),
            Message(
                role="user",
                content=[
                    ToolResultPart(
                        tool_call_id="toolu_1",
                        is_error=True,
                        content=[TextPart(text="boom"), ImagePart(url="u")],
                    ),
                    ToolResultPart(tool_call_id="toolu_2", content=[TextPart(text="ok")], cache_control=EPH),
                ],
            ),
        ],
        tools=[Tool(name="get_weather", description="Weather", parameters=SCHEMA, cache_control=EPH)],
        tool_choice=ToolChoice(mode="required", disable_parallel=True),
        stop=["STOP"],
        temperature=0.5,
        top_p=0.9,
        top_k=10,
        user="user_abc",
        reasoning=Reasoning(budget_tokens=4096),
        stream=True,
        extra={"context_management": {"edits": []}, "_server_tools": [web]},
    )


def test_parse_request_count_tokens_does_not_need_max_tokens() -> None:
    b = body()
    del b["max_tokens"]
    assert messages_req.parse_request(b, require_max_tokens=False).max_tokens is None
    with pytest.raises(InvalidRequest, match="max_tokens"):
        messages_req.parse_request(b)


@pytest.mark.parametrize(
    "thinking,extra,expected",
    [
        ({"type": "disabled"}, {}, Reasoning(enabled=False)),
        ({"type": "adaptive"}, {"output_config": {"effort": "high"}}, Reasoning(effort="high")),
    ],
)
def test_parse_request_thinking_forms(
    thinking: dict[str, Any], extra: dict[str, Any], expected: Reasoning
) -> None:
    req = messages_req.parse_request(body(thinking=thinking, **extra))
    assert req.reasoning == expected


@pytest.mark.parametrize(
    "tc,expected",
    [
        ({"type": "auto"}, ToolChoice(mode="auto")),
        ({"type": "none"}, ToolChoice(mode="none")),
        ({"type": "tool", "name": "f"}, ToolChoice(mode="tool", name="f")),
    ],
)
def test_parse_request_tool_choice(tc: dict[str, Any], expected: ToolChoice) -> None:
    assert messages_req.parse_request(body(tool_choice=tc)).tool_choice == expected


@pytest.mark.parametrize(
    "bad,field",
    [
        ({"model": 3}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "moderator", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"type": "weird"}]}]}, "messages[0].content[0].type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
            "messages[0].content[0].tool_use_id",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "base64"}}]}]},
            "messages[0].content[0].source",
        ),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"system": [{"type": "image"}]}, "system[0]"),
        ({"tool_choice": {"type": "maybe"}}, "tool_choice.type"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"stop_sequences": "x"}, "stop_sequences"),
        ({"tools": [{"input_schema": {}}]}, "tools[0].name"),
    ],
)
def test_parse_request_invalid_names_the_field(bad: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        messages_req.parse_request(body(**bad))
    assert f"`{field}`" in e.value.message


# ---- build_request -------------------------------------------------------------------------


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
            Message(
                role="user", content=[ToolResultPart(tool_call_id="call_1", content=[TextPart(text="r")])]
            ),
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


@pytest.mark.parametrize(
    "reasoning,max_tokens,thinking,final_max",
    [
        (Reasoning(effort="low"), 8000, {"type": "enabled", "budget_tokens": 2048}, 8000),
        (Reasoning(effort="high"), 1000, {"type": "enabled", "budget_tokens": 16000}, 17000),
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


# ---- responses -----------------------------------------------------------------------------


def test_parse_response_reference_message() -> None:
    resp = anthropic_resp.parse_response(
        {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [
                {"type": "thinking", "thinking": "…", "signature": "S"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 12,
                "output_tokens": 57,
                "cache_creation_input_tokens": 3,
                "cache_read_input_tokens": 4409,
                "output_tokens_details": {"thinking_tokens": 20},
            },
        }
    )
    assert resp == ChatResponse(
        id="msg_01",
        model="claude-sonnet-4-6",
        stop_reason="tool_use",
        content=[
            ThinkingPart(text="…", signature="S", origin="anthropic"),
            TextPart(text="Let me check."),
            ToolCallPart(id="toolu_01", name="get_weather", arguments='{"city":"Paris"}'),
        ],
        usage=Usage(
            input_tokens=4424,
            output_tokens=57,
            cache_read_tokens=4409,
            cache_write_tokens=3,
            reasoning_tokens=20,
        ),
    )


@pytest.mark.parametrize(
    "sr,stop",
    [
        ("end_turn", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("tool_use", "tool_use"),
        ("pause_turn", "end_turn"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "max_tokens"),
        (None, None),
    ],
)
def test_parse_response_stop_reasons(sr: str | None, stop: str | None) -> None:
    resp = anthropic_resp.parse_response(
        {"content": [], "stop_reason": sr, "stop_sequence": "X" if sr == "stop_sequence" else None}
    )
    assert resp.stop_reason == stop
    assert resp.stop_sequence == ("X" if sr == "stop_sequence" else None)


@pytest.mark.parametrize("bad", [{}, {"content": "x"}, {"content": [5]}, {"content": [{"type": "tool_use"}]}])
def test_parse_response_malformed_raises_upstream_error(bad: dict[str, Any]) -> None:
    with pytest.raises(UpstreamError, match="malformed"):
        anthropic_resp.parse_response(bad)


def test_usage_dict_excludes_cache_and_never_goes_negative() -> None:
    assert messages_resp.usage_dict(
        Usage(input_tokens=4424, output_tokens=57, cache_read_tokens=4409, cache_write_tokens=3)
    ) == {
        "input_tokens": 12,
        "output_tokens": 57,
        "cache_creation_input_tokens": 3,
        "cache_read_input_tokens": 4409,
    }
    assert messages_resp.usage_dict(Usage(input_tokens=1, cache_read_tokens=5))["input_tokens"] == 0
    assert anthropic_resp.parse_usage(None) == Usage()


def test_build_response_exact_shape_and_sdk_validates() -> None:
    resp = ChatResponse(
        id="up",
        model="up",
        stop_reason="end_turn",
        stop_sequence=None,
        usage=Usage(input_tokens=100, output_tokens=5, cache_read_tokens=60),
        content=[
            ThinkingPart(text="r"),
            ThinkingPart(redacted="R"),
            TextPart(text=""),
            TextPart(text="hi"),
            ToolCallPart(id="c", name="f", arguments='{"a":'),
        ],
    )
    out = messages_resp.build_response(resp, id="msg_1", model="claude")
    assert out == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [
            {"type": "thinking", "thinking": "r", "signature": ""},
            {"type": "redacted_thinking", "data": "R"},
            {"type": "text", "text": "hi"},
            {"type": "tool_use", "id": "c", "name": "f", "input": {}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 40,
            "output_tokens": 5,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 60,
        },
    }
    AnthropicMessage.model_validate(out)


@pytest.mark.parametrize(
    "stop,expected",
    [
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("content_filter", "refusal"),
        ("error", "end_turn"),
        (None, "end_turn"),
    ],
)
def test_build_response_stop_reasons(stop: Any, expected: str) -> None:
    out = messages_resp.build_response(ChatResponse(id="x", model="x", content=[], stop_reason=stop), id="i", model="m")
    assert out["stop_reason"] == expected


@pytest.mark.parametrize(
    "err,etype",
    [
        (InvalidRequest("m"), "invalid_request_error"),
        (AuthenticationFailed("m"), "authentication_error"),
        (InsufficientCredit("m"), "billing_error"),
        (PermissionDenied("m"), "permission_error"),
        (NotFound("m"), "not_found_error"),
        (PayloadTooLarge("m"), "request_too_large"),
        (RateLimited("m"), "rate_limit_error"),
        (NoEndpointAvailable("m"), "overloaded_error"),
        (UpstreamError("m", status=529), "overloaded_error"),
        (UpstreamTimeout("m"), "timeout_error"),
        (UpstreamError("m"), "api_error"),
        (GatewayError("m"), "api_error"),
    ],
)
def test_render_error_types(err: GatewayError, etype: str) -> None:
    assert messages_resp.render_error(err) == {
        "type": "error",
        "error": {"type": etype, "message": "m"},
        "request_id": None,
    }


def test_build_request_rewrites_tool_ids_anthropic_rejects_consistently() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message(
                role="assistant",
                content=[ToolCallPart(id="functions.get_weather:0", name="f", arguments="{}")],
            ),
            Message(
                role="user", content=[ToolResultPart(tool_call_id="functions.get_weather:0", content=[])]
            ),
        ],
    )
    msgs = anthropic_req.build_request(req, "m", default_max_tokens=5)["messages"]
    assert msgs[0]["content"][0]["id"] == msgs[1]["content"][0]["tool_use_id"] == "functions_get_weather_0"
    assert anthropic_req.tool_id("toolu_01-ok") == "toolu_01-ok"


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


def test_parse_request_keeps_text_of_search_result_blocks() -> None:
    block = {
        "type": "search_result",
        "source": "s",
        "title": "t",
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
    }
    req = messages_req.parse_request(
        body(
            messages=[
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "content": [block]}]}
            ]
        )
    )
    assert req.messages[0].content == [ToolResultPart(tool_call_id="x", content=[TextPart(text="a\n\nb")])]


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

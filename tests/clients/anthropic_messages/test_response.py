"""Canonical -> Anthropic Messages client responses: the message object, usage and error bodies."""

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
    ChatResponse,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)
from keeprouter.providers.anthropic import response as anthropic_resp

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
EPH = {"type": "ephemeral"}


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


def test_gemini_signed_state_goes_out_sealed_and_comes_back_unsealed() -> None:
    resp = ChatResponse(
        id="x",
        model="x",
        content=[
            ThinkingPart(text="plan", signature="T", origin="gemini"),
            ToolCallPart(id="c0", name="f", arguments="{}", signature="C", origin="gemini"),
        ],
        stop_reason="tool_use",
    )
    out = messages_resp.build_response(resp, id="msg_1", model="m")
    assert [b.get("signature") for b in out["content"]] == ["kr1.s.gemini.T", "kr1.s.gemini.C", None]
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": out["content"]}]
    body = {"model": "m", "max_tokens": 5, "messages": turns}
    assert messages_req.parse_request(body).messages[1].content == [
        ThinkingPart(text="plan", signature="T", origin="gemini"),
        ThinkingPart(text="", signature="C", origin="gemini"),
        ToolCallPart(id="c0", name="f", arguments="{}"),
    ]

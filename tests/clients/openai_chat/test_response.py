"""Canonical -> OpenAI Chat Completions client responses: chat.completion, usage and error bodies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from keeprouter.clients.openai_chat import response as chat_resp
from keeprouter.errors import InsufficientCredit, InvalidRequest, RateLimited, UpstreamError
from keeprouter.formats.canonical import (
    ChatResponse,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def test_usage_dict_with_cost() -> None:
    u = Usage(input_tokens=100, output_tokens=20, cache_read_tokens=60, cache_write_tokens=10, reasoning_tokens=5)
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
                    "reasoning_details": [
                        {"type": "reasoning.text", "text": "r", "signature": "s", "format": "unknown", "index": 0}
                    ],
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
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
    assert out["error"]["type"] == etype and out["error"]["code"] == err.status and "metadata" not in out["error"]

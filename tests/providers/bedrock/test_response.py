"""Converse answers and Bedrock errors -> canonical."""

from __future__ import annotations

import pytest

from keeprouter.errors import UpstreamError, UpstreamTimeout
from keeprouter.formats.canonical import TextPart, ThinkingPart, ToolCallPart, Usage
from keeprouter.providers.bedrock.response import error_for, error_message, error_type, parse_response


def answer(content: list[dict], stop: str = "end_turn", usage: dict | None = None) -> dict:  # type: ignore[type-arg]
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": usage or {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
        "metrics": {"latencyMs": 1},
    }


def test_blocks_stop_and_usage() -> None:
    r = parse_response(
        answer(
            [
                {"reasoningContent": {"reasoningText": {"text": "think", "signature": "sig"}}},
                {"reasoningContent": {"redactedContent": "cmVk"}},
                {"text": "Two calls."},
                {"toolUse": {"toolUseId": "tooluse_1", "name": "w", "input": {"city": "Paris"}}},
                {"toolUse": {"toolUseId": "tooluse_2", "name": "w", "input": {"city": "Rome"}}},
                {"cachePoint": {"type": "default"}},
            ],
            "tool_use",
            {
                "inputTokens": 10,
                "outputTokens": 5,
                "totalTokens": 45,
                "cacheReadInputTokens": 20,
                "cacheWriteInputTokens": 10,
            },
        ),
        model="m",
        id="msg_1",
    )
    assert r.content == [
        ThinkingPart(text="think", signature="sig", origin="bedrock"),
        ThinkingPart(redacted="cmVk", origin="bedrock"),
        TextPart(text="Two calls."),
        ToolCallPart(id="tooluse_1", name="w", arguments='{"city":"Paris"}'),
        ToolCallPart(id="tooluse_2", name="w", arguments='{"city":"Rome"}'),
    ]
    assert r.stop_reason == "tool_use" and r.id == "msg_1" and r.model == "m"
    assert r.usage == Usage(input_tokens=40, output_tokens=5, cache_read_tokens=20, cache_write_tokens=10)


@pytest.mark.parametrize(
    ("wire", "canonical"),
    [
        ("end_turn", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("model_context_window_exceeded", "max_tokens"),
        ("something_new", "end_turn"),
    ],
)
def test_stop_reasons(wire: str, canonical: str) -> None:
    assert parse_response(answer([{"text": "x"}], wire), model="m").stop_reason == canonical


def test_structured_output_call_becomes_text() -> None:
    r = parse_response(
        answer([{"toolUse": {"toolUseId": "t", "name": "city", "input": {"name": "Oslo"}}}], "tool_use"),
        model="m",
        json_tool="city",
    )
    assert r.content == [TextPart(text='{"name":"Oslo"}')] and r.stop_reason == "end_turn"


def test_malformed_answer() -> None:
    with pytest.raises(UpstreamError, match="malformed"):
        parse_response({"output": {}}, model="m")


def test_error_type_header() -> None:
    header = "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
    assert error_type(header) == "ValidationException"
    assert error_type(None) == ""
    assert error_message(b'{"message":"bad input"}') == "bad input"
    assert error_message(b'{"Message":"Bad"}') == "Bad"
    assert error_message(b"plain") == "plain"


@pytest.mark.parametrize(
    ("kind", "status", "error_kind"),
    [
        ("ValidationException", 400, "invalid_request"),
        ("throttlingException", 429, "rate_limit_exceeded"),
        ("ResourceNotFoundException", 502, "provider_unavailable"),  # the endpoint's model id: fall back
        ("serviceUnavailableException", 502, "provider_unavailable"),
        ("modelStreamErrorException", 502, "provider_unavailable"),
        ("internalServerException", 502, "provider_unavailable"),
        ("AccessDeniedException", 502, "provider_unavailable"),
        ("ModelTimeoutException", 504, "timeout"),
    ],
)
def test_error_mapping(kind: str, status: int, error_kind: str) -> None:
    e = error_for(kind, "msg", "bedrock-east")
    assert (e.status, e.kind) == (status, error_kind)
    assert "msg" in e.message
    if kind == "AccessDeniedException":
        assert "rejected KeepRouter's credentials" in e.message
    if kind == "ResourceNotFoundException":
        assert "does not serve this model" in e.message and e.retryable
    if kind == "ModelTimeoutException":
        assert isinstance(e, UpstreamTimeout)

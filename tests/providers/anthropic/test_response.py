"""Anthropic Messages upstream responses -> canonical: content, stop reasons, malformed bodies."""

from __future__ import annotations

from typing import Any

import pytest

from keeprouter.errors import (
    UpstreamError,
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

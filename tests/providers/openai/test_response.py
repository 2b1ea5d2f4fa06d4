"""OpenAI Chat Completions upstream responses -> canonical: content, finish reasons, usage."""

from __future__ import annotations

from typing import Any

import pytest

from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import (
    ChatResponse,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)
from keeprouter.providers.openai import response as openai_resp

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


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
                        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
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
    assert openai_resp.parse_usage({"prompt_tokens": 9, "completion_tokens": 1, "prompt_cache_hit_tokens": 4}) == Usage(
        input_tokens=9, output_tokens=1, cache_read_tokens=4
    )

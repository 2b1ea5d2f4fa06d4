"""OpenAI Chat clients' reasoning controls: OpenRouter's `reasoning` (with `exclude`) and older
`include_reasoning`, OpenAI's `reasoning_effort`; `exclude` keeps the text out of the answer."""

from __future__ import annotations

from typing import Any

import pytest

from keeprouter.clients.openai_chat.request import parse_request
from keeprouter.clients.openai_chat.response import build_response
from keeprouter.clients.openai_chat.stream import OpenAIStreamEncoder
from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import ChatResponse, Reasoning, SignatureDelta, TextPart, ThinkingDelta, ThinkingPart

MSGS = [{"role": "user", "content": "q"}]


@pytest.mark.parametrize(
    ("fields", "reasoning"),
    [
        ({"reasoning": {"effort": "high", "exclude": True}}, Reasoning(effort="high", exclude=True)),
        ({"reasoning": {"max_tokens": 2000}, "include_reasoning": False}, Reasoning(budget_tokens=2000, exclude=True)),
        ({"include_reasoning": True}, Reasoning()),
        ({"include_reasoning": False}, Reasoning(enabled=False, exclude=True)),
        ({"reasoning_effort": "low", "include_reasoning": False}, Reasoning(effort="low", exclude=True)),
        ({}, None),
    ],
)
def test_reasoning_controls(fields: dict[str, Any], reasoning: Reasoning | None) -> None:
    req = parse_request({"model": "m", "messages": MSGS, **fields})
    assert req.reasoning == reasoning
    assert "include_reasoning" not in req.extra  # OpenRouter's own: never forwarded


def test_include_reasoning_must_be_a_boolean() -> None:
    with pytest.raises(InvalidRequest, match="include_reasoning"):
        parse_request({"model": "m", "messages": MSGS, "include_reasoning": "yes"})


def test_exclude_leaves_reasoning_out_of_the_answer_and_the_stream() -> None:
    resp = ChatResponse(
        id="u",
        model="u",
        stop_reason="end_turn",
        content=[ThinkingPart(text="t", signature="S", origin="anthropic"), TextPart(text="A")],
    )
    msg = build_response(resp, id="g", model="m", created=1, provider=None, cost=None, exclude_reasoning=True)
    message = msg["choices"][0]["message"]
    assert message["content"] == "A" and "reasoning" not in message and "reasoning_details" not in message
    enc = OpenAIStreamEncoder(id="g", model="m", created=1, provider=None, include_usage=False, exclude_reasoning=True)
    frames = [
        f for ev in (ThinkingDelta(text="t"), SignatureDelta(signature="S", origin="anthropic")) for f in enc.feed(ev)
    ]
    assert not any(b"reasoning" in f for f in frames)

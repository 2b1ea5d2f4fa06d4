"""Anthropic usage's split of cache writes by TTL (`cache_creation.ephemeral_5m_input_tokens` /
`ephemeral_1h_input_tokens`) reaches the canonical Usage, whole and streamed, and the automatic
breakpoint reaches the Anthropic request body."""

from __future__ import annotations

from typing import Any

from keeprouter.formats.canonical import ChatRequest, Message, Start, TextPart, UsageUpdate
from keeprouter.providers.anthropic.request import build_request
from keeprouter.providers.anthropic.response import parse_usage
from keeprouter.providers.anthropic.stream import AnthropicStreamDecoder

SPLIT = {"ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 700}


def test_whole_answer_usage_keeps_the_1h_share() -> None:
    u = parse_usage(
        {"input_tokens": 10, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 50,
         "cache_creation": SPLIT, "output_tokens": 5}
    )  # fmt: skip
    assert (u.input_tokens, u.cache_write_tokens, u.cache_write_1h_tokens, u.cache_read_tokens) == (1060, 1000, 700, 50)
    assert parse_usage({"input_tokens": 1, "cache_creation_input_tokens": 9}).cache_write_1h_tokens == 0
    odd: dict[str, Any] = {"input_tokens": 1, "cache_creation": {"ephemeral_1h_input_tokens": "700"}}
    assert parse_usage(odd).cache_write_1h_tokens == 0


def test_streamed_usage_keeps_the_1h_share_from_message_start() -> None:
    d = AnthropicStreamDecoder()
    start = {"id": "msg_1", "model": "m", "usage": {
        "input_tokens": 10, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 0,
        "cache_creation": SPLIT, "output_tokens": 1}}  # fmt: skip
    [ev] = d.feed("message_start", {"type": "message_start", "message": start})
    assert isinstance(ev, Start) and ev.usage is not None and ev.usage.cache_write_1h_tokens == 700
    out = d.feed(
        "message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}
    )
    final = next(e for e in out if isinstance(e, UsageUpdate)).usage
    assert (final.cache_write_tokens, final.cache_write_1h_tokens, final.output_tokens) == (1000, 700, 9)


def test_the_request_body_gets_the_automatic_breakpoint() -> None:
    req = ChatRequest(
        model="m", messages=[Message(role="user", content=[TextPart(text="q")])], source="openai",
        extra={"cache_control": {"type": "ephemeral", "ttl": "1h"}},
    )  # fmt: skip
    body = build_request(req, "up", default_max_tokens=10)
    assert "cache_control" not in body
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "q", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    plain = ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text="q")])])
    assert "cache_control" not in str(build_request(plain, "up", default_max_tokens=10))
    auto = build_request(plain, "up", default_max_tokens=10, auto_breakpoint=True)
    assert auto["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}

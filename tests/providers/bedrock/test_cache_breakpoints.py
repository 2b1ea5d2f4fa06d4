"""The automatic breakpoint reaches Converse as a `cachePoint` after the last block, and never more
than 4 cache points go out."""

from __future__ import annotations

from keeprouter.formats.canonical import ChatRequest, Message, Part, TextPart
from keeprouter.providers.bedrock.request import build_request

CLAUDE = "anthropic.claude-sonnet-4-5-20250929-v1:0"
POINT = {"cachePoint": {"type": "default"}}


def test_top_level_cache_control_becomes_a_cache_point_after_the_last_block() -> None:
    req = ChatRequest(
        model="m",
        messages=[Message(role="user", content=[TextPart(text="q")])],
        extra={"cache_control": {"type": "ephemeral"}},
    )
    assert build_request(req, CLAUDE, default_max_tokens=10)["messages"][0]["content"] == [{"text": "q"}, POINT]
    plain = ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text="q")])])
    assert build_request(plain, CLAUDE, default_max_tokens=10)["messages"][0]["content"] == [{"text": "q"}]
    auto = build_request(plain, CLAUDE, default_max_tokens=10, auto_breakpoint=True)
    assert auto["messages"][0]["content"] == [{"text": "q"}, POINT]


def test_at_most_four_cache_points() -> None:
    marked: list[Part] = [TextPart(text=f"p{i}", cache_control={"type": "ephemeral"}) for i in range(6)]
    req = ChatRequest(model="m", messages=[Message(role="user", content=marked)])
    content = build_request(req, CLAUDE, default_max_tokens=10)["messages"][0]["content"]
    assert content.count(POINT) == 4

"""OpenRouter's `reasoning_details` both ways (formats.wire.openai), and thinking blocks' origin
(formats.wire.anthropic): which reasoning is signed state, and whose."""

from __future__ import annotations

from keeprouter.formats.canonical import Part, TextPart, ThinkingPart, ToolCallPart
from keeprouter.formats.wire.anthropic import parse_blocks
from keeprouter.formats.wire.openai import parse_assistant, reasoning_details


def test_answer_thinking_becomes_reasoning_details_with_format_and_index() -> None:
    parts: list[Part] = [
        ThinkingPart(text="a", signature="S", origin="anthropic"),
        ThinkingPart(redacted="R", origin="anthropic"),
        ThinkingPart(text="plain"),
        TextPart(text="x"),
    ]
    assert reasoning_details(parts) == [
        {"type": "reasoning.text", "text": "a", "signature": "S", "format": "anthropic-claude-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": "R", "format": "anthropic-claude-v1", "index": 1},
        {"type": "reasoning.text", "text": "plain", "signature": None, "format": "unknown", "index": 2},
    ]


def test_reasoning_details_sent_back_round_trip_to_the_same_parts() -> None:
    parts: list[Part] = [
        ThinkingPart(text="a", signature="S", origin="anthropic"),
        ThinkingPart(redacted="R", origin="anthropic"),
        ThinkingPart(text="plain"),
    ]
    msg = {"role": "assistant", "content": None, "reasoning": "aplain", "reasoning_details": reasoning_details(parts)}
    assert parse_assistant(msg, "m") == parts  # `reasoning` is the same text again: not doubled


def test_streamed_reasoning_details_fragments_join_by_index() -> None:
    # as a client accumulates `delta.reasoning_details`: text pieces, then the signature, one index
    details = [
        {"type": "reasoning.text", "text": "Let ", "index": 0},
        {"type": "reasoning.text", "text": "me think", "index": 0},
        {"type": "reasoning.text", "text": "", "signature": "SIG", "format": "anthropic-claude-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": "D", "format": "anthropic-claude-v1", "index": 1},
        {"type": "reasoning.summary", "summary": "sum", "format": "unknown", "index": 2},
        {"type": "reasoning.future-kind", "index": 3},
    ]
    msg = {
        "role": "assistant",
        "reasoning_details": details,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    assert parse_assistant(msg, "m") == [
        ThinkingPart(text="Let me think", signature="SIG", origin="anthropic"),
        ThinkingPart(redacted="D", origin="anthropic"),
        ThinkingPart(text="sum"),
        ToolCallPart(id="c1", name="f", arguments="{}"),
    ]


def test_deepseek_reasoning_content_is_unsigned_text() -> None:
    msg = {"role": "assistant", "reasoning_content": "why", "content": "", "tool_calls": []}
    assert parse_assistant(msg, "m") == [ThinkingPart(text="why")]


def test_anthropic_thinking_without_signature_is_plain_text_not_anthropic_state() -> None:
    blocks = [
        {"type": "thinking", "thinking": "from deepseek", "signature": ""},
        {"type": "thinking", "thinking": "from claude", "signature": "S"},
    ]
    assert parse_blocks(blocks, "content") == [
        ThinkingPart(text="from deepseek"),
        ThinkingPart(text="from claude", signature="S", origin="anthropic"),
    ]


def test_bedrocks_claude_thinking_is_claudes_format_and_comes_back_replayable() -> None:
    """Bedrock signs Claude's thinking in Claude's format: the Chat client sees `anthropic-claude-v1`
    (as for Claude anywhere), and it reads back as origin "anthropic", which the Bedrock and
    Anthropic translators replay (the router, not the format, knows which endpoint issued it)."""
    parts: list[Part] = [
        ThinkingPart(text="a", signature="S", origin="bedrock"),
        ThinkingPart(redacted="R", origin="bedrock"),
    ]
    details = reasoning_details(parts)
    assert [d["format"] for d in details] == ["anthropic-claude-v1", "anthropic-claude-v1"]
    assert parse_assistant({"role": "assistant", "reasoning_details": details}, "m") == [
        ThinkingPart(text="a", signature="S", origin="anthropic"),
        ThinkingPart(redacted="R", origin="anthropic"),
    ]

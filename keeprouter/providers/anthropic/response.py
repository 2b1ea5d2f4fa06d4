"""Anthropic Messages upstream responses -> canonical: the non-streaming message, its stop reason and usage.

Thinking blocks keep origin "anthropic" (see `formats.wire.anthropic.parse_blocks`). A call of the
structured-output tool (`request.json_tool`) becomes the answer's text, and its tool_use stop an
end_turn, so a caller that asked for JSON gets JSON text.
"""

from __future__ import annotations

from typing import Any

from keeprouter.errors import InvalidRequest, UpstreamError
from keeprouter.formats.canonical import ChatResponse, StopReason, TextPart, ToolCallPart, Usage
from keeprouter.formats.wire.anthropic import parse_blocks

STOP_FROM_ANTHROPIC: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "pause_turn": "end_turn",
    "refusal": "content_filter",
    "model_context_window_exceeded": "max_tokens",
}


def _n(d: dict[str, Any], key: str) -> int:
    v = d.get(key)
    return v if isinstance(v, int) else 0


def write_1h(u: dict[str, Any]) -> int | None:
    """The 1-hour share of the cache writes (`cache_creation.ephemeral_1h_input_tokens`), or None
    when the usage does not split them."""
    split = u.get("cache_creation")
    n = split.get("ephemeral_1h_input_tokens") if isinstance(split, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else None


def parse_usage(u: dict[str, Any] | None) -> Usage:
    """Anthropic usage -> canonical: input_tokens gains the cache reads and writes."""
    if not u:
        return Usage()
    read, write = _n(u, "cache_read_input_tokens"), _n(u, "cache_creation_input_tokens")
    otd = u.get("output_tokens_details")
    return Usage(
        input_tokens=_n(u, "input_tokens") + read + write,
        output_tokens=_n(u, "output_tokens"),
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=write_1h(u) or 0,
        reasoning_tokens=_n(otd, "thinking_tokens") if isinstance(otd, dict) else 0,
    )


def parse_response(body: dict[str, Any], json_tool: str | None = None) -> ChatResponse:
    """An upstream Messages response -> canonical (thinking keeps origin "anthropic"). A call of
    `json_tool` (the structured-output tool) becomes the answer's text."""
    content = body.get("content")
    if not isinstance(content, list):
        raise UpstreamError("upstream returned a malformed response")
    try:
        parts = parse_blocks(content, "content")
    except InvalidRequest:
        raise UpstreamError("upstream returned a malformed response") from None
    sr = body.get("stop_reason")
    seq = body.get("stop_sequence")
    usage = body.get("usage")
    stop = STOP_FROM_ANTHROPIC.get(sr, "end_turn") if isinstance(sr, str) else None
    if json_tool is not None and any(isinstance(p, ToolCallPart) and p.name == json_tool for p in parts):
        parts = [
            TextPart(text=p.arguments) if isinstance(p, ToolCallPart) and p.name == json_tool else p for p in parts
        ]
        if stop == "tool_use" and not any(isinstance(p, ToolCallPart) for p in parts):
            stop = "end_turn"
    return ChatResponse(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=parts,
        stop_reason=stop,
        stop_sequence=seq if isinstance(seq, str) else None,
        usage=parse_usage(usage if isinstance(usage, dict) else None),
    )

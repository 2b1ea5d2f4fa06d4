"""OpenAI Chat Completions upstream responses -> canonical: the first choice, its finish reason and usage."""

from __future__ import annotations

from typing import Any

from keeprouter.errors import InvalidRequest, UpstreamError
from keeprouter.formats.canonical import ChatResponse, StopReason, TextPart, ToolCallPart, Usage
from keeprouter.formats.wire.openai import parse_assistant

FINISH_TO_STOP: dict[str, StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
    "error": "error",
}

def _n(d: dict[str, Any], key: str) -> int:
    v = d.get(key)
    return v if isinstance(v, int) else 0


def parse_usage(u: dict[str, Any] | None) -> Usage:
    """OpenAI/OpenRouter usage -> canonical (prompt_tokens already includes cached tokens)."""
    if not u:
        return Usage()
    ptd = u.get("prompt_tokens_details")
    ctd = u.get("completion_tokens_details")
    cached = write = reasoning = 0
    if isinstance(ptd, dict):
        cached = _n(ptd, "cached_tokens")
        write = _n(ptd, "cache_write_tokens")
    if not cached:
        cached = _n(u, "prompt_cache_hit_tokens")  # DeepSeek
    if isinstance(ctd, dict):
        reasoning = _n(ctd, "reasoning_tokens")
    return Usage(
        input_tokens=_n(u, "prompt_tokens"),
        output_tokens=_n(u, "completion_tokens"),
        cache_read_tokens=cached,
        cache_write_tokens=write,
        reasoning_tokens=reasoning,
    )


def parse_response(body: dict[str, Any]) -> ChatResponse:
    """An upstream non-streaming response -> canonical (first choice only)."""
    try:
        choice = body["choices"][0]
        msg = choice["message"]
        parts = parse_assistant(msg, "message")
    except (KeyError, IndexError, TypeError, AttributeError, InvalidRequest):
        raise UpstreamError("upstream returned a malformed response") from None
    if not parts and isinstance(msg.get("refusal"), str):
        parts.append(TextPart(text=msg["refusal"]))
    fr = choice.get("finish_reason")
    stop: StopReason | None = FINISH_TO_STOP.get(fr, "end_turn") if fr is not None else None
    if stop in (None, "end_turn") and any(isinstance(p, ToolCallPart) for p in parts):
        stop = "tool_use"
    usage = body.get("usage")
    return ChatResponse(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=parts,
        stop_reason=stop,
        usage=parse_usage(usage if isinstance(usage, dict) else None),
    )

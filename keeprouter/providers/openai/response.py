"""OpenAI Chat Completions upstream responses -> canonical: every choice (the first as the answer,
the others as `more_choices`), finish reasons, token logprobs, system_fingerprint and usage."""

from __future__ import annotations

from typing import Any

from keeprouter.errors import InvalidRequest, UpstreamError
from keeprouter.formats.canonical import (
    ChatResponse,
    Choice,
    Part,
    StopReason,
    TextPart,
    TokenLogprob,
    ToolCallPart,
    Usage,
)
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


def _token(d: Any) -> TokenLogprob | None:
    if not isinstance(d, dict) or not isinstance(d.get("token"), str):
        return None
    lp = d.get("logprob")
    raw = d.get("bytes")
    top = d.get("top_logprobs")
    return TokenLogprob(
        token=d["token"],
        logprob=float(lp) if isinstance(lp, int | float) and not isinstance(lp, bool) else 0.0,
        bytes=[b for b in raw if isinstance(b, int)] if isinstance(raw, list) else None,
        top_logprobs=[t for x in top if (t := _token(x)) is not None] if isinstance(top, list) else None,
    )


def parse_logprobs(lp: Any) -> list[TokenLogprob] | None:
    """A choice's `logprobs` object (`{"content": [...]}`) -> its content tokens; None when absent."""
    content = lp.get("content") if isinstance(lp, dict) else None
    if not isinstance(content, list):
        return None
    return [t for x in content if (t := _token(x)) is not None]


def _choice(choice: Any) -> tuple[list[Part], StopReason | None]:
    msg = choice["message"]
    parts = parse_assistant(msg, "message")
    if not parts and isinstance(msg.get("refusal"), str):
        parts.append(TextPart(text=msg["refusal"]))
    fr = choice.get("finish_reason")
    stop: StopReason | None = FINISH_TO_STOP.get(fr, "end_turn") if fr is not None else None
    if stop in (None, "end_turn") and any(isinstance(p, ToolCallPart) for p in parts):
        stop = "tool_use"
    return parts, stop


def parse_response(body: dict[str, Any]) -> ChatResponse:
    """An upstream non-streaming response -> canonical (choices after the first in `more_choices`;
    its usage covers them all)."""
    try:
        choices = sorted(body["choices"], key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0)
        parts, stop = _choice(choices[0])
        more: list[Choice] = []
        for c in choices[1:]:
            content, reason = _choice(c)
            more.append(Choice(content=content, stop_reason=reason, logprobs=parse_logprobs(c.get("logprobs"))))
    except (KeyError, IndexError, TypeError, AttributeError, InvalidRequest):
        raise UpstreamError("upstream returned a malformed response") from None
    usage = body.get("usage")
    fp = body.get("system_fingerprint")
    return ChatResponse(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=parts,
        stop_reason=stop,
        usage=parse_usage(usage if isinstance(usage, dict) else None),
        logprobs=parse_logprobs(choices[0].get("logprobs")),
        system_fingerprint=fp if isinstance(fp, str) else None,
        more_choices=more,
    )

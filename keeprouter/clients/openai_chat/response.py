"""Canonical -> OpenAI Chat Completions client responses: the `chat.completion` body, usage and error bodies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from keeprouter.clients.base import Reply
from keeprouter.errors import ContextLengthExceeded, GatewayError
from keeprouter.formats.canonical import (
    ChatResponse,
    Part,
    StopReason,
    TextPart,
    ThinkingPart,
    TokenLogprob,
    ToolCallPart,
    Usage,
)
from keeprouter.formats.wire.openai import error_type, reasoning_details, with_signature

__all__ = ["STOP_TO_FINISH", "build_response", "logprobs_dict", "render_error", "usage_dict"]

STOP_TO_FINISH: dict[str | None, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
    None: "stop",
}


def usage_dict(u: Usage, cost: Decimal | None) -> dict[str, Any]:
    """Canonical usage -> the OpenAI/OpenRouter usage object (with `cost` in USD when known)."""
    d: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": u.cache_read_tokens,
            "cache_write_tokens": u.cache_write_tokens,
        },
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }
    if cost is not None:
        d["cost"] = float(cost)
    return d


def _token(t: TokenLogprob, top: bool) -> dict[str, Any]:
    d: dict[str, Any] = {"token": t.token, "logprob": t.logprob, "bytes": t.bytes}
    if top:
        d["top_logprobs"] = [_token(x, False) for x in t.top_logprobs or ()]
    return d


def logprobs_dict(tokens: list[TokenLogprob] | None) -> dict[str, Any] | None:
    """A choice's `logprobs` object (None when none were asked for or sent)."""
    if tokens is None:
        return None
    return {"content": [_token(t, True) for t in tokens], "refusal": None}


def _choice(
    index: int, content: list[Part], stop: StopReason | None, lp: list[TokenLogprob] | None, exclude_reasoning: bool
) -> dict[str, Any]:
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    for p in content:
        if isinstance(p, TextPart):
            texts.append(p.text)
        elif isinstance(p, ToolCallPart):
            call = {"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
            calls.append(with_signature(call, p.signature, p.origin))
        elif isinstance(p, ThinkingPart) and p.text:
            thinking.append(p.text)
    msg: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        msg["tool_calls"] = calls
    if not exclude_reasoning:
        if thinking:
            msg["reasoning"] = "".join(thinking)
        if details := reasoning_details(content):
            msg["reasoning_details"] = details
    finish = STOP_TO_FINISH.get(stop, "stop")
    if calls and finish == "stop":
        finish = "tool_calls"
    return {"index": index, "message": msg, "logprobs": logprobs_dict(lp), "finish_reason": finish}


def build_response(
    resp: ChatResponse,
    *,
    id: str,
    model: str,
    created: int,
    provider: str | None,
    cost: Decimal | None,
    exclude_reasoning: bool = False,
) -> dict[str, Any]:
    """Canonical -> the client's `chat.completion` body, with every choice the upstream made. Thinking
    goes out twice, as OpenRouter answers: `reasoning` (the text) and `reasoning_details` (signed and
    redacted state a client sends back on its next turn); `exclude_reasoning` leaves both out."""
    out: dict[str, Any] = {"id": id, "object": "chat.completion", "created": created, "model": model}
    if provider is not None:
        out["provider"] = provider
    out["system_fingerprint"] = resp.system_fingerprint
    x = exclude_reasoning
    out["choices"] = [_choice(0, resp.content, resp.stop_reason, resp.logprobs, x)] + [
        _choice(i, c.content, c.stop_reason, c.logprobs, x) for i, c in enumerate(resp.more_choices, 1)
    ]
    out["usage"] = usage_dict(resp.usage, cost)
    return out


def render_error(err: GatewayError) -> dict[str, Any]:
    """`{"error": {message, type, code: <HTTP status>, param, metadata?}}` (OpenRouter's shape); a
    prompt too long for every endpoint is OpenAI's own `context_length_exceeded` error."""
    if isinstance(err, ContextLengthExceeded):
        message = (
            f"This model's maximum context length is {err.limit} tokens. However, your messages resulted "
            f"in {err.tokens} tokens. Please reduce the length of the messages."
        )
        return {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "code": "context_length_exceeded",
                "param": "messages",
            }
        }
    e: dict[str, Any] = {
        "message": err.message,
        "type": error_type(err.status),
        "code": err.status,
        "param": err.param,
    }
    if err.metadata:
        e["metadata"] = err.metadata
    return {"error": e}


def render(resp: ChatResponse, reply: Reply) -> dict[str, Any]:
    """The `chat.completion` body for `reply` (its ClientApi row's `render_response`)."""
    return build_response(
        resp,
        id=reply.id,
        model=reply.model,
        created=reply.created,
        provider=reply.provider,
        cost=reply.cost,
        exclude_reasoning=excluded(reply),
    )


def excluded(reply: Reply) -> bool:
    """Whether the caller asked for no reasoning in its answer (`reasoning.exclude`)."""
    r = reply.request.reasoning if reply.request is not None else None
    return r is not None and r.exclude

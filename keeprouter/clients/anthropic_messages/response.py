"""Canonical -> Anthropic Messages client responses: the `message` object, usage and error bodies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from keeprouter.clients.base import Reply
from keeprouter.clients.sealed import seal
from keeprouter.errors import GatewayError
from keeprouter.formats.canonical import ChatResponse, StopReason, TextPart, ThinkingPart, ToolCallPart, Usage
from keeprouter.formats.wire.anthropic import ORIGIN, error_type, tool_input

__all__ = ["CARRIED_RAW", "build_response", "render_error", "stop_reason", "usage_dict"]

# Signed state a Messages client carries as it is: Claude's signatures, from Anthropic or from Claude
# on Bedrock (each replays the other's). Any other origin's state goes out sealed (`clients.sealed`).
CARRIED_RAW = frozenset({None, ORIGIN, "bedrock"})

STOP_TO_ANTHROPIC: dict[str | None, str] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "content_filter": "refusal",
    "error": "end_turn",
    None: "end_turn",
}


def usage_dict(u: Usage, cost: Decimal | None = None) -> dict[str, Any]:
    """Canonical usage -> Anthropic's (input_tokens excludes the cache reads and writes).

    `output_tokens_details.thinking_tokens` is added only when reasoning tokens are known; `cost`
    (what the key was charged, USD: OpenRouter adds it to every API's usage) when known.
    """
    d: dict[str, Any] = {
        "input_tokens": max(0, u.input_tokens - u.cache_read_tokens - u.cache_write_tokens),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
    }
    if u.reasoning_tokens:
        d["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    if cost is not None:
        d["cost"] = float(cost)
    return d


def stop_reason(resp_stop: StopReason | None, has_tools: bool) -> str:
    r = STOP_TO_ANTHROPIC.get(resp_stop, "end_turn")
    return "tool_use" if has_tools and r == "end_turn" else r


def build_response(resp: ChatResponse, *, id: str, model: str, cost: Decimal | None = None) -> dict[str, Any]:
    """Canonical -> the client's Messages `message` object."""
    content: list[dict[str, Any]] = []
    has_tools = False
    for p in resp.content:
        if isinstance(p, TextPart):
            if p.text:
                content.append({"type": "text", "text": p.text})
        elif isinstance(p, ToolCallPart):
            has_tools = True
            if p.signature and p.origin not in CARRIED_RAW:  # a call's own signed state (Gemini's)
                sealed = seal(ThinkingPart(signature=p.signature, origin=p.origin))
                content.append({"type": "thinking", "thinking": "", "signature": sealed})
            content.append({"type": "tool_use", "id": p.id, "name": p.name, "input": tool_input(p.arguments)})
        elif isinstance(p, ThinkingPart):
            if p.redacted is not None:
                content.append({"type": "redacted_thinking", "data": p.redacted})
            else:
                # another provider's signed state goes out sealed with its origin (`request._unsealed`)
                sig = p.signature and (p.signature if p.origin in CARRIED_RAW else seal(p))
                content.append({"type": "thinking", "thinking": p.text, "signature": sig or ""})
    return {
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(resp.stop_reason, has_tools),
        "stop_sequence": resp.stop_sequence,
        "usage": usage_dict(resp.usage, cost),
    }


def render_error(err: GatewayError) -> dict[str, Any]:
    """`{"type": "error", "error": {type, message}, "request_id": None}`."""
    return {
        "type": "error",
        "error": {"type": error_type(err.status), "message": err.message},
        "request_id": None,
    }


def render(resp: ChatResponse, reply: Reply) -> dict[str, Any]:
    """The Messages `message` object for `reply` (its ClientApi row's `render_response`)."""
    return build_response(resp, id=reply.id, model=reply.model, cost=reply.cost)

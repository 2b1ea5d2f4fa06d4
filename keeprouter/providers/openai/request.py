"""OpenAI Chat Completions <-> canonical: requests, non-streaming responses, usage and errors.

`parse_request` (client bodies -> canonical) lives in `openai_request` and is re-exported here.

Decisions (beyond wire-formats.md §3.10):
- System parts become ONE leading `system` message: a plain string (parts joined with "\\n\\n") unless
  an OpenAI-format caller put `cache_control` on a part, then a list of text parts keeping it
  (OpenRouter forwards it). Anthropic callers' `cache_control` is dropped: it is Anthropic's, and
  strict hosts (Mistral) refuse unknown fields in content parts.
- Assistant text parts are joined ("") into one string: many OpenAI-compatible servers reject
  array content on assistant messages.
- `top_k` is sent only when the client itself spoke OpenAI (OpenAI proper rejects it; Anthropic
  clients send it for Claude). `reasoning_effort` is sent for a Reasoning with an effort, or with a
  budget mapped to low/medium/high; OpenRouter's `reasoning.exclude` and `reasoning_details` (signed
  reasoning) are not modelled and are dropped.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from keeprouter.errors import ContextLengthExceeded, GatewayError, InvalidRequest, UpstreamError
from keeprouter.formats.canonical import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Reasoning,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from keeprouter.formats.openai_request import parse_assistant, parse_request

__all__ = [
    "build_request",
    "build_response",
    "parse_request",
    "parse_response",
    "parse_usage",
    "render_error",
    "usage_dict",
]

FINISH_TO_STOP: dict[str, StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
    "error": "error",
}
STOP_TO_FINISH: dict[str | None, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
    None: "stop",
}
# OpenAI error `type` per HTTP status; `code` carries the status itself (OpenRouter style).
_ERROR_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
}

# ---- canonical -> upstream ------------------------------------------------------------------


def _image_url(p: ImagePart) -> dict[str, Any]:
    url = p.url if p.url is not None else f"data:{p.media_type or 'image/png'};base64,{p.data or ''}"
    iu: dict[str, Any] = {"url": url}
    if p.detail is not None:
        iu["detail"] = p.detail
    return {"type": "image_url", "image_url": iu}


def _content(parts: list[TextPart | ImagePart], keep_cache: bool = True) -> str | list[dict[str, Any]]:
    if len(parts) == 1 and isinstance(parts[0], TextPart) and (parts[0].cache_control is None or not keep_cache):
        return parts[0].text
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, TextPart):
            d: dict[str, Any] = {"type": "text", "text": p.text}
            if p.cache_control is not None and keep_cache:
                d["cache_control"] = p.cache_control
            out.append(d)
        else:
            out.append(_image_url(p))
    return out


def _tool_content(parts: list[TextPart | ImagePart], keep_cache: bool) -> str | list[dict[str, Any]]:
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts)  # type: ignore[union-attr]
    return _content(parts, keep_cache)


def _effort(r: Reasoning) -> str | None:
    if r.effort is not None:
        return r.effort
    if not r.enabled:
        return None
    if r.budget_tokens is None:
        return "medium"
    return "low" if r.budget_tokens <= 2048 else "medium" if r.budget_tokens <= 8192 else "high"


MAX_USER_LEN = 64


def build_request(req: ChatRequest, upstream_model: str) -> dict[str, Any]:
    """Canonical -> an upstream Chat Completions body for `upstream_model`."""
    out: list[dict[str, Any]] = []
    # `cache_control` is Anthropic's: kept only when an OpenAI-format caller sent it on purpose
    # (OpenRouter-style); strict hosts (Mistral) refuse unknown fields in content parts.
    keep_cache = req.source == "openai"
    if req.system:
        if keep_cache and any(p.cache_control is not None for p in req.system):
            out.append({"role": "system", "content": _content(list(req.system))})
        else:
            out.append({"role": "system", "content": "\n\n".join(p.text for p in req.system)})
    for m in req.messages:
        if m.role == "system":
            out.append({"role": "system", "content": "".join(p.text for p in m.content if isinstance(p, TextPart))})
        elif m.role == "user":
            rest: list[TextPart | ImagePart] = []
            for p in m.content:
                if isinstance(p, ToolResultPart):
                    content = _tool_content(p.content, keep_cache)
                    out.append({"role": "tool", "tool_call_id": p.tool_call_id, "content": content})
                elif isinstance(p, TextPart | ImagePart):
                    rest.append(p)
            if rest:
                um: dict[str, Any] = {"role": "user", "content": _content(rest, keep_cache)}
                if m.name is not None:
                    um["name"] = m.name
                out.append(um)
        else:
            texts = []
            calls = []
            for p in m.content:
                if isinstance(p, TextPart):
                    texts.append(p.text)
                elif isinstance(p, ToolCallPart):
                    calls.append(
                        {
                            "id": p.id,
                            "type": "function",
                            "function": {"name": p.name, "arguments": p.arguments},
                        }
                    )
            am: dict[str, Any] = {
                "role": "assistant",
                "content": "".join(texts) if texts or not calls else None,
            }
            if calls:
                am["tool_calls"] = calls
            if m.name is not None:
                am["name"] = m.name
            out.append(am)
    body: dict[str, Any] = {**req.extra} if req.source == "openai" and req.extra else {}
    body["model"] = upstream_model
    body["messages"] = out
    if req.tools:
        tools = []
        for t in req.tools:
            fn: dict[str, Any] = {"name": t.name}
            if t.description is not None:
                fn["description"] = t.description
            if t.parameters:
                fn["parameters"] = t.parameters
            tools.append({"type": "function", "function": fn})
        body["tools"] = tools
        tc = req.tool_choice
        if tc is not None:
            body["tool_choice"] = (
                {"type": "function", "function": {"name": tc.name}} if tc.mode == "tool" else tc.mode
            )
            if tc.disable_parallel:
                body["parallel_tool_calls"] = False
    if req.max_tokens is not None:
        body["max_tokens"] = req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.top_k is not None and req.source == "openai":
        body["top_k"] = req.top_k
    if req.stop:
        body["stop"] = req.stop
    if req.seed is not None:
        body["seed"] = req.seed
    if req.response_format is not None:
        body["response_format"] = req.response_format
    if req.user is not None and len(req.user) <= MAX_USER_LEN:
        body["user"] = req.user  # longer ids (Claude Code's metadata.user_id JSON) are rejected by OpenAI
    if req.reasoning is not None and (effort := _effort(req.reasoning)) is not None:
        body["reasoning_effort"] = effort
    if req.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # billing needs the usage chunk
    return body


# ---- responses ------------------------------------------------------------------------------


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


def build_response(
    resp: ChatResponse, *, id: str, model: str, created: int, provider: str | None, cost: Decimal | None
) -> dict[str, Any]:
    """Canonical -> the client's `chat.completion` body."""
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    for p in resp.content:
        if isinstance(p, TextPart):
            texts.append(p.text)
        elif isinstance(p, ToolCallPart):
            calls.append(
                {"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
            )
        elif isinstance(p, ThinkingPart) and p.text:
            thinking.append(p.text)
    msg: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        msg["tool_calls"] = calls
    if thinking:
        msg["reasoning"] = "".join(thinking)
    finish = STOP_TO_FINISH.get(resp.stop_reason, "stop")
    if calls and finish == "stop":
        finish = "tool_calls"
    out: dict[str, Any] = {"id": id, "object": "chat.completion", "created": created, "model": model}
    if provider is not None:
        out["provider"] = provider
    out["system_fingerprint"] = None
    out["choices"] = [{"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}]
    out["usage"] = usage_dict(resp.usage, cost)
    return out


def error_type(status: int) -> str:
    return _ERROR_TYPE.get(status) or ("server_error" if status >= 500 else "invalid_request_error")


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

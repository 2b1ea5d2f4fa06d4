"""Anthropic Messages <-> canonical: requests, non-streaming responses, usage and errors.

`parse_request` (client bodies -> canonical) lives in `anthropic_request` and is re-exported here.

Decisions (beyond wire-formats.md §3.10):
- Server tools (a `tools` entry whose `type` is not "custom") and a `thinking` config canonical cannot
  express (`adaptive`) are kept in `req.extra` under the private keys `_server_tools` / `_thinking`;
  `build_request` replays them only when the client spoke Anthropic. Private (`_`) keys are never
  sent as body fields. Server-tool blocks in history (`server_tool_use`, `*_tool_result`) are dropped.
- Reasoning without a budget maps effort -> budget_tokens via `EFFORT_BUDGET`; when the budget is not
  below max_tokens, max_tokens is raised to budget + the requested max_tokens (room for the answer).
  With thinking on, `temperature`/`top_k` are dropped and `top_p` below 0.95 too (Anthropic rejects them).
- Thinking derived from a non-Anthropic client's reasoning is not sent with a forced tool choice
  (Anthropic rejects the pair). Tool ids are rewritten to Anthropic's `[a-zA-Z0-9_-]+` (`tool_id`).
- Temperature is clamped to [0, 1]. For non-Anthropic clients `top_p` is dropped when `temperature` is
  set (newer Claude models reject both). `seed` and `Message.name` have no Messages equivalent and
  are dropped.
- Structured output (`response_format` json_schema / json_object; the Responses API's flat
  `text.format` too) becomes a forced tool whose input schema is the caller's schema (`json_tool`);
  the call's input comes back as the message text and the stop as end_turn (`parse_response`,
  `AnthropicStreamDecoder`). Why this and not Anthropic's native `output_config.format` (GA) /
  `output_format` (beta `structured-outputs-2025-11-13`): the native form exists only on recent
  Claude models and not on Anthropic-format third-party hosts, which reject the unknown field; a
  forced tool works on every tool-capable model and host, and its input is schema-shaped JSON. Its
  costs: no extended thinking alongside it (Anthropic rejects thinking with a forced tool; the
  existing rule drops it), and `strict` is not sent (strict tools are also recent-model only).
- Empty text blocks (rejected by Anthropic) are skipped, and a message left
  with no blocks is skipped; consecutive same-role messages are merged, tool results first.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from keeprouter.errors import GatewayError, InvalidRequest, UpstreamError
from keeprouter.formats.anthropic_request import parse_blocks, parse_request
from keeprouter.formats.breakpoints import with_breakpoints
from keeprouter.formats.canonical import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
)

__all__ = [
    "build_request",
    "build_response",
    "parse_request",
    "parse_response",
    "parse_usage",
    "render_error",
    "usage_dict",
]

EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16000, "xhigh": 32000, "max": 32000}
MIN_BUDGET = 1024

STOP_FROM_ANTHROPIC: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "pause_turn": "end_turn",
    "refusal": "content_filter",
    "model_context_window_exceeded": "max_tokens",
}
STOP_TO_ANTHROPIC: dict[str | None, str] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "content_filter": "refusal",
    "error": "end_turn",
    None: "end_turn",
}
_ERROR_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_TOOL_ID_OK = re.compile(r"[a-zA-Z0-9_-]+")
_TOOL_ID_BAD = re.compile(r"[^a-zA-Z0-9_-]")

# ---- canonical -> upstream ------------------------------------------------------------------


def _text(p: TextPart) -> dict[str, Any]:
    if p.cache_control is None:
        return {"type": "text", "text": p.text}
    return {"type": "text", "text": p.text, "cache_control": p.cache_control}


def _image_block(p: ImagePart) -> dict[str, Any]:
    if p.url is not None:
        d: dict[str, Any] = {"type": "image", "source": {"type": "url", "url": p.url}}
    else:
        d = {
            "type": "image",
            "source": {"type": "base64", "media_type": p.media_type or "image/png", "data": p.data or ""},
        }
    if p.cache_control is not None:
        d["cache_control"] = p.cache_control
    return d


def tool_id(id: str) -> str:
    """Anthropic requires tool ids matching ^[a-zA-Z0-9_-]+$; other providers' ids (e.g.
    "functions.get_weather:0") are rewritten the same way in tool_use and tool_result."""
    return id if _TOOL_ID_OK.fullmatch(id) else _TOOL_ID_BAD.sub("_", id) or "_"


def tool_input(arguments: str) -> dict[str, Any]:
    """Tool-call arguments (JSON text) -> an input object; anything unparsable becomes {}."""
    if not arguments:
        return {}
    try:
        v = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return v if isinstance(v, dict) else {}


def _result(p: ToolResultPart) -> dict[str, Any]:
    d: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id(p.tool_call_id)}
    blocks = [
        _text(c) if isinstance(c, TextPart) else _image_block(c)
        for c in p.content
        if not isinstance(c, TextPart) or c.text
    ]
    if blocks:
        d["content"] = blocks
    if p.is_error:
        d["is_error"] = True
    if p.cache_control is not None:
        d["cache_control"] = p.cache_control
    return d


def _message_blocks(m: Message, results: list[dict[str, Any]], rest: list[dict[str, Any]]) -> None:
    for p in m.content:
        if isinstance(p, TextPart):
            if p.text:
                rest.append(_text(p))
        elif isinstance(p, ToolResultPart):
            if m.role == "user":
                results.append(_result(p))
        elif isinstance(p, ToolCallPart):
            if m.role == "assistant":
                d = {
                    "type": "tool_use",
                    "id": tool_id(p.id),
                    "name": p.name,
                    "input": tool_input(p.arguments),
                }
                if p.cache_control is not None:
                    d["cache_control"] = p.cache_control
                rest.append(d)
        elif isinstance(p, ImagePart):
            rest.append(_image_block(p))
        elif p.origin == "anthropic" and m.role == "assistant":
            if p.redacted is not None:
                rest.append({"type": "redacted_thinking", "data": p.redacted})
            elif p.signature:
                rest.append({"type": "thinking", "thinking": p.text, "signature": p.signature})


def _messages(messages: list[Message], keep_system: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    role = None
    results: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system" and not keep_system:
            # Without the mid-conversation-system beta, an instruction in place is a user text turn.
            m = Message(role="user", content=[TextPart(text=p.text) for p in m.content if isinstance(p, TextPart)])
        if m.role != role:
            if results or rest:
                out.append({"role": role, "content": results + rest})
            role, results, rest = m.role, [], []
        _message_blocks(m, results, rest)
    if results or rest:
        out.append({"role": role, "content": results + rest})
    # skipping an empty message can leave two turns of the same role side by side: merge them
    i = 1
    while i < len(out):
        if out[i]["role"] == out[i - 1]["role"]:
            prev, cur = out[i - 1]["content"], out.pop(i)["content"]
            k = sum(1 for b in cur if b["type"] == "tool_result")
            j = sum(1 for b in prev if b["type"] == "tool_result")
            out[i - 1]["content"] = prev[:j] + cur[:k] + prev[j:] + cur[k:]
        else:
            i += 1
    return out


def json_tool(req: ChatRequest) -> tuple[str, dict[str, Any]] | None:
    """The forced tool that carries `req.response_format` to a Messages upstream (its name and
    definition), or None when no structured output is asked for."""
    rf = req.response_format
    if rf is None:
        return None
    kind = rf.get("type")
    name: str = "json_response"
    if kind == "json_schema":
        nested = rf.get("json_schema")
        spec: dict[str, Any] = nested if isinstance(nested, dict) else rf  # Responses' text.format is flat
        schema = spec.get("schema") if isinstance(spec.get("schema"), dict) else {"type": "object"}
        if isinstance(spec.get("name"), str) and spec["name"]:
            name = spec["name"]
        about = spec.get("description") if isinstance(spec.get("description"), str) else None
    elif kind == "json_object":
        schema, about = {"type": "object", "additionalProperties": True}, None
    else:
        return None
    name = tool_id(name)[:64]
    while any(t.name == name for t in req.tools):
        name = name[:57] + "_output"
    text = "Give your final answer by calling this tool: its input is the answer, as JSON."
    return name, {"name": name, "description": f"{text} {about}" if about else text, "input_schema": schema}


def build_request(
    req: ChatRequest, upstream_model: str, *, default_max_tokens: int, auto_breakpoint: bool = False
) -> dict[str, Any]:
    """Canonical -> an upstream Messages body for `upstream_model`."""
    req = with_breakpoints(req, auto=auto_breakpoint)
    anthropic_client = req.source == "anthropic"
    body: dict[str, Any] = {}
    if anthropic_client and req.extra:
        body.update((k, v) for k, v in req.extra.items() if k[:1] != "_")
    max_tokens = req.max_tokens or default_max_tokens
    body["model"] = upstream_model
    body["messages"] = _messages(req.messages, keep_system=req.source == "anthropic")
    system = [p for p in req.system if p.text]
    if system:
        if len(system) == 1 and system[0].cache_control is None:
            body["system"] = system[0].text
        else:
            body["system"] = [_text(p) for p in system]
    tools: list[Any] = []
    for t in req.tools:
        d: dict[str, Any] = {"name": t.name}
        if t.description is not None:
            d["description"] = t.description
        d["input_schema"] = t.parameters or {"type": "object", "properties": {}}
        if t.cache_control is not None:
            d["cache_control"] = t.cache_control
        tools.append(d)
    if anthropic_client and "_server_tools" in req.extra:
        tools.extend(req.extra["_server_tools"])
    structured = None if anthropic_client or req.response_format is None else json_tool(req)
    if structured is not None:
        tools.append(structured[1])
    if tools:
        body["tools"] = tools
        tc = req.tool_choice
        if tc is not None:
            if tc.mode == "none":
                body["tool_choice"] = {"type": "none"}
            else:
                c: dict[str, Any] = {"type": "any" if tc.mode == "required" else tc.mode}
                if tc.mode == "tool":
                    c["name"] = tc.name
                if tc.disable_parallel:
                    c["disable_parallel_tool_use"] = True
                body["tool_choice"] = c
        if structured is not None:
            choice = body.get("tool_choice") or {"type": "auto"}
            if len(tools) == 1 or choice["type"] == "none":
                # the answer must be the tool call, made once
                body["tool_choice"] = {"type": "tool", "name": structured[0], "disable_parallel_tool_use": True}
            elif choice["type"] == "auto":
                body["tool_choice"] = {**choice, "type": "any"}  # one of the caller's tools, or the answer
    thinking_on = False
    if anthropic_client and "_thinking" in req.extra:
        body["thinking"] = req.extra["_thinking"]
        thinking_on = req.extra["_thinking"].get("type") != "disabled"
    elif (
        req.reasoning is not None
        and req.reasoning.enabled
        and req.reasoning.effort != "none"
        # Anthropic rejects thinking with a forced tool; for other clients the forced tool wins
        and (anthropic_client or "tool_choice" not in body or body["tool_choice"]["type"] in ("auto", "none"))
    ):
        r = req.reasoning
        budget = max(MIN_BUDGET, r.budget_tokens or EFFORT_BUDGET.get(r.effort or "medium", 8192))
        if budget >= max_tokens:
            max_tokens = budget + max_tokens
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        thinking_on = True
    elif anthropic_client and req.reasoning is not None:
        body["thinking"] = {"type": "disabled"}
    body["max_tokens"] = max_tokens
    if req.temperature is not None and not thinking_on:
        body["temperature"] = min(1.0, max(0.0, req.temperature))
    if (
        req.top_p is not None
        and (anthropic_client or req.temperature is None)
        and (not thinking_on or req.top_p >= 0.95)
    ):
        body["top_p"] = req.top_p
    if req.top_k is not None and not thinking_on:
        body["top_k"] = req.top_k
    if req.stop:
        body["stop_sequences"] = req.stop
    if req.user is not None:
        body["metadata"] = {"user_id": req.user}
    if req.stream:
        body["stream"] = True
    return body


# ---- responses ------------------------------------------------------------------------------


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


def usage_dict(u: Usage) -> dict[str, Any]:
    """Canonical usage -> Anthropic's (input_tokens excludes the cache reads and writes).

    `output_tokens_details.thinking_tokens` is added only when reasoning tokens are known.
    """
    d: dict[str, Any] = {
        "input_tokens": max(0, u.input_tokens - u.cache_read_tokens - u.cache_write_tokens),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
    }
    if u.reasoning_tokens:
        d["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    return d


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


def stop_reason(resp_stop: StopReason | None, has_tools: bool) -> str:
    r = STOP_TO_ANTHROPIC.get(resp_stop, "end_turn")
    return "tool_use" if has_tools and r == "end_turn" else r


def build_response(resp: ChatResponse, *, id: str, model: str) -> dict[str, Any]:
    """Canonical -> the client's Messages `message` object."""
    content: list[dict[str, Any]] = []
    has_tools = False
    for p in resp.content:
        if isinstance(p, TextPart):
            if p.text:
                content.append({"type": "text", "text": p.text})
        elif isinstance(p, ToolCallPart):
            has_tools = True
            content.append({"type": "tool_use", "id": p.id, "name": p.name, "input": tool_input(p.arguments)})
        elif isinstance(p, ThinkingPart):
            if p.redacted is not None:
                content.append({"type": "redacted_thinking", "data": p.redacted})
            else:
                content.append({"type": "thinking", "thinking": p.text, "signature": p.signature or ""})
    return {
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(resp.stop_reason, has_tools),
        "stop_sequence": resp.stop_sequence,
        "usage": usage_dict(resp.usage),
    }


def error_type(status: int) -> str:
    return _ERROR_TYPE.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def render_error(err: GatewayError) -> dict[str, Any]:
    """`{"type": "error", "error": {type, message}, "request_id": None}`."""
    return {
        "type": "error",
        "error": {"type": error_type(err.status), "message": err.message},
        "request_id": None,
    }

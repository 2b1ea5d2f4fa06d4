"""Anthropic Messages client bodies -> canonical (`parse_request`).

Validation names the offending field in an InvalidRequest. Server tools (a `tools` entry whose `type`
is not "custom") and a `thinking` config canonical cannot express (`adaptive`) are kept as they
came, in `req.server_tools` / `req.thinking_config`, for the Anthropic upstream translator to
replay. `models` / `fallbacks` name the models to fall back to. Content blocks are parsed by
`formats.wire.anthropic.parse_blocks` (an upstream's response content is the same blocks); a
thinking block whose signature we sealed (another provider's signed state, see `clients.sealed`) is
unsealed back to that provider's.
"""

from __future__ import annotations

from typing import Any, Literal

from keeprouter.clients.base import fallback_models
from keeprouter.clients.sealed import is_sealed, unseal
from keeprouter.formats.canonical import (
    ROUTER_FIELDS,
    ChatRequest,
    Message,
    Part,
    Reasoning,
    TextPart,
    ThinkingPart,
    Tool,
    ToolChoice,
)
from keeprouter.formats.wire.anthropic import bad as _bad
from keeprouter.formats.wire.anthropic import parse_blocks

_MODELLED = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "tools",
        "tool_choice",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "metadata",
        "thinking",
        "stream",
    }
)
_NOT_EXTRA = _MODELLED | ROUTER_FIELDS
_CHOICE_MODE: dict[Any, Literal["auto", "none", "required", "tool"]] = {
    "auto": "auto",
    "any": "required",
    "tool": "tool",
    "none": "none",
}


def _number(body: dict[str, Any], key: str, kind: type[int] | type[float]) -> Any:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int if kind is int else int | float):
        raise _bad(key, f"must be {'an integer' if kind is int else 'a number'}")
    return kind(v)


def _text_blocks(raw: Any, where: str) -> list[TextPart]:
    if isinstance(raw, str):
        return [TextPart(text=raw)] if raw else []
    if not isinstance(raw, list):
        raise _bad(where, "must be a string or a list of text blocks")
    out = []
    for i, b in enumerate(raw):
        if not isinstance(b, dict) or b.get("type") != "text" or not isinstance(b.get("text"), str):
            raise _bad(f"{where}[{i}]", "must be a text block")
        out.append(TextPart(text=b["text"], cache_control=b.get("cache_control")))
    return out


def _tool_choice(raw: Any) -> ToolChoice:
    mode = _CHOICE_MODE.get(raw.get("type")) if isinstance(raw, dict) else None
    if mode is None:
        raise _bad("tool_choice.type", 'must be "auto", "any", "tool" or "none"')
    name = raw.get("name")
    if mode == "tool" and not isinstance(name, str):
        raise _bad("tool_choice.name", 'is required when type is "tool"')
    return ToolChoice(
        mode=mode,
        name=name if mode == "tool" else None,
        disable_parallel=raw.get("disable_parallel_tool_use") is True,
    )


def _unsealed(parts: list[Part]) -> list[Part]:
    """Another provider's signed state we sent as a thinking block's sealed signature (see
    `response.build_response`) back as the ThinkingPart it was, with its own origin."""
    return [
        (unseal(p.text, p.signature) or p)
        if isinstance(p, ThinkingPart) and p.signature and is_sealed(p.signature)
        else p
        for p in parts
    ]


def parse_request(body: dict[str, Any], *, require_max_tokens: bool = True) -> ChatRequest:
    """A client's Messages body -> canonical (source "anthropic"); raises InvalidRequest.

    `count_tokens` passes `require_max_tokens=False`.
    """
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "is required and must be a string")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise _bad("messages", "must be a non-empty list")
    messages = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise _bad(f"messages[{i}]", "must be an object")
        role = m.get("role")
        if role != "user" and role != "assistant" and role != "system":
            raise _bad(f"messages[{i}].role", f'must be "user", "assistant" or "system", got {role!r}')
        messages.append(Message(role=role, content=_unsealed(parse_blocks(m.get("content"), f"messages[{i}].content"))))
    max_tokens = _number(body, "max_tokens", int)
    if max_tokens is None and require_max_tokens:
        raise _bad("max_tokens", "is required")
    if max_tokens is not None and max_tokens < 1:
        raise _bad("max_tokens", "must be at least 1")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad("stream", "must be a boolean")
    extra = {k: v for k, v in body.items() if k not in _NOT_EXTRA}
    req = ChatRequest(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        source="anthropic",
        extra=extra,
        temperature=_number(body, "temperature", float),
        top_p=_number(body, "top_p", float),
        top_k=_number(body, "top_k", int),
        stream=stream is True,
    )
    if (system := body.get("system")) is not None:
        req.system = _text_blocks(system, "system")
    if (tools := body.get("tools")) is not None:
        if not isinstance(tools, list):
            raise _bad("tools", "must be a list")
        server: list[dict[str, Any]] = []
        for i, t in enumerate(tools):
            if not isinstance(t, dict):
                raise _bad(f"tools[{i}]", "must be an object")
            if t.get("type", "custom") not in ("custom", None):
                server.append(t)
                continue
            name, desc, schema = t.get("name"), t.get("description"), t.get("input_schema")
            if not isinstance(name, str) or not name:
                raise _bad(f"tools[{i}].name", "is required")
            req.tools.append(
                Tool(
                    name=name,
                    description=desc if isinstance(desc, str) else None,
                    parameters=schema if isinstance(schema, dict) else {},
                    cache_control=t.get("cache_control"),
                )
            )
        if server:
            req.server_tools = server
    if (tc := body.get("tool_choice")) is not None:
        req.tool_choice = _tool_choice(tc)
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise _bad("stop_sequences", "must be a list of strings")
        req.stop = stop
    meta = body.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("user_id"), str):
        req.user = meta["user_id"]
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        kind = thinking.get("type")
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            req.reasoning = Reasoning(budget_tokens=budget if isinstance(budget, int) else None)
        elif kind == "disabled":
            req.reasoning = Reasoning(enabled=False)
        else:
            oc = body.get("output_config")
            effort = oc.get("effort") if isinstance(oc, dict) else None
            req.reasoning = Reasoning(effort=effort if isinstance(effort, str) else None)
            req.thinking_config = thinking
    req.response_format = _structured_output(body)
    # Models to fall back to, as on Chat Completions (`models`) or as LiteLLM-style clients say it.
    req.fallback_models = fallback_models(body, "models", "fallbacks")
    return req


def _structured_output(body: dict[str, Any]) -> dict[str, Any] | None:
    """Native structured output (`output_config.format`, or the beta's top-level `output_format`) as
    canonical `response_format`, so an OpenAI-format upstream is asked for the same schema (LangChain's
    `with_structured_output(method="json_schema")` sends it). An Anthropic upstream still gets the
    client's own field, kept in `extra`. `strict` is not asked for: a schema Anthropic accepts need
    not meet OpenAI's strict rules (every property required, no additional ones), and a strict refusal
    would turn a valid request into a 400."""
    oc = body.get("output_config")
    where, spec = "output_config.format", oc.get("format") if isinstance(oc, dict) else None
    if spec is None:
        where, spec = "output_format", body.get("output_format")
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("type") != "json_schema":
        raise _bad(f"{where}.type", 'must be "json_schema"')
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise _bad(f"{where}.schema", "must be an object")
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}

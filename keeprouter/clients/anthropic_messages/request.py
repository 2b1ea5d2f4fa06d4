"""Anthropic Messages client bodies -> canonical (`parse_request`, re-exported by `anthropic`).

Validation names the offending field in an InvalidRequest. Server tools (a `tools` entry whose `type`
is not "custom") and a `thinking` config canonical cannot express (`adaptive`) are kept in
`req.extra` under the private keys `_server_tools` / `_thinking` for `anthropic.build_request` to
replay. Documents with a text source, and blocks carrying text, are kept as text; server-tool blocks
in history (`server_tool_use`, `*_tool_result`) are dropped; other unknown blocks are rejected.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import (
    ROUTER_FIELDS,
    ChatRequest,
    ImagePart,
    Message,
    Part,
    Reasoning,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    inline_image_problem,
)

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
_SKIPPED_BLOCKS = frozenset({"server_tool_use", "mcp_tool_use", "container_upload"})


def _bad(field: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"`{field}` {problem}")


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


def _image(b: dict[str, Any], where: str) -> ImagePart:
    src = b.get("source")
    cc = b.get("cache_control")
    if isinstance(src, dict):
        if src.get("type") == "base64":
            if (problem := inline_image_problem(src.get("media_type"), src.get("data"))) is not None:
                raise _bad(f"{where}.source", problem)
            return ImagePart(media_type=src["media_type"], data=src["data"], cache_control=cc)
        if src.get("type") == "url" and isinstance(src.get("url"), str):
            return ImagePart(url=src["url"], cache_control=cc)
    raise _bad(f"{where}.source", "must be a base64 or url image source")


def _text_like(b: dict[str, Any], t: Any, where: str) -> TextPart | None:
    """Documents with text, and unknown blocks carrying `text`, are kept as text; others are unusable."""
    if t == "document":
        src = b.get("source")
        if isinstance(src, dict) and src.get("type") == "text" and isinstance(src.get("data"), str):
            return TextPart(text=src["data"], cache_control=b.get("cache_control"))
        raise _bad(f"{where}.source", "document blocks are supported with a text source only")
    if isinstance(b.get("text"), str):
        return TextPart(text=b["text"], cache_control=b.get("cache_control"))
    content = b.get("content")
    if isinstance(content, list) and content and all(isinstance(c, dict) and "text" in c for c in content):
        return TextPart(
            text="\n\n".join(str(c["text"]) for c in content), cache_control=b.get("cache_control")
        )
    if t in _SKIPPED_BLOCKS or (isinstance(t, str) and t.endswith("_tool_result")):
        return None
    raise _bad(f"{where}.type", f"has unsupported block type {t!r}")


def _result_content(raw: Any, where: str) -> list[TextPart | ImagePart]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [TextPart(text=raw)]
    if not isinstance(raw, list):
        raise _bad(where, "must be a string or a list of blocks")
    out: list[TextPart | ImagePart] = []
    for i, b in enumerate(raw):
        if not isinstance(b, dict):
            raise _bad(f"{where}[{i}]", "must be an object")
        t = b.get("type")
        if t == "image":
            out.append(_image(b, f"{where}[{i}]"))
        elif t == "text" and isinstance(b.get("text"), str):
            out.append(TextPart(text=b["text"], cache_control=b.get("cache_control")))
        elif (p := _text_like(b, t, f"{where}[{i}]")) is not None:
            out.append(p)
    return out


def parse_blocks(raw: Any, where: str) -> list[Part]:
    if isinstance(raw, str):
        return [TextPart(text=raw)]
    if not isinstance(raw, list):
        raise _bad(where, "must be a string or a list of content blocks")
    out: list[Part] = []
    for i, b in enumerate(raw):
        w = f"{where}[{i}]"
        if not isinstance(b, dict):
            raise _bad(w, "must be an object")
        t = b.get("type")
        cc = b.get("cache_control")
        if t == "text":
            if not isinstance(b.get("text"), str):
                raise _bad(f"{w}.text", "must be a string")
            out.append(TextPart(text=b["text"], cache_control=cc))
        elif t == "tool_use":
            if not isinstance(b.get("id"), str) or not isinstance(b.get("name"), str):
                raise _bad(w, "tool_use blocks need `id` and `name` strings")
            inp = b.get("input")
            out.append(
                ToolCallPart(
                    id=b["id"],
                    name=b["name"],
                    cache_control=cc,
                    arguments=orjson.dumps(inp if inp is not None else {}).decode(),
                )
            )
        elif t == "tool_result":
            tid = b.get("tool_use_id")
            if not isinstance(tid, str) or not tid:
                raise _bad(f"{w}.tool_use_id", "is required")
            out.append(
                ToolResultPart(
                    tool_call_id=tid,
                    content=_result_content(b.get("content"), f"{w}.content"),
                    is_error=b.get("is_error") is True,
                    cache_control=cc,
                )
            )
        elif t == "thinking":
            sig = b.get("signature")
            out.append(
                ThinkingPart(
                    text=str(b.get("thinking") or ""),
                    signature=sig if isinstance(sig, str) else None,
                    origin="anthropic",
                )
            )
        elif t == "redacted_thinking":
            out.append(ThinkingPart(redacted=str(b.get("data") or ""), origin="anthropic"))
        elif t == "image":
            out.append(_image(b, w))
        elif (p := _text_like(b, t, w)) is not None:
            out.append(p)
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
        messages.append(Message(role=role, content=parse_blocks(m.get("content"), f"messages[{i}].content")))
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
        server: list[Any] = []
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
            extra["_server_tools"] = server
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
            extra["_thinking"] = thinking
    req.response_format = _structured_output(body)
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

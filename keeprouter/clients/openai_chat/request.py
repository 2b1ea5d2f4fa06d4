"""OpenAI Chat Completions client bodies -> canonical (`parse_request`).

Validation names the offending field (`messages[2].role`, `tools[0].function.name`, ...) in an
InvalidRequest. Consecutive `tool` messages become ToolResultParts of ONE user turn, and a user
message right after them joins that turn after the results. Fields neither modelled nor router
fields are kept verbatim in `req.extra`. A missing `model` falls back to the first entry of
OpenRouter's `models` list, which also names the fallbacks (`fallback_models`). Reasoning controls:
OpenAI's `reasoning_effort`, OpenRouter's `reasoning: {effort, max_tokens, enabled, exclude}` and its
older `include_reasoning`; assistant messages may carry reasoning back (`reasoning_details`,
`reasoning`, `reasoning_content`). `n` > 1 with `stream` is refused (a stream carries one choice).
"""

from __future__ import annotations

from typing import Any, cast

from keeprouter.clients.base import fallback_models
from keeprouter.formats.canonical import (
    ROUTER_FIELDS,
    ChatRequest,
    Message,
    Part,
    Reasoning,
    TextPart,
    Tool,
    ToolChoice,
    ToolResultPart,
)
from keeprouter.formats.wire.openai import bad as _bad
from keeprouter.formats.wire.openai import content_parts as _parts
from keeprouter.formats.wire.openai import parse_assistant, user_parts
from keeprouter.formats.wire.openai import text_only as _text_only

_MODELLED = frozenset(
    {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "seed",
        "response_format",
        "user",
        "reasoning_effort",
        "reasoning",
        "include_reasoning",
        "stream",
        "stream_options",
        "logprobs",
        "top_logprobs",
        "n",
    }
)
_NOT_EXTRA = _MODELLED | ROUTER_FIELDS

_TOOL_CHOICE_MODES = frozenset({"auto", "none", "required"})


def _num(body: dict[str, Any], key: str) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _bad(key, "must be a number")
    return float(v)


def _int(body: dict[str, Any], key: str) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise _bad(key, "must be an integer")
    return v


def _messages(raw: Any) -> tuple[list[TextPart], list[Message]]:
    if not isinstance(raw, list) or not raw:
        raise _bad("messages", "must be a non-empty list")
    system: list[TextPart] = []
    messages: list[Message] = []
    tool_turn: Message | None = None  # the user turn collecting `tool` results, still open
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _bad(where, "must be an object")
        role = m.get("role")
        if role == "tool":
            tcid = m.get("tool_call_id")
            if not isinstance(tcid, str) or not tcid:
                raise _bad(f"{where}.tool_call_id", "is required on tool messages")
            content = m.get("content")
            part = ToolResultPart(
                tool_call_id=tcid, content=[] if content is None else _parts(content, f"{where}.content")
            )
            if tool_turn is None:
                tool_turn = Message(role="user", content=[part])
                messages.append(tool_turn)
            else:
                tool_turn.content.append(part)
        elif role == "user":
            parts = user_parts(m.get("content"), f"{where}.content")
            if tool_turn is not None:
                tool_turn.content.extend(parts)
                tool_turn = None
            else:
                name = m.get("name")
                messages.append(
                    Message(
                        role="user",
                        content=cast(list[Part], parts),
                        name=name if isinstance(name, str) else None,
                    )
                )
        elif role == "assistant":
            tool_turn = None
            name = m.get("name")
            messages.append(
                Message(
                    role="assistant",
                    content=parse_assistant(m, where),
                    name=name if isinstance(name, str) else None,
                )
            )
        elif role == "system" or role == "developer":
            system.extend(_text_only(m.get("content"), f"{where}.content"))
        else:
            raise _bad(f"{where}.role", f"has unknown role {role!r}")
    return system, messages


def _tools(raw: Any) -> list[Tool]:
    if not isinstance(raw, list):
        raise _bad("tools", "must be a list")
    out = []
    for i, t in enumerate(raw):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(fn, dict) or t.get("type", "function") != "function":
            raise _bad(f"tools[{i}]", "must be {type: function, function: {name, ...}}")
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            raise _bad(f"tools[{i}].function.name", "is required")
        params = fn.get("parameters")
        desc = fn.get("description")
        out.append(
            Tool(
                name=name,
                description=desc if isinstance(desc, str) else None,
                parameters=params if isinstance(params, dict) else {},
                cache_control=t.get("cache_control"),
            )
        )
    return out


def _tool_choice(raw: Any) -> ToolChoice:
    if isinstance(raw, str) and raw in _TOOL_CHOICE_MODES:
        return ToolChoice(mode=raw)  # type: ignore[arg-type]
    if isinstance(raw, dict):
        fn = raw.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return ToolChoice(mode="tool", name=fn["name"])
        if raw.get("type") in _TOOL_CHOICE_MODES:
            return ToolChoice(mode=raw["type"])
    raise _bad("tool_choice", 'must be "auto", "none", "required" or {type: function, function: {name}}')


def _reasoning(body: dict[str, Any]) -> Reasoning | None:
    r = body.get("reasoning")
    include = body.get("include_reasoning")
    if include is not None and not isinstance(include, bool):
        raise _bad("include_reasoning", "must be a boolean")
    if isinstance(r, dict):
        effort, budget, enabled = r.get("effort"), r.get("max_tokens"), r.get("enabled")
        return Reasoning(
            effort=effort if isinstance(effort, str) else None,
            budget_tokens=budget if isinstance(budget, int) and not isinstance(budget, bool) else None,
            enabled=enabled is not False and effort != "none",
            exclude=r.get("exclude") is True or include is False,
        )
    if r is not None:
        raise _bad("reasoning", "must be an object")
    effort = body.get("reasoning_effort")
    if effort is None:
        if include is None:
            return None
        # OpenRouter's older switch: true asks for reasoning, false only hides it
        return Reasoning(enabled=include, exclude=not include)
    if not isinstance(effort, str):
        raise _bad("reasoning_effort", "must be a string")
    return Reasoning(effort=effort, enabled=effort != "none", exclude=include is False)


def _choices(body: dict[str, Any], req: ChatRequest) -> None:
    """`logprobs`, `top_logprobs` and `n`, validated as OpenAI does."""
    lp = body.get("logprobs")
    if lp is not None and not isinstance(lp, bool):
        raise _bad("logprobs", "must be a boolean")
    req.logprobs = lp is True
    top = _int(body, "top_logprobs")
    if top is not None and not 0 <= top <= 20:
        raise _bad("top_logprobs", "must be between 0 and 20")
    if top is not None and not req.logprobs:
        raise _bad("top_logprobs", "needs `logprobs: true`")
    req.top_logprobs = top
    n = _int(body, "n")
    if n is not None and n < 1:
        raise _bad("n", "must be at least 1")
    req.n = n or 1
    if req.n > 1 and req.stream:
        raise _bad("n", "greater than 1 is not supported with `stream: true` (a stream carries one choice)")


def parse_request(body: dict[str, Any]) -> ChatRequest:
    """A client's Chat Completions body -> canonical (source "openai"); raises InvalidRequest."""
    model = body.get("model")
    if model is None and isinstance(body.get("models"), list) and body["models"]:
        model = body["models"][0]
    if not isinstance(model, str) or not model:
        raise _bad("model", "is required and must be a string")
    system, messages = _messages(body.get("messages"))
    req = ChatRequest(model=model, messages=messages, system=system, source="openai")
    if (tools := body.get("tools")) is not None:
        req.tools = _tools(tools)
    if (tc := body.get("tool_choice")) is not None:
        req.tool_choice = _tool_choice(tc)
    if body.get("parallel_tool_calls") is False:
        if req.tool_choice is None:
            req.tool_choice = ToolChoice(mode="auto")
        req.tool_choice.disable_parallel = True
    mct = _int(body, "max_completion_tokens")
    req.max_tokens = mct if mct is not None else _int(body, "max_tokens")
    if req.max_tokens is not None and req.max_tokens < 1:
        raise _bad("max_completion_tokens" if mct is not None else "max_tokens", "must be at least 1")
    req.temperature = _num(body, "temperature")
    req.top_p = _num(body, "top_p")
    req.top_k = _int(body, "top_k")
    req.seed = _int(body, "seed")
    stop = body.get("stop")
    if isinstance(stop, str):
        req.stop = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        req.stop = stop
    elif stop is not None:
        raise _bad("stop", "must be a string or a list of strings")
    rf = body.get("response_format")
    if rf is not None and not isinstance(rf, dict):
        raise _bad("response_format", "must be an object")
    req.response_format = rf
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _bad("user", "must be a string")
    req.user = user
    req.reasoning = _reasoning(body)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad("stream", "must be a boolean")
    req.stream = stream is True
    so = body.get("stream_options")
    req.include_usage = isinstance(so, dict) and so.get("include_usage") is True
    _choices(body, req)
    req.fallback_models = fallback_models(body, "models")
    req.extra = {k: v for k, v in body.items() if k not in _NOT_EXTRA}
    return req

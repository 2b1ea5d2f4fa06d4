"""Canonical -> OpenAI Responses API client responses: the response object, its output items, usage
and ids (pure). The stream encoder (`stream`) builds its items and final object with these helpers,
so a streamed response ends with exactly the object a non-streamed one returns.

Decisions:
- Ids: the response id is the generation id with "resp_" for "gen-" (`response_id`), reversible
  (`generation_id`), so `/api/v1/generation?id=` takes either; output item ids derive from it
  (`msg_`, `fc_`, `rs_` + the same tail + the item's index), unique without a counter.
- Status: stop reason max_tokens -> "incomplete" with `incomplete_details.reason` "max_output_tokens"
  (content_filter -> "content_filter"), the last item "incomplete" too; otherwise "completed".
- Reasoning (canonical thinking) becomes a `reasoning` item whose summary is the thinking text;
  signed or redacted thinking also carries its state sealed in `encrypted_content` (always, not only
  with `include`: clients that pass output back as input then keep multi-turn tool use with thinking
  working); the request parser unseals it.
- The request's echoable fields (`store` and `previous_response_id` among them) come from the
  parser (`req.echo`), with OpenAI's defaults when absent (`store` false: nothing was parsed, so
  nothing is stored).
- Errors use the Chat Completions error shape (`clients.openai_chat.response.render_error`); in a
  response object the `error` is `{code, message}` with OpenAI's Responses codes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from keeprouter.clients.base import Reply
from keeprouter.clients.openai_responses.tools import ToolNames, custom_input
from keeprouter.clients.sealed import seal
from keeprouter.errors import GatewayError
from keeprouter.formats.canonical import (
    ChatRequest,
    ChatResponse,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)

__all__ = [
    "build_response",
    "custom_tool_call_item",
    "echo_of",
    "error_object",
    "function_call_item",
    "generation_id",
    "message_item",
    "reasoning_item",
    "response_id",
    "response_object",
    "tool_names",
    "usage_dict",
]

_GEN, _RESP = "gen-", "resp_"
_INCOMPLETE: dict[str | None, str] = {"max_tokens": "max_output_tokens", "content_filter": "content_filter"}
_ERROR_CODE = {429: "rate_limit_exceeded", 400: "invalid_prompt"}
_DEFAULT_ECHO: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "store": False,  # nothing was parsed, so nothing is stored
    "temperature": None,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": None,
    "user": None,
}


def response_id(gen_id: str) -> str:
    return _RESP + gen_id.removeprefix(_GEN)


def generation_id(some_id: str) -> str:
    """The generation id behind a response id ("resp_X" -> "gen-X"); any other id unchanged."""
    return _GEN + some_id[len(_RESP) :] if some_id.startswith(_RESP) else some_id


def item_id(resp_id: str, prefix: str, index: int) -> str:
    return f"{prefix}_{resp_id.removeprefix(_RESP)}_{index}"


def echo_of(req: ChatRequest | None) -> dict[str, Any]:
    """The request fields a response object repeats (OpenAI's defaults for a request not parsed here)."""
    echo = req.echo if req is not None else None
    return echo if echo is not None else _DEFAULT_ECHO


def incomplete_reason(stop: StopReason | None) -> str | None:
    return _INCOMPLETE.get(stop)


def usage_dict(u: Usage, cost: Decimal | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.input_tokens + u.output_tokens,
    }
    if cost is not None:
        d["cost"] = float(cost)  # OpenRouter's addition: what the key was charged, USD
    return d


def error_object(err: GatewayError) -> dict[str, Any]:
    """`response.error` of a failed response."""
    code = _ERROR_CODE.get(err.status, "server_error")
    return {"code": code, "message": err.message}


def message_item(id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [output_text(text)] if status != "in_progress" else [],
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(
    id: str, call_id: str, name: str, arguments: str, status: str = "completed", namespace: str | None = None
) -> dict[str, Any]:
    item = {
        "id": id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }
    if namespace is not None:  # a member of a `namespace` tool: its own name, and the group's
        item["namespace"] = namespace
    return item


def custom_tool_call_item(
    id: str, call_id: str, name: str, arguments: str, namespace: str | None = None
) -> dict[str, Any]:
    """A call of a custom tool; `arguments` are those of the function standing in for it."""
    item = {"id": id, "type": "custom_tool_call", "call_id": call_id, "name": name, "input": custom_input(arguments)}
    if namespace is not None:
        item["namespace"] = namespace
    return item


def tool_names(echo: dict[str, Any]) -> ToolNames:
    """How the request's tools are named back to the client (custom tools, namespace members)."""
    return ToolNames(echo["tools"])


def reasoning_item(id: str, text: str | None, encrypted: str | None = None) -> dict[str, Any]:
    summary = [] if text is None else [{"type": "summary_text", "text": text}]
    item: dict[str, Any] = {"id": id, "type": "reasoning", "summary": summary}
    if encrypted is not None:
        item["encrypted_content"] = encrypted
    return item


def response_object(
    *,
    id: str,
    model: str,
    created: int,
    echo: dict[str, Any],
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    incomplete: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": echo["instructions"],
        "max_output_tokens": echo["max_output_tokens"],
        "max_tool_calls": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": echo["parallel_tool_calls"],
        "previous_response_id": echo.get("previous_response_id"),
        "reasoning": echo["reasoning"],
        "service_tier": None,
        "store": echo.get("store", False),
        "temperature": echo["temperature"],
        "text": echo["text"],
        "tool_choice": echo["tool_choice"],
        "tools": echo["tools"],
        "top_p": echo["top_p"],
        "truncation": "disabled",
        "usage": usage,
        "user": echo["user"],
        "metadata": echo["metadata"],
    }


def output_items(resp: ChatResponse, resp_id: str, names: ToolNames | None = None) -> list[dict[str, Any]]:
    """Canonical content -> output items: thinking -> reasoning, runs of text -> one message,
    each tool call -> a function_call (a custom_tool_call for custom tools; namespace members
    under their own name and `namespace`, see `ToolNames`)."""
    names = names or ToolNames(None)
    items: list[dict[str, Any]] = []
    texts: list[str] = []

    def flush() -> None:
        if texts:
            items.append(message_item(item_id(resp_id, "msg", len(items)), "".join(texts)))
            texts.clear()

    for p in resp.content:
        if isinstance(p, TextPart):
            texts.append(p.text)
        elif isinstance(p, ToolCallPart):
            flush()
            if p.signature and p.origin:  # a call's own signed state (Gemini's): a reasoning item before it
                signed = seal(ThinkingPart(signature=p.signature, origin=p.origin))
                items.append(reasoning_item(item_id(resp_id, "rs", len(items)), None, signed))
            ns, name = names.origin(p.name)
            if p.name in names.custom:
                items.append(custom_tool_call_item(item_id(resp_id, "ctc", len(items)), p.id, name, p.arguments, ns))
            else:
                fc = item_id(resp_id, "fc", len(items))
                items.append(function_call_item(fc, p.id, name, p.arguments, namespace=ns))
        elif isinstance(p, ThinkingPart) and ((sealed := seal(p)) or p.text):
            flush()
            text = p.text if p.redacted is None else None
            items.append(reasoning_item(item_id(resp_id, "rs", len(items)), text, sealed))
    flush()
    return items


def build_response(
    resp: ChatResponse, *, id: str, model: str, created: int, echo: dict[str, Any], cost: Decimal | None
) -> dict[str, Any]:
    """Canonical -> the client's `response` object (`id` is the response id, see `response_id`)."""
    items = output_items(resp, id, tool_names(echo))
    incomplete = incomplete_reason(resp.stop_reason)
    if incomplete and items and items[-1]["type"] != "reasoning":
        items[-1]["status"] = "incomplete"
    return response_object(
        id=id,
        model=model,
        created=created,
        echo=echo,
        status="incomplete" if incomplete else "completed",
        output=items,
        usage=usage_dict(resp.usage, cost),
        incomplete=incomplete,
    )


def render(resp: ChatResponse, reply: Reply) -> dict[str, Any]:
    """The `response` object for `reply` (its ClientApi row's `render_response`)."""
    return build_response(
        resp,
        id=response_id(reply.id),
        model=reply.model,
        created=reply.created,
        echo=echo_of(reply.request),
        cost=reply.cost,
    )

"""Canonical -> an Anthropic Messages upstream body (`build_request`, pure).

Decisions (beyond the plain field mapping):
- Server tools (a `tools` entry whose `type` is not "custom") and a `thinking` config canonical cannot
  express (`adaptive`) come as `req.server_tools` / `req.thinking_config`; `build_request` replays
  them (and `extra`) only when the client spoke Anthropic. `extra` keys starting with `_` are never
  sent as body fields.
- Reasoning without a budget maps effort -> budget_tokens via `EFFORT_BUDGET`. The budget fits inside
  the caller's max_tokens, which is never raised (it caps what the caller is billed for): a budget
  not below it shrinks to half of it (at least Anthropic's minimum, MIN_BUDGET), and where even
  that does not fit, thinking is left off. Only without a caller's max_tokens is the default raised
  to budget + default (room for the answer).
  With thinking on, `temperature`/`top_k` are dropped and `top_p` below 0.95 too (Anthropic rejects them).
- Thinking derived from a non-Anthropic client's reasoning is not sent with a forced tool choice
  (Anthropic rejects the pair), nor in a tool loop whose last assistant turn has no thinking of
  Anthropic's (begun on another provider, or its thinking not sent back): Anthropic refuses both.
  Tool ids are rewritten to Anthropic's `[a-zA-Z0-9_-]+` (`tool_id`).
- Temperature is clamped to [0, 1]. For non-Anthropic clients `top_p` is dropped when `temperature` is
  set (newer Claude models reject both). `seed` and `Message.name` have no Messages equivalent and
  are dropped.
- Structured output (`response_format` json_schema / json_object; the Responses API's flat
  `text.format` too) becomes a forced tool whose input schema is the caller's schema (`json_tool`);
  the call's input comes back as the message text and the stop as end_turn (`response.parse_response`,
  `stream.AnthropicStreamDecoder`). Why this and not Anthropic's native `output_config.format` (GA) /
  `output_format` (beta `structured-outputs-2025-11-13`): the native form exists only on recent
  Claude models and not on Anthropic-format third-party hosts, which reject the unknown field; a
  forced tool works on every tool-capable model and host, and its input is schema-shaped JSON. Its
  costs: no extended thinking alongside it (Anthropic rejects thinking with a forced tool; the
  existing rule drops it), and `strict` is not sent (strict tools are also recent-model only).
- Empty text blocks (rejected by Anthropic) are skipped, and a message left
  with no blocks is skipped; consecutive same-role messages are merged, tool results first.
- Documents become `document` blocks (base64 PDF, URL or text source; a base64 `text/plain` file
  becomes a text source). A stored file id (OpenAI's) or another inline type has no Messages form:
  refused (400 naming the part). So is `n` > 1: a Messages answer is one choice, and billing the
  caller for choices it never sees is not an option.
- What the body cannot carry is listed by `dropped_fields` (the X-KeepRouter-Dropped header).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from keeprouter.errors import InvalidRequest
from keeprouter.formats.breakpoints import with_breakpoints
from keeprouter.formats.canonical import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from keeprouter.formats.wire.anthropic import ORIGIN, tool_id, tool_input

__all__ = ["build_request", "dropped_fields", "json_tool"]

EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16000, "xhigh": 32000, "max": 32000}
MIN_BUDGET = 1024


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


def _refuse_document(p: DocumentPart, why: str) -> InvalidRequest:
    where = p.where or "document"
    return InvalidRequest(
        f"`{where}` {why}, which this model's provider (Anthropic Messages format) cannot take", param=p.where or None
    )


def _document_block(p: DocumentPart) -> dict[str, Any]:
    if p.text is not None:
        src: dict[str, Any] = {"type": "text", "media_type": "text/plain", "data": p.text}
    elif p.url is not None:
        src = {"type": "url", "url": p.url}
    elif p.data is not None and (p.media_type or "application/pdf") == "application/pdf":
        src = {"type": "base64", "media_type": "application/pdf", "data": p.data}
    elif p.data is not None and p.media_type == "text/plain":
        try:
            text = base64.b64decode(p.data).decode()
        except (binascii.Error, ValueError):
            raise _refuse_document(p, "is not valid base64 UTF-8 text") from None
        src = {"type": "text", "media_type": "text/plain", "data": text}
    elif p.data is not None:
        raise _refuse_document(p, f"is a {p.media_type} file (only PDF and plain text documents)")
    else:
        raise _refuse_document(p, "is a stored file id (send the file inline as base64)")
    d: dict[str, Any] = {"type": "document", "source": src}
    title = p.title if p.title is not None else p.filename
    if title is not None:
        d["title"] = title
    if p.context is not None:
        d["context"] = p.context
    if p.citations is not None:
        d["citations"] = p.citations
    if p.cache_control is not None:
        d["cache_control"] = p.cache_control
    return d


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
        elif isinstance(p, DocumentPart):
            rest.append(_document_block(p))
        elif p.origin == ORIGIN and m.role == "assistant":
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
    trim_prefill(out)
    return out


def trim_prefill(turns: list[dict[str, Any]], converse: bool = False) -> None:
    """A final assistant turn is a prefill, and Claude refuses one whose content ends in whitespace
    ("final assistant content cannot end with trailing whitespace"): its last block, when text, is
    stripped on the right (dropped when nothing is left, and the turn with it when it empties). The
    answer goes on from the text without its trailing blank. `converse`: Bedrock's blocks
    (`{"text": ...}`), else Anthropic's (`{"type": "text", "text": ...}`)."""
    if not turns or turns[-1]["role"] != "assistant" or not turns[-1]["content"]:
        return
    content = turns[-1]["content"]
    last = content[-1]
    is_text = "text" in last if converse else last.get("type") == "text"
    value = last.get("text") if is_text else None
    if not isinstance(value, str) or value == value.rstrip():
        return
    if value.rstrip():
        content[-1] = {**last, "text": value.rstrip()}
    else:
        content.pop()
        if not content:
            turns.pop()


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


def _loop_lost_thinking(messages: list[dict[str, Any]]) -> bool:
    """Whether the tool loop in progress (the last message answers the assistant turn before it)
    has an assistant turn that does not start with its thinking, as Anthropic requires with thinking on."""
    if len(messages) < 2 or messages[-1]["role"] != "user" or messages[-2]["role"] != "assistant":
        return False
    if not any(b["type"] == "tool_result" for b in messages[-1]["content"]):
        return False
    first = messages[-2]["content"][0]["type"] if messages[-2]["content"] else "text"
    return first not in ("thinking", "redacted_thinking")


def thinking_budget(budget: int | None, effort: str | None, max_tokens: int | None) -> int | None:
    """The `budget_tokens` for a reasoning request within the caller's `max_tokens` (None: no cap),
    or None when thinking cannot fit beside an answer (Anthropic wants MIN_BUDGET <= budget < max_tokens)."""
    want = max(MIN_BUDGET, budget or EFFORT_BUDGET.get(effort or "medium", EFFORT_BUDGET["medium"]))
    if max_tokens is None or want < max_tokens:
        return want
    want = max(MIN_BUDGET, max_tokens // 2)
    return want if want < max_tokens else None


def build_request(
    req: ChatRequest, upstream_model: str, *, default_max_tokens: int, auto_breakpoint: bool = False
) -> dict[str, Any]:
    """Canonical -> an upstream Messages body for `upstream_model`; raises InvalidRequest for what no
    Messages body can carry (`n` > 1, some documents). Anthropic caches only at explicit
    breakpoints: the automatic one is placed here (a top-level `cache_control`, or the model's
    `auto_breakpoint`), and never more than the 4 Anthropic allows go out."""
    if req.n > 1:
        raise InvalidRequest(
            "`n` greater than 1 is not supported by this model's provider (Anthropic Messages format "
            "answers with one choice): send n requests instead",
            param="n",
        )
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
    if anthropic_client and req.server_tools:
        tools.extend(req.server_tools)
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
    if anthropic_client and req.thinking_config is not None:
        body["thinking"] = req.thinking_config
        thinking_on = req.thinking_config.get("type") != "disabled"
    elif (
        req.reasoning is not None
        and req.reasoning.enabled
        and req.reasoning.effort != "none"
        # Anthropic rejects thinking with a forced tool; for other clients the forced tool wins
        and (anthropic_client or "tool_choice" not in body or body["tool_choice"]["type"] in ("auto", "none"))
    ):
        budget = thinking_budget(req.reasoning.budget_tokens, req.reasoning.effort, req.max_tokens)
        if budget is not None:
            if budget >= max_tokens:  # no cap of the caller's: the default makes room for both
                max_tokens = budget + max_tokens
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
            thinking_on = True
    elif anthropic_client and req.reasoning is not None:
        body["thinking"] = {"type": "disabled"}
    if thinking_on and _loop_lost_thinking(body["messages"]):
        # A tool loop begun elsewhere (another provider's reasoning is not Anthropic's to verify, so
        # it was left out) cannot go on with thinking: Anthropic would refuse the request.
        del body["thinking"]
        thinking_on = False
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


def dropped_fields(req: ChatRequest) -> list[str]:
    """The request fields (the client's names) `build_request` cannot send for `req`."""
    if req.source == "anthropic":
        return []
    out = [k for k in req.extra if k[:1] != "_"]  # another format's own fields
    if req.seed is not None:
        out.append("seed")
    if req.logprobs:
        out.append("logprobs")
    if req.top_logprobs is not None:
        out.append("top_logprobs")
    if req.top_p is not None and req.temperature is not None:
        out.append("top_p")  # newer Claude models refuse both; temperature is kept
    return out

"""Canonical request -> a Bedrock Converse / ConverseStream body (pure, no I/O).

The model id travels in the URL, never in the body. Decisions:
- Content blocks are Converse's own: `text`, `image {format, source.bytes}` (base64 in JSON),
  `toolUse {toolUseId, name, input}`, `toolResult {toolUseId, content, status}` (in the user turn),
  `reasoningContent` (`reasoningText {text, signature}` or `redactedContent`) and a `cachePoint`
  after any block the caller marked with `cache_control` (Claude and Nova models only; `ttl: "1h"`
  kept as the cachePoint's `ttl` for the models that take it, Claude 4.5 and later).
- Every tool call of an assistant turn is kept, in order, with every result in the next user turn.
- `toolConfig` goes with every request that has tools, also when the history holds tool blocks
  (Converse refuses toolUse/toolResult history without a toolConfig: tools named only in the
  history get a minimal spec). Converse has no "none" tool choice: the tools are left out when the
  history has no tool blocks, otherwise sent without a choice.
- Signed reasoning is replayed only where it can be valid: origin "bedrock" (issued by a Bedrock
  answer) or "anthropic" (the Anthropic client API stamps that on every thinking block it is sent:
  with Claude on Bedrock those are Bedrock's own; the router's issuer scoping drops blocks signed by
  another endpoint before they get here). Unsigned reasoning text is dropped (Converse refuses it).
- Reasoning and `top_k` are Claude knobs: they travel in `additionalModelRequestFields` (`thinking`,
  `top_k`) and only to Claude models; for other models they are dropped. With thinking on,
  temperature and top_k are dropped and top_p below 0.95 too, and thinking is left out with a
  forced tool choice (Claude rejects both pairs) and in a tool loop whose last assistant turn has
  no reasoning of this endpoint's (begun on another provider): Claude refuses that too. A thinking
  budget fits inside the caller's max_tokens; maxTokens is raised above it only when the caller set
  none.
- Structured output (`response_format`; an Anthropic client's `output_config.format` too: Converse
  has no such field) is a forced tool whose input schema is the caller's schema, as for Anthropic
  upstreams; `response.py` / `stream.py` turn its call back into text.
- `n` > 1 is refused (a Converse answer is one choice; billing for choices never seen is not an
  option). What the body cannot carry is listed by `dropped_fields` (the X-KeepRouter-Dropped
  header): `seed`, `logprobs`, `top_logprobs`, `user`, `parallel_tool_calls`, server tools, another
  format's own fields (`frequency_penalty`, `presence_penalty`, ...), and reasoning left out beside a
  forced tool.
- With stop sequences, Claude models are asked for the one that matched
  (`additionalModelResponseFieldPaths: ["/stop_sequence"]`).
- Images and documents must be inline (Converse takes bytes or S3 locations, not web URLs).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from keeprouter.errors import InvalidRequest
from keeprouter.formats.breakpoints import with_breakpoints
from keeprouter.formats.canonical import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from keeprouter.formats.wire.anthropic import tool_id, tool_input
from keeprouter.providers.anthropic.request import EFFORT_BUDGET, MIN_BUDGET, json_tool, thinking_budget, trim_prefill

__all__ = ["build_request", "caches", "dropped_fields", "is_claude"]

ORIGIN = "bedrock"
REPLAYED_ORIGINS = frozenset({ORIGIN, "anthropic"})
IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
# media type -> Converse's DocumentFormat
DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
CACHE_POINT: dict[str, Any] = {"cachePoint": {"type": "default"}}
CACHE_POINT_1H: dict[str, Any] = {"cachePoint": {"type": "default", "ttl": "1h"}}
# `claude-sonnet-4-5-…`, `claude-opus-4-1-…`, `claude-sonnet-4-2025…` (4.0): family, major, minor
_CLAUDE_VERSION = re.compile(r"claude-(?:opus|sonnet|haiku)-(\d+)(?:-(\d)(?!\d))?")
EMPTY_RESULT = "(no output)"
OPENING = "(conversation start)"
MAX_USE_ID = 64
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9()\[\]-]+")


def is_claude(model: str) -> bool:
    """A Claude model id or inference profile (`anthropic.claude-…`, `us.anthropic.claude-…`, an ARN)."""
    return "anthropic." in model or "claude" in model


def caches(model: str) -> bool:
    """Whether the model takes `cachePoint` blocks (Claude and Nova; others refuse them)."""
    return is_claude(model) or "amazon.nova" in model


def use_id(id: str) -> str:
    """A toolUseId Converse takes (ToolUseId: at most 64 of [a-zA-Z0-9_.:-]): another provider's
    longer id is shortened the same way in its toolUse and its toolResult, so they still match."""
    t = tool_id(id)
    if len(t) <= MAX_USE_ID:
        return t
    return f"{t[:40]}_{hashlib.sha256(t.encode()).hexdigest()[:16]}"


def caches_1h(model: str) -> bool:
    """Whether the model takes one-hour cache points (Claude 4.5 and later; others keep 5 minutes)."""
    m = _CLAUDE_VERSION.search(model)
    return m is not None and (int(m[1]), int(m[2] or 0)) >= (4, 5)


def _uncached(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in blocks if "cachePoint" not in b]


def _five_minutes(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [CACHE_POINT if b is CACHE_POINT_1H else b for b in blocks]


def _image(p: ImagePart) -> dict[str, Any]:
    if p.data is None:
        raise InvalidRequest("Bedrock takes images inline only (base64 or a data: URL), not by web URL")
    fmt = IMAGE_FORMATS.get((p.media_type or "image/png").lower())
    if fmt is None:
        raise InvalidRequest(f"Bedrock takes png, jpeg, gif or webp images, not {p.media_type}")
    return {"image": {"format": fmt, "source": {"bytes": "".join(p.data.split())}}}


def document_name(raw: str) -> str:
    """A name Converse takes (DocumentBlock.name): letters, digits, hyphens, parentheses, square
    brackets and single spaces, 1 to 200 characters; anything else becomes one space."""
    name = " ".join(_NAME_UNSAFE.sub(" ", raw).split())[:200].strip()
    return name or "document"


def _document(p: DocumentPart) -> dict[str, Any]:
    """A document as a Converse block: text as text, an inline file of a format Converse reads
    (DocumentFormat: pdf, csv, doc, docx, xls, xlsx, html, txt, md) as a `document`; anything else
    refused naming it."""
    if p.text is not None:
        return {"text": p.text}
    fmt = DOCUMENT_FORMATS.get((p.media_type or "application/pdf").split(";")[0].strip().lower())
    if p.data is not None and fmt is not None:
        raw = p.filename or p.title or "document"
        stem, dot, ext = raw.rpartition(".")
        name = document_name(stem if dot and ext.lower() == fmt else raw)
        return {"document": {"format": fmt, "name": name, "source": {"bytes": "".join(p.data.split())}}}
    raise InvalidRequest(
        f"`{p.where or 'document'}`: this model's provider (Bedrock Converse) takes inline PDF, Word, "
        "Excel, CSV, HTML, Markdown or text documents only",
        param=p.where or None,
    )


def _with_cache(block: dict[str, Any], cache_control: dict[str, Any] | None, out: list[dict[str, Any]]) -> None:
    out.append(block)
    if cache_control is not None:
        # a one-hour breakpoint says so (CachePointBlock.ttl); five minutes is the default
        out.append(CACHE_POINT_1H if cache_control.get("ttl") == "1h" else CACHE_POINT)


def _result(p: ToolResultPart) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for c in p.content:
        if isinstance(c, TextPart):
            if c.text:
                content.append({"text": c.text})
        else:
            content.append(_image(c))
    if not content:  # Converse refuses blank text, and a result needs content: say it was empty
        content.append({"text": EMPTY_RESULT})
    d: dict[str, Any] = {"toolUseId": use_id(p.tool_call_id), "content": content}
    if p.is_error:
        d["status"] = "error"
    return {"toolResult": d}


def _reasoning(p: ThinkingPart) -> dict[str, Any] | None:
    if p.origin not in REPLAYED_ORIGINS:
        return None
    if p.redacted is not None:
        return {"reasoningContent": {"redactedContent": p.redacted}}
    if not p.signature:
        return None
    # `text` must be present even when empty (Converse: "Member must not be null")
    return {"reasoningContent": {"reasoningText": {"text": p.text, "signature": p.signature}}}


def _blocks(m: Message, results: list[dict[str, Any]], rest: list[dict[str, Any]]) -> None:
    """`m`'s blocks: tool results (user turns) first, as Converse and Claude want them."""
    for p in m.content:
        if isinstance(p, TextPart):
            if p.text:
                _with_cache({"text": p.text}, p.cache_control, rest)
        elif isinstance(p, ToolResultPart):
            if m.role == "user":
                _with_cache(_result(p), p.cache_control, results)
        elif isinstance(p, ToolCallPart):
            if m.role == "assistant":
                use = {"toolUseId": use_id(p.id), "name": p.name, "input": tool_input(p.arguments)}
                _with_cache({"toolUse": use}, p.cache_control, rest)
        elif isinstance(p, ImagePart):
            _with_cache(_image(p), p.cache_control, rest)
        elif isinstance(p, DocumentPart):
            _with_cache(_document(p), p.cache_control, rest)
        elif m.role == "assistant" and (block := _reasoning(p)) is not None:
            rest.append(block)


def messages(history: list[Message]) -> list[dict[str, Any]]:
    """Canonical messages -> Converse turns, alternating user/assistant (same-role turns merged,
    tool results first; an instruction placed mid-conversation becomes user text)."""
    out: list[dict[str, Any]] = []
    for m in history:
        if m.role == "system":
            m = Message(role="user", content=[TextPart(text=p.text) for p in m.content if isinstance(p, TextPart)])
        results: list[dict[str, Any]] = []
        rest: list[dict[str, Any]] = []
        _blocks(m, results, rest)
        if not results and not rest:
            continue
        if out and out[-1]["role"] == m.role:
            prev = out[-1]["content"]
            k = sum(1 for b in prev if "toolResult" in b)
            out[-1]["content"] = prev[:k] + results + prev[k:] + rest
        else:
            out.append({"role": m.role, "content": results + rest})
    if out and out[0]["role"] == "assistant":
        # Converse refuses a conversation that does not start with a user turn (a chat opened by
        # the assistant's greeting): a neutral user turn goes first, as blank text is refused too
        out.insert(0, {"role": "user", "content": [{"text": OPENING}]})
    trim_prefill(out, converse=True)  # Claude's rule on a final assistant turn holds on Bedrock too
    return out


def _loop_lost_thinking(turns: list[dict[str, Any]]) -> bool:
    """Whether the tool loop in progress (the last turn answers the assistant turn before it) has
    an assistant turn that does not start with its reasoning, as Claude requires with thinking on."""
    if len(turns) < 2 or turns[-1]["role"] != "user" or turns[-2]["role"] != "assistant":
        return False
    if not any("toolResult" in b for b in turns[-1]["content"]):
        return False
    return "reasoningContent" not in turns[-2]["content"][0]


def _has_tool_blocks(turns: list[dict[str, Any]]) -> bool:
    return any("toolUse" in b or "toolResult" in b for t in turns for b in t["content"])


def _tool_config(req: ChatRequest, turns: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, bool]:
    """The toolConfig (or None) and whether it forces a tool."""
    in_history = _has_tool_blocks(turns)
    tc = req.tool_choice
    tools: list[dict[str, Any]] = []
    for t in req.tools:
        spec: dict[str, Any] = {"name": t.name}
        if t.description:
            spec["description"] = t.description
        spec["inputSchema"] = {"json": t.parameters or {"type": "object", "properties": {}}}
        _with_cache({"toolSpec": spec}, t.cache_control, tools)
    structured = json_tool(req)
    if structured is not None:
        name, d = structured
        tools.append(
            {"toolSpec": {"name": name, "description": d["description"], "inputSchema": {"json": d["input_schema"]}}}
        )
    if not tools and in_history:
        # Converse refuses tool blocks without a toolConfig: name the tools the history used
        named = {b["toolUse"]["name"] for t in turns for b in t["content"] if "toolUse" in b}
        tools = [{"toolSpec": {"name": n, "inputSchema": {"json": {"type": "object"}}}} for n in sorted(named)]
    if not tools or (tc is not None and tc.mode == "none" and not in_history and structured is None):
        return None, False
    config: dict[str, Any] = {"tools": tools}
    if structured is not None and (len(tools) == 1 or tc is None or tc.mode in ("auto", "none")):
        if len(tools) == 1 or (tc is not None and tc.mode == "none"):
            config["toolChoice"] = {"tool": {"name": structured[0]}}  # the answer must be the call
        else:
            config["toolChoice"] = {"any": {}}  # one of the caller's tools, or the answer
    elif tc is not None and tc.mode == "required":
        config["toolChoice"] = {"any": {}}
    elif tc is not None and tc.mode == "tool" and tc.name:
        config["toolChoice"] = {"tool": {"name": tc.name}}
    elif tc is not None and tc.mode == "auto":
        config["toolChoice"] = {"auto": {}}
    forced = "toolChoice" in config and "auto" not in config["toolChoice"]
    return config, forced


def build_request(
    req: ChatRequest, model: str, *, default_max_tokens: int | None, auto_breakpoint: bool = False
) -> dict[str, Any]:
    """Canonical -> a Converse body for `model` (which goes in the URL). Without a maximum from the
    caller or `default_max_tokens`, maxTokens is left to the model's own default. Breakpoints as for
    Anthropic: the automatic one placed (a top-level `cache_control`, or the model's
    `auto_breakpoint`), at most 4 cache points."""
    if req.n > 1:
        raise InvalidRequest(
            "`n` greater than 1 is not supported by this model's provider (Bedrock Converse answers "
            "with one choice): send n requests instead",
            param="n",
        )
    req = with_breakpoints(req, auto=auto_breakpoint)
    body: dict[str, Any] = {}
    turns = messages(req.messages)
    body["messages"] = turns
    system: list[dict[str, Any]] = []
    for p in req.system:
        if p.text:
            _with_cache({"text": p.text}, p.cache_control, system)
    if system:
        body["system"] = system
    config, forced = _tool_config(req, turns)
    if config is not None:
        body["toolConfig"] = config
    claude = is_claude(model)
    extra: dict[str, Any] = {}
    max_tokens = req.max_tokens or default_max_tokens
    thinking_on = False
    if claude and req.source == "anthropic" and req.thinking_config is not None and not forced:
        extra["thinking"] = req.thinking_config  # adaptive / disabled, as the caller wrote it
        thinking_on = extra["thinking"].get("type") not in ("disabled", None)
    elif claude and req.reasoning is not None and req.reasoning.enabled and req.reasoning.effort != "none":
        if not forced:
            r = req.reasoning
            budget: int | None
            if req.max_tokens is not None:
                # the caller's cap on billed output is never raised: the budget shrinks to fit inside
                # it, and thinking stays off when even the smallest budget does not fit (as Anthropic's)
                budget = thinking_budget(r.budget_tokens, r.effort, req.max_tokens)
            else:
                budget = max(MIN_BUDGET, r.budget_tokens or EFFORT_BUDGET.get(r.effort or "medium", 8192))
                if max_tokens is None or budget >= max_tokens:
                    max_tokens = budget + (max_tokens or budget)
            if budget is not None:
                extra["thinking"] = {"type": "enabled", "budget_tokens": budget}
                thinking_on = True
    if thinking_on and _loop_lost_thinking(turns):
        # A tool loop begun elsewhere (another provider's reasoning is not this endpoint's to verify,
        # so it was left out) cannot go on with thinking: Claude behind Converse would refuse it.
        del extra["thinking"]
        thinking_on = False
    inference: dict[str, Any] = {} if max_tokens is None else {"maxTokens": max_tokens}
    if req.temperature is not None and not thinking_on:
        inference["temperature"] = min(1.0, max(0.0, req.temperature))
    if req.top_p is not None and (not thinking_on or req.top_p >= 0.95):
        # newer Claude models refuse temperature and top_p together: the caller's temperature wins
        if not (claude and "temperature" in inference and req.source != "anthropic"):
            inference["topP"] = req.top_p
    stop = [s for s in req.stop if s]  # Converse refuses an empty stop sequence; it matches nothing
    if stop:
        inference["stopSequences"] = stop
        if claude:  # Converse does not say which sequence stopped the answer unless asked
            body["additionalModelResponseFieldPaths"] = ["/stop_sequence"]
    if inference:
        body["inferenceConfig"] = inference
    if claude and req.top_k is not None and not thinking_on:
        extra["top_k"] = req.top_k
    if extra:
        body["additionalModelRequestFields"] = extra
    strip = _uncached if not caches(model) else None if caches_1h(model) else _five_minutes
    if strip is not None:
        for turn in turns:
            turn["content"] = strip(turn["content"])
        if system:
            body["system"] = strip(system)
        if config is not None:
            config["tools"] = strip(config["tools"])
    return body


# Fields another client format's body holds that the Converse body carries in a form of its own:
# the automatic cache breakpoint (a cachePoint) and an Anthropic client's structured output (a tool).
_TRANSLATED_EXTRA = frozenset({"cache_control", "output_format", "prompt_cache_key"})


def dropped_fields(req: ChatRequest, model: str) -> list[str]:
    """The request fields (the client's names) `build_request` cannot send for `req` to `model`.
    `prompt_cache_key` is the router's own (conversation affinity): not reported."""
    out = [k for k in req.extra if k[:1] != "_" and k not in _TRANSLATED_EXTRA and k != "output_config"]
    oc = req.extra.get("output_config")
    if isinstance(oc, dict):  # its `format` is translated; `effort` has no Converse form
        out += [f"output_config.{k}" for k in oc if k != "format"]
    out += [f"tools[type={t.get('type')}]" for t in req.server_tools]
    anthropic = req.source == "anthropic"
    claude = is_claude(model)
    for name, present in (
        ("top_k", req.top_k is not None and not claude),  # a Claude knob only
        # newer Claude models refuse both; the caller's temperature is kept (as for Anthropic). With
        # thinking on, the thinking rules decide both instead (temperature never goes).
        (
            "top_p",
            claude
            and not anthropic
            and req.top_p is not None
            and req.temperature is not None
            and not _reasoning_on(req),
        ),
        ("seed", req.seed is not None),
        ("logprobs", req.logprobs),
        ("top_logprobs", req.top_logprobs is not None),
        ("metadata.user_id" if anthropic else "user", req.user is not None),
        (
            "tool_choice.disable_parallel_tool_use" if anthropic else "parallel_tool_calls",
            req.tool_choice is not None and req.tool_choice.disable_parallel,
        ),
        ("thinking" if anthropic else "reasoning", _reasoning_on(req) and (not claude or _forced(req))),
    ):
        if present:
            out.append(name)
    return out


def _reasoning_on(req: ChatRequest) -> bool:
    r = req.reasoning
    return (r is not None and r.enabled and r.effort != "none") or (
        req.thinking_config is not None and req.thinking_config.get("type") not in ("disabled", None)
    )


def _forced(req: ChatRequest) -> bool:
    """A forced tool (the caller's, or structured output's), beside which Claude refuses thinking:
    `build_request` leaves the thinking out."""
    tc = req.tool_choice
    return json_tool(req) is not None or (tc is not None and tc.mode in ("required", "tool"))

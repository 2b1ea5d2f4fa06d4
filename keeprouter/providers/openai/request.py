"""Canonical -> an OpenAI Chat Completions upstream body (`build_request`, pure).

Decisions (beyond the plain field mapping):
- System parts become ONE leading `system` message: a plain string (parts joined with "\\n\\n") unless
  an OpenAI-format caller put `cache_control` on a part, then a list of text parts keeping it
  (OpenRouter forwards it). Anthropic callers' `cache_control` is dropped: it is Anthropic's, and
  strict hosts (Mistral) refuse unknown fields in content parts.
- Assistant text parts are joined ("") into one string: many OpenAI-compatible servers reject
  array content on assistant messages.
- `top_k` is sent only when the client itself spoke OpenAI (OpenAI proper rejects it; Anthropic
  clients send it for Claude). `reasoning_effort` is sent for a Reasoning with an effort, or with a
  budget mapped to low/medium/high. OpenRouter's own fields (`reasoning`, `include_reasoning`) are
  never sent: OpenAI and most hosts refuse them.
- Reasoning sent back: an assistant message with tool calls carries its unsigned reasoning text as
  `reasoning_content` (DeepSeek's and Kimi's thinking mode refuse a tool loop without it; other
  turns' reasoning they ignore, so it is not sent). Signed state of another kind (an Anthropic
  signature, redacted thinking) never goes to this format. Routing has already dropped reasoning
  issued by another endpoint, and all of it for an endpoint that does not reason
  (`routing.fit`); a host that wants `reasoning_content` on every tool-call turn gets "" where
  none is left (`hosts.HostQuirks.reasoning_on_tool_turns`).
- Documents become `file` parts (`file_data` as a base64 data URL, or `file_id`); a text document
  is plain text. A document by URL has no Chat Completions form: refused (400 naming the part).
- `logprobs`, `top_logprobs` and `n` are sent as asked, whichever client asked.
- What the body cannot carry is listed by `dropped_fields` (the X-KeepRouter-Dropped header).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Reasoning,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)

__all__ = ["build_request", "dropped_fields"]
# An Anthropic client's fields this body carries in a form of its own (structured output).
_TRANSLATED_EXTRA = frozenset({"output_config", "output_format"})


def _image_url(p: ImagePart) -> dict[str, Any]:
    url = p.url if p.url is not None else f"data:{p.media_type or 'image/png'};base64,{p.data or ''}"
    iu: dict[str, Any] = {"url": url}
    if p.detail is not None:
        iu["detail"] = p.detail
    return {"type": "image_url", "image_url": iu}


def _file(p: DocumentPart) -> dict[str, Any]:
    """A document as a Chat Completions part: `file` (inline data or a stored file id), or text."""
    if p.text is not None:
        return {"type": "text", "text": p.text}
    if p.file_id is not None:
        f: dict[str, Any] = {"file_id": p.file_id}
    elif p.data is not None:
        f = {"filename": p.filename or p.title or "document.pdf",
             "file_data": f"data:{p.media_type or 'application/pdf'};base64,{p.data}"}  # fmt: skip
    else:
        raise InvalidRequest(
            f"`{p.where or 'document'}` is a document by URL, which this model's provider (OpenAI Chat "
            "Completions format) cannot take: send the file inline as base64",
            param=p.where or None,
        )
    return {"type": "file", "file": f}


def _content(
    parts: Sequence[TextPart | ImagePart | DocumentPart], keep_cache: bool = True
) -> str | list[dict[str, Any]]:
    if len(parts) == 1 and isinstance(parts[0], TextPart) and (parts[0].cache_control is None or not keep_cache):
        return parts[0].text
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, TextPart):
            d: dict[str, Any] = {"type": "text", "text": p.text}
            if p.cache_control is not None and keep_cache:
                d["cache_control"] = p.cache_control
            out.append(d)
        elif isinstance(p, DocumentPart):
            out.append(_file(p))
        else:
            out.append(_image_url(p))
    return out


def _tool_content(parts: list[TextPart | ImagePart], keep_cache: bool) -> str | list[dict[str, Any]]:
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts)  # type: ignore[union-attr]
    return _content(parts, keep_cache)


def _effort(r: Reasoning) -> str | None:
    if not r.enabled:
        return "none" if r.effort == "none" else None
    if r.effort is not None:
        return r.effort
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
            rest: list[TextPart | ImagePart | DocumentPart] = []
            for p in m.content:
                if isinstance(p, ToolResultPart):
                    content = _tool_content(p.content, keep_cache)
                    out.append({"role": "tool", "tool_call_id": p.tool_call_id, "content": content})
                elif isinstance(p, TextPart | ImagePart | DocumentPart):
                    rest.append(p)
            if rest:
                um: dict[str, Any] = {"role": "user", "content": _content(rest, keep_cache)}
                if m.name is not None:
                    um["name"] = m.name
                out.append(um)
        else:
            texts = []
            calls = []
            reasoning: list[str] = []
            for p in m.content:
                if isinstance(p, TextPart):
                    texts.append(p.text)
                elif isinstance(p, ThinkingPart):
                    if p.text and p.origin is None and p.redacted is None:
                        reasoning.append(p.text)
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
                if reasoning:
                    am["reasoning_content"] = "".join(reasoning)
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
            body["tool_choice"] = {"type": "function", "function": {"name": tc.name}} if tc.mode == "tool" else tc.mode
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
    if req.logprobs:
        body["logprobs"] = True
    if req.top_logprobs is not None:
        body["top_logprobs"] = req.top_logprobs
    if req.n > 1:
        body["n"] = req.n
    if req.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # billing needs the usage chunk
    return body


def dropped_fields(req: ChatRequest) -> list[str]:
    """The request fields (the client's names) `build_request` cannot send for `req`."""
    if req.source == "openai":
        return ["user"] if req.user is not None and len(req.user) > MAX_USER_LEN else []
    out = [k for k in req.extra if k[:1] != "_" and k not in _TRANSLATED_EXTRA]  # another format's own fields
    out += [f"tools[type={t.get('type')}]" for t in req.server_tools]
    if req.top_k is not None:
        out.append("top_k")
    if req.user is not None and len(req.user) > MAX_USER_LEN:
        out.append("metadata.user_id" if req.source == "anthropic" else "user")
    return out

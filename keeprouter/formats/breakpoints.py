"""Prompt-cache breakpoints on the canonical request, pure: placing the automatic one, keeping the
count within a provider's limit, and telling whether a request caches for an hour.

Upstreams that cache only at explicit breakpoints (Anthropic's `cache_control` blocks; Vertex Claude
and Bedrock `cachePoint` alike) get them from here; upstreams that cache every long prefix on their
own (OpenAI-format hosts) need none and never call this.

The automatic breakpoint is OpenRouter's: a top-level `cache_control: {type: "ephemeral", ttl?}` on
the request (kept in `ChatRequest.extra` by both client parsers, since neither models it), or a
model's `cache: {auto_breakpoint: true}` for a request that has no breakpoint of its own. It goes on
the last block a breakpoint may sit on: the last message's last part that is not reasoning (nor an
empty text), else the last system part, else the last tool. The cache then covers the whole prompt,
and the next turn reads it back.
"""

from __future__ import annotations

from typing import Any

import msgspec

from keeprouter.formats.canonical import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)

ANTHROPIC_MAX_BREAKPOINTS = 4
TOP_LEVEL = "cache_control"  # the request-level field, in ChatRequest.extra
_EPHEMERAL: dict[str, Any] = {"type": "ephemeral"}

# What may carry a breakpoint (a ThinkingPart never does).
Marked = TextPart | ImagePart | ToolCallPart | ToolResultPart | DocumentPart | Tool


def with_breakpoints(req: ChatRequest, *, auto: bool = False, limit: int = ANTHROPIC_MAX_BREAKPOINTS) -> ChatRequest:
    """`req` as an explicit-breakpoint upstream should get it: the automatic breakpoint placed when
    asked for (a top-level `cache_control`, or `auto` -- the model's `auto_breakpoint` -- on a request
    without breakpoints) and room is left, the top-level field dropped, and at most `limit`
    breakpoints in all (a caller's extra ones dropped from the earliest: the latest cover the
    longest prefixes). `req` itself is unchanged; with nothing to do it is returned as is."""
    top = req.extra.get(TOP_LEVEL)
    marked = _marked(req)
    if TOP_LEVEL not in req.extra and len(marked) <= limit and not (auto and not marked):
        return req
    out = _copy(req)
    out.extra.pop(TOP_LEVEL, None)
    marked = _marked(out)
    # The caller's own breakpoints win: the automatic one never pushes one of them out.
    if (isinstance(top, dict) or (auto and not marked)) and len(marked) < limit:
        target = _last_cacheable(out)
        if target is not None and target.cache_control is None:
            target.cache_control = _control(top if isinstance(top, dict) else None, marked)
            marked.append(target)
    for block in marked[: max(len(marked) - limit, 0)]:
        block.cache_control = None
    return out


def uses_1h_cache(req: ChatRequest) -> bool:
    """Whether any breakpoint of `req` (or its top-level `cache_control`) asks for a 1-hour TTL."""
    top = req.extra.get(TOP_LEVEL)
    if isinstance(top, dict) and top.get("ttl") == "1h":
        return True
    return any(_is_1h(b.cache_control) for b in _marked(req))


def count_breakpoints(req: ChatRequest) -> int:
    return len(_marked(req))


def _is_1h(cc: dict[str, Any] | None) -> bool:
    return cc is not None and cc.get("ttl") == "1h"


def _control(top: dict[str, Any] | None, marked: list[Marked]) -> dict[str, Any]:
    """The automatic breakpoint's `cache_control`: the caller's type and ttl. A 1-hour breakpoint
    may not follow a shorter one (the provider refuses it), and this one comes last, so it drops to
    the default TTL when an earlier breakpoint is shorter."""
    if not top:
        return dict(_EPHEMERAL)
    cc = {"type": top.get("type") or "ephemeral"}
    ttl = top.get("ttl")
    if isinstance(ttl, str) and not (ttl == "1h" and any(not _is_1h(b.cache_control) for b in marked)):
        cc["ttl"] = ttl
    return cc


def _last_cacheable(req: ChatRequest) -> Marked | None:
    """The block the automatic breakpoint goes on. In a user turn the wire puts tool results before
    the other blocks, so a text or image after them is the turn's last block."""
    for msg in reversed(req.messages):
        parts: list[Marked] = [p for p in msg.content if not isinstance(p, ThinkingPart) and not _empty(p)]
        if parts:
            rest = [p for p in parts if not isinstance(p, ToolResultPart)]
            return (rest or parts)[-1]
    if req.system:
        return req.system[-1]
    return req.tools[-1] if req.tools else None


def _empty(p: Part) -> bool:
    return isinstance(p, TextPart) and not p.text  # never sent, so a breakpoint on it would vanish


def _marked(req: ChatRequest) -> list[Marked]:
    """Every block carrying a breakpoint, in the provider's prompt order: tools, system, messages
    (a tool result's own blocks after the result)."""
    out: list[Marked] = [t for t in req.tools if t.cache_control is not None]
    out.extend(sp for sp in req.system if sp.cache_control is not None)
    for msg in req.messages:
        for part in msg.content:
            if isinstance(part, ThinkingPart):
                continue
            if part.cache_control is not None:
                out.append(part)
            if isinstance(part, ToolResultPart):
                out.extend(c for c in part.content if c.cache_control is not None)
    return out


def _copy(req: ChatRequest) -> ChatRequest:
    """A copy whose blocks may be re-marked without touching `req` (the gateway retries the same
    request on other endpoints, some of which must not see the change). Only the containers and the
    markable blocks are copied; their text is shared."""
    return msgspec.structs.replace(
        req,
        tools=[msgspec.structs.replace(t) for t in req.tools],
        system=[msgspec.structs.replace(s) for s in req.system],
        messages=[Message(role=m.role, content=[_copy_part(p) for p in m.content], name=m.name) for m in req.messages],
        extra=dict(req.extra),
    )


def _copy_part(p: Part) -> Part:
    if isinstance(p, ToolResultPart):
        return msgspec.structs.replace(p, content=[msgspec.structs.replace(c) for c in p.content])
    return msgspec.structs.replace(p)

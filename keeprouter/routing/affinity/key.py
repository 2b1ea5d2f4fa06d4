"""Naming a conversation, pure: which requests are turns of one conversation.

A conversation is named, first match wins, by the body's `session_id` (OpenRouter's), the
`x-session-id` header, OpenAI's `prompt_cache_key`, Anthropic's `metadata.user_id` (Claude Code puts
its session id there), else by a digest of the first system prompt and the first user message: the
turns of one conversation resend both unchanged, so they keep one name without naming themselves.

Cheap on the request path: only those texts are hashed (BLAKE2b, streamed part by part), never a
JSON encoding of the conversation. The requested model is part of the name, so a side request of
the same session on another model (Claude Code's small-model calls) keeps its own affinity.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keeprouter.formats.breakpoints import uses_1h_cache
from keeprouter.formats.canonical import ChatRequest, ImagePart, Message, TextPart, ToolCallPart, ToolResultPart

SESSION_HEADER = "x-session-id"
# Provider prompt caches keep an entry 5 minutes after its last use, or 1 hour for 1-hour
# breakpoints; the affinity outlives them, so a warm cache is never abandoned for a cold one.
SHORT_TTL = 5 * 60.0
LONG_TTL = 60 * 60.0
# No provider caches a prompt below 1,024 tokens: an unnamed conversation that short gains nothing
# from affinity, so the gateway keeps balancing it (identical short prompts would otherwise all
# pile onto one endpoint).
MIN_CACHEABLE_TOKENS = 1024
_SEP = b"\x1f"


@dataclass(frozen=True, slots=True)
class Conversation:
    """`key`: the conversation's name in the affinity table (a hex digest). `named`: the caller named
    it (a session id or cache key) rather than it being recognised by its opening messages."""

    key: str
    named: bool


def conversation(
    req: ChatRequest, headers: Mapping[str, str], session_id: Any = None, scope: str = "", cache_key: Any = None
) -> Conversation | None:
    """The conversation `req` is a turn of. `session_id` and `cache_key` are the body's `session_id`
    and `prompt_cache_key` (read from the body: not every client API keeps them in `req`); `scope`
    separates callers who may share names (the calling key). None when nothing names it (no system
    prompt and no user message)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(scope.encode())
    h.update(_SEP)
    h.update(req.model.encode())
    h.update(_SEP)
    name = _named(req, headers, session_id, cache_key)
    if name is not None:
        h.update(b"n")
        h.update(name.encode())
        return Conversation(h.hexdigest(), True)
    h.update(b"h")
    seen = False
    for sp in req.system:
        h.update(sp.text.encode())
        h.update(_SEP)
        seen = True
    first_user = next((m for m in req.messages if m.role == "user"), None)
    if first_user is not None:
        h.update(b"u")
        _hash_message(h, first_user)
        seen = True
    return Conversation(h.hexdigest(), False) if seen else None


def affinity_ttl(req: ChatRequest) -> float:
    """How long an idle conversation keeps its endpoint: past its provider cache's lifetime."""
    return LONG_TTL if uses_1h_cache(req) else SHORT_TTL


def _named(req: ChatRequest, headers: Mapping[str, str], session_id: Any, cache_key: Any) -> str | None:
    if isinstance(session_id, str | int) and not isinstance(session_id, bool) and str(session_id):
        return f"s:{session_id}"
    header = headers.get(SESSION_HEADER)
    if header:
        return f"s:{header}"
    if isinstance(cache_key, str) and cache_key:
        return f"k:{cache_key}"
    if req.source == "anthropic" and req.user:  # metadata.user_id; OpenAI's `user` names a person
        return f"u:{req.user}"
    return None


def _hash_message(h: Any, msg: Message) -> None:
    for p in msg.content:
        if isinstance(p, TextPart):
            h.update(p.text.encode())
        elif isinstance(p, ImagePart):
            h.update((p.url or p.data or "").encode())
        elif isinstance(p, ToolResultPart):
            h.update(p.tool_call_id.encode())
            for c in p.content:
                h.update(c.text.encode() if isinstance(c, TextPart) else (c.url or c.data or "").encode())
        elif isinstance(p, ToolCallPart):
            h.update(p.name.encode())
            h.update(p.arguments.encode())
        h.update(_SEP)

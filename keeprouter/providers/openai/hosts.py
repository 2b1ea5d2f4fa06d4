"""Host quirks as data: how OpenAI-compatible hosts differ from the reference wire format.

The adapter looks the provider's host up once, at start-up; the core never names a host.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class HostQuirks:
    # OpenAI's reasoning models reject `max_tokens` and want `max_completion_tokens`.
    max_tokens_field: str = "max_tokens"
    # Mistral accepts only tool-call ids of exactly nine [a-zA-Z0-9] characters.
    tool_id_alnum9: bool = False
    # Top-level fields the host refuses (Mistral: `stream_options`, and sends usage anyway).
    drop: frozenset[str] = frozenset()
    # Thinking mode (DeepSeek, Kimi) refuses an assistant tool-call message without `reasoning_content`,
    # even one another model made: "" stands in where no reasoning of its own is left.
    reasoning_on_tool_turns: bool = False


QUIRKS: dict[str, HostQuirks] = {
    "api.openai.com": HostQuirks(max_tokens_field="max_completion_tokens"),
    "api.mistral.ai": HostQuirks(tool_id_alnum9=True, drop=frozenset({"stream_options", "user", "seed"})),
    "api.deepseek.com": HostQuirks(reasoning_on_tool_turns=True),
    "api.moonshot.ai": HostQuirks(reasoning_on_tool_turns=True),
    "api.moonshot.cn": HostQuirks(reasoning_on_tool_turns=True),
}
PLAIN = HostQuirks()

_ALNUM9 = re.compile(r"[a-zA-Z0-9]{9}")
_ALPHABET = string.ascii_letters + string.digits


def quirks_for(base_url: str) -> HostQuirks:
    return QUIRKS.get(urlsplit(base_url).hostname or "", PLAIN)


def alnum9(tool_id: str) -> str:
    """A stable nine-character id for `tool_id`: the same input always maps to the same output,
    so a tool call and its result still match after the rewrite."""
    if _ALNUM9.fullmatch(tool_id):
        return tool_id
    n = int.from_bytes(hashlib.sha256(tool_id.encode()).digest()[:8], "big")
    out = []
    for _ in range(9):
        n, r = divmod(n, len(_ALPHABET))
        out.append(_ALPHABET[r])
    return "".join(out)


# How hosts say they refuse a field: pydantic's extra_forbidden (Mistral, FastAPI servers) and
# OpenAI's own wording; and Mistral's tool-call id rule.
_REFUSED_FIELD = re.compile(
    r'extra_forbidden"[^]]*?"loc":\s*\[\s*"body",\s*"(\w+)"'
    r'|"loc":\s*\[\s*"body",\s*"(\w+)"[^]]*\][^}]*?extra_forbidden'
    r"|[Uu]nrecognized request argument supplied: (\w+)"
    r"|[Uu]nknown (?:parameter|field|argument):? '?(\w+)"
)
# OpenAI's and Azure's reasoning models: "Unsupported value: 'temperature' does not support 0.7 with this
# model. Only the default (1) value is supported." / "Unsupported parameter: 'top_p' is not supported
# with this model." Learned only for sampling knobs (the model then samples as its default), never
# for a limit; `max_tokens` is renamed instead ("Use 'max_completion_tokens' instead").
_UNSUPPORTED = re.compile(r"Unsupported (?:value|parameter): '(\w+)'")
_SAMPLING = frozenset({"temperature", "top_p", "presence_penalty", "frequency_penalty", "logit_bias"})
_ID_RULE = re.compile(r"tool.?call.?id.*(?:length of 9|9 char|a-zA-Z0-9)", re.IGNORECASE | re.DOTALL)
# DeepSeek's "The reasoning_content in the thinking mode must be passed back to the API." and Kimi's
# "thinking is enabled but reasoning_content is missing in assistant tool call message"
_REASONING_RULE = re.compile(r"reasoning_content.*(?:passed back|missing)", re.IGNORECASE | re.DOTALL)


def learn(q: HostQuirks, error_message: str) -> HostQuirks | None:
    """The quirks `q` plus what a 400/422 `error_message` reveals the host refuses, or None when it
    reveals nothing new (then the error is the caller's to see)."""
    m = _REFUSED_FIELD.search(error_message)
    if m:
        field = next(g for g in m.groups() if g)
        if field not in q.drop and field not in ("model", "messages"):
            return replace(q, drop=q.drop | {field})
    m = _UNSUPPORTED.search(error_message)
    if m:
        field = m.group(1)
        if field == "max_tokens" and q.max_tokens_field == "max_tokens" and "max_completion_tokens" in error_message:
            return replace(q, max_tokens_field="max_completion_tokens")
        if field in _SAMPLING and field not in q.drop:
            return replace(q, drop=q.drop | {field})
    if not q.tool_id_alnum9 and _ID_RULE.search(error_message):
        return replace(q, tool_id_alnum9=True)
    if not q.reasoning_on_tool_turns and _REASONING_RULE.search(error_message):
        return replace(q, reasoning_on_tool_turns=True)
    return None


def apply(q: HostQuirks, body: dict[str, Any]) -> dict[str, Any]:
    """Rewrite an OpenAI-format request body for a quirky host, in place."""
    for field in q.drop:
        body.pop(field, None)
    if q.max_tokens_field != "max_tokens" and "max_tokens" in body:
        body[q.max_tokens_field] = body.pop("max_tokens")
    if q.reasoning_on_tool_turns:
        for m in body.get("messages", ()):
            if m.get("role") == "assistant" and m.get("tool_calls") and "reasoning_content" not in m:
                m["reasoning_content"] = ""
    if q.tool_id_alnum9:
        for m in body.get("messages", ()):
            if m.get("role") == "tool" and isinstance(m.get("tool_call_id"), str):
                m["tool_call_id"] = alnum9(m["tool_call_id"])
            for call in m.get("tool_calls") or ():
                if isinstance(call.get("id"), str):
                    call["id"] = alnum9(call["id"])
    return body

"""Anthropic Messages shapes used by both sides: content blocks (a client's messages and an upstream's
response content are the same blocks), tool-id rules, tool input objects and the error-type table.

Documents (base64, url or text source) are DocumentParts; inside a tool result a text-source
document, and any block carrying text, is kept as text; server-tool blocks in history
(`server_tool_use`, `*_tool_result`) are dropped; other unknown blocks are rejected.
Signed thinking blocks keep origin ORIGIN: their signatures are Anthropic's.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from keeprouter.errors import InvalidRequest
from keeprouter.formats.canonical import (
    DocumentPart,
    ImagePart,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    inline_image_problem,
)

ORIGIN = "anthropic"  # the provider kind that issues this format's signed thinking
_SKIPPED_BLOCKS = frozenset({"server_tool_use", "mcp_tool_use", "container_upload"})
_TOOL_ID_OK = re.compile(r"[a-zA-Z0-9_-]+")
_TOOL_ID_BAD = re.compile(r"[^a-zA-Z0-9_-]")
# HTTP status -> Anthropic error `type` (what a client is told) ...
ERROR_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# ... and an upstream's in-stream error `type` -> the status our UpstreamError carries
ERROR_STATUS: dict[Any, int] = {
    "overloaded_error": 503,
    "rate_limit_error": 429,
    "invalid_request_error": 400,
    "request_too_large": 413,
    "timeout_error": 504,
}


def bad(field: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"`{field}` {problem}")


def error_type(status: int) -> str:
    return ERROR_TYPE.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def tool_id(id: str) -> str:
    """Anthropic requires tool ids matching ^[a-zA-Z0-9_-]+$; other providers' ids (e.g.
    "functions.get_weather:0") are rewritten the same way in tool_use and tool_result."""
    return id if _TOOL_ID_OK.fullmatch(id) else _TOOL_ID_BAD.sub("_", id) or "_"


def tool_input(arguments: str) -> dict[str, Any]:
    """Tool-call arguments (JSON text) -> an input object; anything unparsable becomes {}."""
    if not arguments:
        return {}
    try:
        v = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return v if isinstance(v, dict) else {}


def _image(b: dict[str, Any], where: str) -> ImagePart:
    src = b.get("source")
    cc = b.get("cache_control")
    if isinstance(src, dict):
        if src.get("type") == "base64":
            if (problem := inline_image_problem(src.get("media_type"), src.get("data"))) is not None:
                raise bad(f"{where}.source", problem)
            return ImagePart(media_type=src["media_type"], data=src["data"], cache_control=cc)
        if src.get("type") == "url" and isinstance(src.get("url"), str):
            return ImagePart(url=src["url"], cache_control=cc)
    raise bad(f"{where}.source", "must be a base64 or url image source")


def _document(b: dict[str, Any], where: str) -> DocumentPart:
    src = b.get("source")
    kind = src.get("type") if isinstance(src, dict) else None
    opts: dict[str, Any] = {"where": where, "cache_control": b.get("cache_control")}
    for key in ("title", "context"):
        if isinstance(b.get(key), str):
            opts[key] = b[key]
    if isinstance(b.get("citations"), dict):
        opts["citations"] = b["citations"]
    if not isinstance(src, dict):
        raise bad(f"{where}.source", "is required")
    if kind == "base64" and isinstance(src.get("data"), str) and src["data"]:
        media_type = src.get("media_type")
        return DocumentPart(data=src["data"], media_type=media_type if isinstance(media_type, str) else None, **opts)
    if kind == "url" and isinstance(src.get("url"), str) and src["url"]:
        return DocumentPart(url=src["url"], **opts)
    if kind == "text" and isinstance(src.get("data"), str):
        return DocumentPart(text=src["data"], **opts)
    raise bad(f"{where}.source", "must be a base64, url or text document source")


def _text_like(b: dict[str, Any], t: Any, where: str) -> TextPart | None:
    """Documents with text, and unknown blocks carrying `text`, are kept as text; others are unusable."""
    if t == "document":
        src = b.get("source")
        if isinstance(src, dict) and src.get("type") == "text" and isinstance(src.get("data"), str):
            return TextPart(text=src["data"], cache_control=b.get("cache_control"))
        raise bad(f"{where}.source", "documents in tool results are supported with a text source only")
    if isinstance(b.get("text"), str):
        return TextPart(text=b["text"], cache_control=b.get("cache_control"))
    content = b.get("content")
    if isinstance(content, list) and content and all(isinstance(c, dict) and "text" in c for c in content):
        return TextPart(text="\n\n".join(str(c["text"]) for c in content), cache_control=b.get("cache_control"))
    if t in _SKIPPED_BLOCKS or (isinstance(t, str) and t.endswith("_tool_result")):
        return None
    raise bad(f"{where}.type", f"has unsupported block type {t!r}")


def _result_content(raw: Any, where: str) -> list[TextPart | ImagePart]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [TextPart(text=raw)]
    if not isinstance(raw, list):
        raise bad(where, "must be a string or a list of blocks")
    out: list[TextPart | ImagePart] = []
    for i, b in enumerate(raw):
        if not isinstance(b, dict):
            raise bad(f"{where}[{i}]", "must be an object")
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
        raise bad(where, "must be a string or a list of content blocks")
    out: list[Part] = []
    for i, b in enumerate(raw):
        w = f"{where}[{i}]"
        if not isinstance(b, dict):
            raise bad(w, "must be an object")
        t = b.get("type")
        cc = b.get("cache_control")
        if t == "text":
            if not isinstance(b.get("text"), str):
                raise bad(f"{w}.text", "must be a string")
            out.append(TextPart(text=b["text"], cache_control=cc))
        elif t == "tool_use":
            if not isinstance(b.get("id"), str) or not isinstance(b.get("name"), str):
                raise bad(w, "tool_use blocks need `id` and `name` strings")
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
                raise bad(f"{w}.tool_use_id", "is required")
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
            signed = isinstance(sig, str) and bool(sig)
            # An empty signature is how unsigned reasoning (DeepSeek's, via us) reaches this format:
            # it is plain text, with no Anthropic state to protect.
            out.append(
                ThinkingPart(
                    text=str(b.get("thinking") or ""),
                    signature=sig if signed else None,
                    origin=ORIGIN if signed else None,
                )
            )
        elif t == "redacted_thinking":
            out.append(ThinkingPart(redacted=str(b.get("data") or ""), origin=ORIGIN))
        elif t == "image":
            out.append(_image(b, w))
        elif t == "document":
            out.append(_document(b, w))
        elif (p := _text_like(b, t, w)) is not None:
            out.append(p)
    return out

"""OpenAI Chat Completions shapes used by both sides: content parts and assistant messages (a
client's history and an upstream's answer are the same message shape) and the error-type table.
"""

from __future__ import annotations

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
    inline_image_problem,
)

# OpenAI error `type` per HTTP status; `code` carries the status itself (OpenRouter style).
ERROR_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
}


def bad(field: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"`{field}` {problem}")


def error_type(status: int) -> str:
    return ERROR_TYPE.get(status) or ("server_error" if status >= 500 else "invalid_request_error")


def _image(url: Any, detail: Any, where: str) -> ImagePart:
    if not isinstance(url, str) or not url:
        raise bad(where, "must have an `image_url.url` string")
    d = detail if isinstance(detail, str) else None
    if url[:5].lower() == "data:":
        head, sep, data = url.partition(",")
        if not sep or not head.endswith(";base64"):
            raise bad(f"{where}.image_url.url", "must be a base64 data URL (data:image/...;base64,...) or a URL")
        media_type = head[5:-7]
        if (problem := inline_image_problem(media_type, data)) is not None:
            raise bad(f"{where}.image_url.url", problem)
        return ImagePart(media_type=media_type, data=data, detail=d)
    return ImagePart(url=url, detail=d)


def data_url_document(url: str, filename: str | None, where: str) -> DocumentPart:
    """A file sent as a base64 data URL (or, as OpenRouter allows, a plain URL) -> a DocumentPart."""
    if url[:5].lower() != "data:":
        if url[:8].lower() == "https://" or url[:7].lower() == "http://":
            return DocumentPart(url=url, filename=filename, where=where)
        raise bad(where, "must be a base64 data URL (data:application/pdf;base64,...)")
    head, sep, data = url.partition(",")
    if not sep or not head.endswith(";base64") or not data:
        raise bad(where, "must be a base64 data URL (data:application/pdf;base64,...)")
    return DocumentPart(data=data, media_type=head[5:-7] or None, filename=filename, where=where)


def _file(p: dict[str, Any], where: str) -> DocumentPart:
    f = p.get("file")
    if not isinstance(f, dict):
        raise bad(f"{where}.file", "must be an object with `file_data` or `file_id`")
    name = f.get("filename") if isinstance(f.get("filename"), str) else None
    if isinstance(f.get("file_data"), str) and f["file_data"]:
        return data_url_document(f["file_data"], name, f"{where}.file.file_data")
    if isinstance(f.get("file_id"), str) and f["file_id"]:
        return DocumentPart(file_id=f["file_id"], filename=name, where=f"{where}.file.file_id")
    raise bad(f"{where}.file", "must have `file_data` or `file_id`")


def _part(p: Any, where: str) -> TextPart | ImagePart | None:
    """One text or image part (None for a refusal part, which carries nothing to send)."""
    t = p.get("type") if isinstance(p, dict) else None
    if t == "text":
        text = p.get("text")
        if not isinstance(text, str):
            raise bad(f"{where}.text", "must be a string")
        return TextPart(text=text, cache_control=p.get("cache_control"))
    if t == "image_url":
        iu = p.get("image_url")
        if isinstance(iu, dict):
            return _image(iu.get("url"), iu.get("detail"), where)
        return _image(iu, None, where)
    if t == "refusal":
        return None
    raise bad(f"{where}.type", f"has unsupported content part type {t!r}")


def user_parts(content: Any, where: str) -> list[TextPart | ImagePart | DocumentPart]:
    """A user message's content: text, images and files."""
    if not isinstance(content, list):
        return list(content_parts(content, where))
    out: list[TextPart | ImagePart | DocumentPart] = []
    for i, p in enumerate(content):
        if isinstance(p, dict) and p.get("type") == "file":
            out.append(_file(p, f"{where}[{i}]"))
        elif (part := _part(p, f"{where}[{i}]")) is not None:
            out.append(part)
    return out


def content_parts(content: Any, where: str) -> list[TextPart | ImagePart]:
    """Text and image parts (tool results, assistant and system messages)."""
    if isinstance(content, str):
        return [TextPart(text=content)]
    if not isinstance(content, list):
        raise bad(where, "must be a string or a list of content parts")
    return [part for i, p in enumerate(content) if (part := _part(p, f"{where}[{i}]")) is not None]


def text_only(content: Any, where: str) -> list[TextPart]:
    parts = content_parts(content, where)
    if any(isinstance(p, ImagePart) for p in parts):
        raise bad(where, "must contain only text")
    return parts  # type: ignore[return-value]


# OpenRouter's `reasoning_details[].format` per provider kind that signs reasoning (canonical
# `origin`). The format names whose signature it is, not which host served it: Bedrock signs only
# Claude's thinking, in Claude's own format (Vertex's Claude and Gemini already decode as the
# `anthropic` and `gemini` kinds). Read back, Claude's format is origin "anthropic", which the
# Anthropic and Bedrock translators both replay; which endpoint issued a signature is the router's
# to know (`routing.fit`), so it still never reaches another provider.
REASONING_FORMAT = {"anthropic": "anthropic-claude-v1", "bedrock": "anthropic-claude-v1", "gemini": "google-gemini-v1"}
_ORIGIN_OF_FORMAT = {"anthropic-claude-v1": "anthropic", "google-gemini-v1": "gemini"}
UNKNOWN_FORMAT = "unknown"


def reasoning_format(origin: str | None) -> str:
    return REASONING_FORMAT.get(origin or "", UNKNOWN_FORMAT)


def reasoning_details(parts: list[Part]) -> list[dict[str, Any]]:
    """The thinking of an answer as OpenRouter's `reasoning_details` (one entry per thinking part,
    `index` its position among them): `reasoning.text` with its signature, `reasoning.encrypted`
    for redacted thinking."""
    out: list[dict[str, Any]] = []
    for p in parts:
        if not isinstance(p, ThinkingPart):
            continue
        fmt = reasoning_format(p.origin)
        if p.redacted is not None:
            out.append({"type": "reasoning.encrypted", "data": p.redacted, "format": fmt, "index": len(out)})
        elif p.text or p.signature:
            out.append({"type": "reasoning.text", "text": p.text, "signature": p.signature or None,
                        "format": fmt, "index": len(out)})  # fmt: skip
    return out


def _details(raw: list[Any], where: str) -> list[Part]:
    """A client's `reasoning_details` -> thinking parts; fragments of one entry (same `index`, as a
    stream delivered them) join into one part."""
    out: list[ThinkingPart] = []
    last_index: object = None
    for i, d in enumerate(raw):
        if not isinstance(d, dict):
            raise bad(f"{where}[{i}]", "must be an object")
        kind, index = d.get("type"), d.get("index")
        origin = _ORIGIN_OF_FORMAT.get(str(d.get("format")))
        same = index is not None and index == last_index and out and out[-1].redacted is None
        last_index = index
        if kind == "reasoning.encrypted":
            data = d.get("data")
            if isinstance(data, str) and data:
                out.append(ThinkingPart(redacted=data, origin=origin))
            continue
        text = d.get("text") if kind == "reasoning.text" else d.get("summary")
        if kind not in ("reasoning.text", "reasoning.summary"):
            continue  # kinds we cannot replay (OpenRouter adds new ones) are left out
        sig = d.get("signature") if kind == "reasoning.text" else None
        if same:
            prev = out[-1]
            prev.text += text if isinstance(text, str) else ""
            if isinstance(sig, str) and sig:
                prev.signature = sig
            prev.origin = prev.origin or origin
        else:
            signature = sig if isinstance(sig, str) and sig else None
            out.append(ThinkingPart(text=text if isinstance(text, str) else "", signature=signature, origin=origin))
    return list(out)


def parse_assistant(m: dict[str, Any], where: str) -> list[Part]:
    out: list[Part] = []
    details = m.get("reasoning_details")
    if isinstance(details, list) and details:
        out.extend(_details(details, f"{where}.reasoning_details"))
    else:
        # `reasoning` (OpenRouter) or `reasoning_content` (DeepSeek, Kimi): unsigned text
        reasoning = m.get("reasoning") or m.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            out.append(ThinkingPart(text=reasoning))
    content = m.get("content")
    if content is not None and content != "":
        out.extend(text_only(content, f"{where}.content"))
    calls = m.get("tool_calls")
    if calls:
        if not isinstance(calls, list):
            raise bad(f"{where}.tool_calls", "must be a list")
        for j, c in enumerate(calls):
            fn = c.get("function") if isinstance(c, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise bad(f"{where}.tool_calls[{j}].function.name", "is required")
            args = fn.get("arguments")
            if not isinstance(args, str):
                args = "" if args is None else orjson.dumps(args).decode()
            cid = c.get("id")
            sig = call_signature(c)
            out.append(
                ToolCallPart(
                    id=cid if isinstance(cid, str) else f"call_{j}",
                    name=fn["name"],
                    arguments=args,
                    signature=sig,
                    origin="gemini" if sig else None,
                )
            )
    return out


# A tool call's own signed state (Gemini's thought signature) rides in the call's `extra_content`,
# where Google's OpenAI-compatible API puts it; only Gemini issues it, so only Gemini's is written.
def call_signature(call: dict[str, Any]) -> str | None:
    """`tool_calls[].extra_content.google.thought_signature`, when a non-empty string."""
    ec = call.get("extra_content")
    google = ec.get("google") if isinstance(ec, dict) else None
    sig = google.get("thought_signature") if isinstance(google, dict) else None
    return sig if isinstance(sig, str) and sig else None


def with_signature(call: dict[str, Any], signature: str | None, origin: str | None) -> dict[str, Any]:
    """`call` with Gemini's signature in its `extra_content` (no signature, or another's: unchanged)."""
    if signature and origin == "gemini":
        call["extra_content"] = {"google": {"thought_signature": signature}}
    return call

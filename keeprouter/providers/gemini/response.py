"""A Gemini `GenerateContentResponse` -> canonical (pure); also Gemini's usage and error shapes.

- Parts in order: text -> TextPart; `thought: true` -> ThinkingPart; `functionCall` -> ToolCallPart
  (Gemini gives no call id unless it sends `id`: one is made from the response id and the call's
  position, so a stream and a whole answer name a call alike).
- `thoughtSignature` is taken from EVERY part: on a call it rides on the ToolCallPart, on a thought
  part on its ThinkingPart, and on a text or signature-only part it becomes a signature-only
  ThinkingPart after it; all with origin "gemini".
- Usage: `promptTokenCount` includes cached tokens (`cachedContentTokenCount`), as canonical input
  does; thoughts are counted apart from candidates (`thoughtsTokenCount`), so output = candidates +
  thoughts, and the thoughts are the reasoning tokens. Tool-use prompt tokens are input.
- Errors come as `{"error": {code, message, status, details}}`, or as a list of those. A 400
  FAILED_PRECONDITION is the account's (ai.google.dev/gemini-api/docs/troubleshooting), not the
  caller's: a provider failure. A 429's
  `details` may hold a `google.rpc.RetryInfo` whose `retryDelay` (a Duration, "37s") is Google's
  Retry-After: Gemini sends no such header.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import (
    ChatResponse,
    Part,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)

ORIGIN = "gemini"
_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "LANGUAGE",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)


def finish_reason(reason: object, has_calls: bool) -> StopReason | None:
    """Gemini's `finishReason` -> canonical; None while a stream has not finished."""
    if not isinstance(reason, str) or not reason:
        return None
    if reason == "STOP":
        return "tool_use" if has_calls else "end_turn"
    if reason == "MAX_TOKENS":
        return "max_tokens"
    if reason in _FILTERED:
        return "content_filter"
    return "error"  # MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, OTHER...


def _n(d: dict[str, Any], key: str) -> int:
    v = d.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def parse_usage(u: object) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    thoughts = _n(u, "thoughtsTokenCount")
    return Usage(
        input_tokens=_n(u, "promptTokenCount") + _n(u, "toolUsePromptTokenCount"),
        output_tokens=_n(u, "candidatesTokenCount") + thoughts,
        cache_read_tokens=_n(u, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def call_id(response_id: str, index: int, given: object = None) -> str:
    """A tool call's id: Gemini's own when it sends one, else stable for (response, position)."""
    if isinstance(given, str) and given:
        return given
    return "call_" + hashlib.sha256(f"{response_id}:{index}".encode()).hexdigest()[:24]


def response_id(data: dict[str, Any]) -> str:
    rid = data.get("responseId")
    return rid if isinstance(rid, str) and rid else uuid.uuid4().hex


def candidate(data: dict[str, Any]) -> dict[str, Any]:
    cands = data.get("candidates")
    first = cands[0] if isinstance(cands, list) and cands else None
    return first if isinstance(first, dict) else {}


def parts_of(cand: dict[str, Any]) -> list[dict[str, Any]]:
    content = cand.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def signature_of(part: dict[str, Any]) -> str | None:
    sig = part.get("thoughtSignature")
    return sig if isinstance(sig, str) and sig else None


def arguments_of(call: dict[str, Any]) -> str:
    args = call.get("args")
    return orjson.dumps(args if isinstance(args, dict) else {}).decode()


def parse_response(data: dict[str, Any], model: str) -> ChatResponse:
    """The whole answer -> canonical. An error body, even with status 200, raises UpstreamError."""
    err = error_of(data)
    if err is not None:
        raise err
    rid = response_id(data)
    cand = candidate(data)
    content: list[Part] = []
    calls = 0
    for part in parts_of(cand):
        sig = signature_of(part)
        fc = part.get("functionCall")
        if isinstance(fc, dict):
            content.append(
                ToolCallPart(
                    id=call_id(rid, calls, fc.get("id")),
                    name=str(fc.get("name") or ""),
                    arguments=arguments_of(fc),
                    signature=sig,
                    origin=ORIGIN if sig else None,
                )
            )
            calls += 1
            continue
        text = part.get("text")
        text = text if isinstance(text, str) else ""
        if part.get("thought") is True:
            content.append(ThinkingPart(text=text, signature=sig, origin=ORIGIN))
            continue
        if text:
            content.append(TextPart(text=text))
        if sig:
            content.append(ThinkingPart(signature=sig, origin=ORIGIN))
    stop = finish_reason(cand.get("finishReason"), calls > 0)
    if not cand and _blocked(data):
        stop = "content_filter"
    mv = data.get("modelVersion")
    return ChatResponse(
        id=rid,
        model=mv if isinstance(mv, str) and mv else model,
        content=content,
        stop_reason=stop or ("tool_use" if calls else "end_turn"),
        usage=parse_usage(data.get("usageMetadata")),
    )


def _blocked(data: dict[str, Any]) -> bool:
    """The prompt itself was refused (`promptFeedback.blockReason`, and no candidate at all)."""
    fb = data.get("promptFeedback")
    return isinstance(fb, dict) and bool(fb.get("blockReason"))


def error_of(data: object) -> UpstreamError | None:
    """Gemini's error shapes (`{"error": {...}}`, or `[{"error": {...}}]`) as an UpstreamError with
    Gemini's message and HTTP code; None when `data` is not an error."""
    if isinstance(data, list):
        data = data[0] if data else None
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return None
    message = err.get("message")
    text = message if isinstance(message, str) and message else str(err.get("status") or "error")
    code = err.get("code")
    status = code if isinstance(code, int) and 400 <= code < 600 else 502
    if status == 429:
        return UpstreamError(text, status=429, retry_after=retry_delay(err))
    if status == 400 and err.get("status") == "FAILED_PRECONDITION":
        # The account's problem (no free tier in its country, billing off), never the request's:
        # a provider failure, so another endpoint is tried and the caller is not told to fix theirs.
        return UpstreamError(f"Gemini cannot serve this account: {text}")
    if status in (400, 413, 422):
        return UpstreamError(text, status=status)
    return UpstreamError(f"Gemini failed with {status}: {text}")


_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def retry_delay(err: dict[str, Any]) -> str | None:
    """The error's `RetryInfo.retryDelay` as whole seconds (rounded up), as a Retry-After value."""
    details = err.get("details")
    for d in details if isinstance(details, list) else ():
        if isinstance(d, dict) and d.get("@type") == _RETRY_INFO:
            delay = d.get("retryDelay")
            if not isinstance(delay, str) or not delay.endswith("s"):
                return None
            try:
                seconds = float(delay[:-1])
            except ValueError:
                return None
            return str(max(1, math.ceil(seconds))) if math.isfinite(seconds) and seconds >= 0 else None
    return None


def http_error(status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamError | None:
    """What Gemini's error body says beyond its status: a 429's Retry-After (when no header gave
    one), a 400 that is the account's failure; None for the rest (the transport maps those by status)."""
    if status not in (400, 429) or (status == 429 and headers.get("retry-after") is not None):
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    first = data[0] if isinstance(data, list) and data else data
    google = first.get("error") if isinstance(first, dict) else None
    if not isinstance(google, dict) or google.get("code") != status:
        return None  # not Google's shape (Vertex's Claude may answer Anthropic's): mapped by status
    err = error_of(first)
    if status == 429:
        return err if err is not None and err.retry_after is not None else None
    return err if google.get("status") == "FAILED_PRECONDITION" else None

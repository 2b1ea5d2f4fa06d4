"""A Converse answer -> canonical (pure): content blocks, stop reason, usage, and Bedrock's errors.

- Reasoning comes back as ThinkingPart with origin "bedrock" (its signature / redacted content is
  signed state, replayed by `request.py`).
- Usage: Converse's `inputTokens` excludes the cache reads and writes, reported beside it as
  `cacheReadInputTokens` / `cacheWriteInputTokens`; canonical `input_tokens` includes them. The
  writes' split by TTL is `cacheDetails: [{ttl: "5m" | "1h", inputTokens}]`.
- Errors: Bedrock answers `{"message": ...}` with the error's type in the `x-amzn-errortype` header
  (`ValidationException:http://…`); in a stream the same types arrive as exception events
  (`throttlingException`, …). `error_for` maps a type to the status a caller gets.
"""

from __future__ import annotations

from typing import Any

import orjson

from keeprouter.errors import UpstreamError, UpstreamTimeout
from keeprouter.formats.canonical import (
    ChatResponse,
    Part,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)

from .request import ORIGIN

STOP: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "model_context_window_exceeded": "max_tokens",
    "malformed_model_output": "error",
    "malformed_tool_use": "error",
}
# error type (lower-cased, "Exception" kept) -> the HTTP status Bedrock gives it, but for one:
# ServiceQuotaExceededException is a 400 from AWS, yet it is this router's account quota, not the
# caller's mistake, so it is a 429 here (another endpoint may serve the request)
ERROR_STATUS: dict[str, int] = {
    "validationexception": 400,
    "servicequotaexceededexception": 429,
    "accessdeniedexception": 403,
    "unrecognizedclientexception": 403,
    "invalidsignatureexception": 403,
    "expiredtokenexception": 403,
    "resourcenotfoundexception": 404,
    "modeltimeoutexception": 408,
    "modelerrorexception": 424,
    "modelstreamerrorexception": 424,
    "throttlingexception": 429,
    "modelnotreadyexception": 429,
    "internalserverexception": 500,
    "serviceunavailableexception": 503,
}


def error_type(header: str | None) -> str:
    """`x-amzn-errortype` -> the bare type: "ValidationException:http://…" -> "ValidationException"."""
    return (header or "").split(":", 1)[0].strip()


def error_for(
    kind: str, message: str, provider: str, *, status: int | None = None, retry_after: str | None = None
) -> UpstreamError:
    """An error of Bedrock type `kind` (header or exception event; `status` the HTTP one, if any)
    as the caller should see it: 400/413/429 keep their status and message; a refused credential
    and a model id Bedrock does not know (404: the endpoint's configured id, never the caller's
    model) are the router's problem (502, so another endpoint is tried); the rest are the upstream
    failing (502, 504)."""
    status = ERROR_STATUS.get(kind.lower(), status or 500)
    meta: dict[str, object] = {"provider_name": provider, "provider_code": status, "error_type": kind}
    if status in (401, 403):
        return UpstreamError(f"provider {provider} rejected KeepRouter's credentials: {message}", metadata=meta)
    if status == 404:
        return UpstreamError(f"provider {provider} does not serve this model: {message}", metadata=meta)
    if status in (400, 413, 429):
        return UpstreamError(message, status=status, retry_after=retry_after, metadata=meta)
    if status == 408:
        return UpstreamTimeout(f"provider {provider} timed out: {message}", metadata=meta)
    if status == 503:
        return UpstreamError(f"provider {provider} is overloaded: {message}", retry_after=retry_after, metadata=meta)
    return UpstreamError(f"provider {provider} failed ({kind or status}): {message}", metadata=meta)


def error_message(payload: bytes) -> str:
    """The `message` of a Bedrock error body (its other casings too), else the text itself."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload[:500].decode("utf-8", "replace").strip()
    if isinstance(data, dict):
        for k in ("message", "Message", "errorMessage"):
            if isinstance(data.get(k), str):
                return str(data[k])
    return ""


def _n(d: dict[str, Any], key: str) -> int:
    v = d.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


def parse_usage(u: object) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    read, write = _n(u, "cacheReadInputTokens"), _n(u, "cacheWriteInputTokens")
    details = u.get("cacheDetails")
    hour = (
        sum(_n(d, "inputTokens") for d in details if isinstance(d, dict) and d.get("ttl") == "1h")
        if isinstance(details, list)
        else 0
    )
    return Usage(
        input_tokens=_n(u, "inputTokens") + read + write,
        output_tokens=_n(u, "outputTokens"),
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=min(hour, write),
    )


def stop_sequence(fields: object) -> str | None:
    """The matched stop sequence, from `additionalModelResponseFields` (Claude, when asked)."""
    seq = fields.get("stop_sequence") if isinstance(fields, dict) else None
    return seq if isinstance(seq, str) else None


def _arguments(value: object) -> str:
    return orjson.dumps(value if isinstance(value, dict) else {}).decode()


def parse_block(b: object) -> Part | None:
    """One Converse content block -> a canonical part (None for kinds canonical does not model)."""
    if not isinstance(b, dict):
        raise UpstreamError("upstream returned a malformed response")
    if isinstance(b.get("text"), str):
        return TextPart(text=b["text"])
    use = b.get("toolUse")
    if isinstance(use, dict):
        return ToolCallPart(
            id=str(use.get("toolUseId") or ""), name=str(use.get("name") or ""), arguments=_arguments(use.get("input"))
        )
    rc = b.get("reasoningContent")
    if isinstance(rc, dict):
        if isinstance(rc.get("redactedContent"), str):
            return ThinkingPart(redacted=rc["redactedContent"], origin=ORIGIN)
        rt = rc.get("reasoningText")
        if isinstance(rt, dict):
            sig = rt.get("signature")
            return ThinkingPart(
                text=str(rt.get("text") or ""), signature=sig if isinstance(sig, str) else None, origin=ORIGIN
            )
    return None


def parse_response(body: dict[str, Any], *, model: str, id: str = "", json_tool: str | None = None) -> ChatResponse:
    """A Converse answer -> canonical. A call of `json_tool` (the structured-output tool) becomes
    the answer's text and the stop end_turn."""
    output = body.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        raise UpstreamError("upstream returned a malformed response")
    parts: list[Part] = []
    for b in content:
        p = parse_block(b)
        if isinstance(p, ToolCallPart) and json_tool is not None and p.name == json_tool:
            p = TextPart(text=p.arguments)
        if p is not None:
            parts.append(p)
    sr = body.get("stopReason")
    stop: StopReason | None = STOP.get(sr, "end_turn") if isinstance(sr, str) else None
    if stop == "tool_use" and not any(isinstance(p, ToolCallPart) for p in parts):
        stop = "end_turn"
    return ChatResponse(
        id=id,
        model=model,
        content=parts,
        stop_reason=stop,
        usage=parse_usage(body.get("usage")),
        stop_sequence=stop_sequence(body.get("additionalModelResponseFields")),
    )

"""A Gemini API upstream (Google AI Studio's native API), written from Google's public API reference.

Routes (``{model}`` is e.g. ``gemini-3-flash-preview``):
``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent`` (``?alt=sse``: server-sent
events, each ``data:`` a whole GenerateContentResponse; without it, one JSON array of them),
``:countTokens`` and ``:batchEmbedContents`` (see ``native_embeddings.py``; scripted Faults apply).

Strict as the real service where KeepRouter could get it wrong (the request checks: ``gemini_rules``):
- the key must come in ``x-goog-api-key`` (a ``?key=`` is accepted, as Google does, and recorded);
- unknown fields in the body, ``generationConfig`` or ``thinkingConfig`` are refused with Google's
  "Invalid JSON payload received" 400, and so are parts with no data or two kinds of data;
- a ``thinkingLevel`` before Gemini 3 or other than low / high on Gemini 3 Pro, and a 2.5 model's
  ``thinkingBudget`` outside its documented range (2.5 Pro 128-32768 and never 0; Flash 0-24576;
  Flash-Lite 0 or 512-24576) are refused with a 400;
- an ``id`` on a ``functionCall`` or ``functionResponse`` sent back is refused ("Unknown name "id" at
  'contents[i].parts[j].function_call'"), as peers report Gemini answering (google-gemini/gemini-cli#13972,
  googleapis/java-genai#694) although the reference lists the field: calls pair with results by name;
- thought signatures, for Gemini 3 models (``gemini-3`` in the name): each answer with function calls
  carries a fresh signature on its FIRST ``functionCall`` part (parallel calls: only the first), an
  answer without calls carries one on its last part (streamed: on an empty-text part of its own).
  A request whose current turn (the model steps since the last user text) has a step whose first
  call lacks the exact signature issued for that call is refused with Gemini's 400; Google's
  documented placeholder ``skip_thought_signature_validator`` is accepted in its place.
Errors are ``{"error": {"code", "message", "status"}}`` (``list_errors=True``: wrapped in a list, as
the streaming endpoint answers them); a 429 adds ``details`` with a ``google.rpc.RetryInfo``
``retryDelay`` (``retry_delay``; None: none), and no Retry-After header, as Google answers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

from aiohttp import web

from . import gemini_rules, native_embeddings
from .base import EmulatedUpstream, Received, StreamPlan, sse
from .script import Fault, Reply, pieces

STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
ERROR_MESSAGES: dict[int, str] = {
    400: "Request contains an invalid argument.",
    403: "Method doesn't allow unregistered callers (callers without established identity).",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred.",
    503: "The model is overloaded. Please try again later.",
}
FINISH: dict[str, str] = {
    "end": "STOP",
    "stop_sequence": "STOP",
    "tool_use": "STOP",
    "max_tokens": "MAX_TOKENS",
    "refusal": "SAFETY",
}
SKIP_SIGNATURE = "skip_thought_signature_validator"
MISSING_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
    "correctly, and missing thought_signature may lead to degraded model performance. Additional data, "
    "function call `default_api:{name}` , position {position}. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)


def quota_details(retry_delay: str) -> list[dict[str, Any]]:
    """A quota 429's `details` as the Gemini API sends them: which quota, and when to retry (Google
    sends no Retry-After header; the delay is a google.rpc.RetryInfo Duration in the body)."""
    return [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
    ]  # fmt: skip


def count_tokens(body: dict[str, Any]) -> int:
    """The emulator's deterministic count: compact JSON length of contents+systemInstruction+tools, // 4."""
    counted = {k: body.get(k) for k in ("contents", "systemInstruction", "tools")}
    return max(1, len(json.dumps(counted, separators=(",", ":"), sort_keys=True)) // 4)


def _raw(signature: Any) -> bytes:
    """A signature's bytes: like Google's JSON parser, either base64 alphabet is read (the SDK sends
    back the URL-safe one)."""
    if not isinstance(signature, str) or not signature:
        return b""
    try:
        return base64.b64decode(signature.replace("-", "+").replace("_", "/"), validate=True)
    except ValueError:
        return b""


def model_of(rec: Received) -> str:
    """The model named in the request's path (``/v1beta/models/{model}:{method}``)."""
    return rec.path.rpartition("/")[2].partition(":")[0]


def _call_key(name: str, args: Any) -> str:
    return name + ":" + json.dumps(args, separators=(",", ":"), sort_keys=True)


class GeminiUpstream(EmulatedUpstream):
    """Gemini API upstream. ``issued`` maps each signature handed out to the call (or answer) it signs."""

    DEFAULT_KEY = "gm-up-gemini"

    def __init__(
        self,
        *,
        expected_key: str | None = DEFAULT_KEY,
        list_errors: bool = False,
        retry_delay: str | None = "17s",
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        super().__init__(expected_key=expected_key, host=host, port=port)
        self.list_errors = list_errors
        self.retry_delay = retry_delay  # a 429's RetryInfo.retryDelay (None: a 429 without details)
        self.issued: dict[bytes, str] = {}  # signature bytes -> "name:args" of the call it signs
        self.add_route("POST", "/v1beta/models/{target}", self._models)

    # ----- handlers -----------------------------------------------------------------------------
    async def _models(self, request: web.Request, rec: Received) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        if method not in ("generateContent", "streamGenerateContent", "countTokens", "batchEmbedContents"):
            return self.error_response(404, f"Method not found: {method or '(none)'}")
        key = rec.header("x-goog-api-key") or rec.query.get("key")
        if self.expected_key is not None and key != self.expected_key:
            return self.error_response(400, "API key not valid. Please pass a valid API key.")
        if not isinstance(rec.body, dict):
            return self.error_response(400, "Invalid JSON payload received.")
        if method == "batchEmbedContents":
            embed_problem = native_embeddings.gemini_batch_problem(rec.body, model)
            if embed_problem is not None:
                return self.error_response(400, embed_problem)
            return await self.generate(request, rec, stream=False)  # rendered by `render`
        if method == "countTokens":
            inner = rec.body.get("generateContentRequest", rec.body)
            rec.completed = True
            return web.json_response({"totalTokens": count_tokens(inner if isinstance(inner, dict) else {})})
        problem = gemini_rules.invalid(rec.body) or gemini_rules.thinking_problem(rec.body, model)
        problem = problem or (self._unsigned(rec.body) if "gemini-3" in model else None)
        if problem is not None:
            return self.error_response(400, problem)
        if method == "streamGenerateContent" and rec.query.get("alt") != "sse":
            return self._json_array(rec)
        return await self.generate(request, rec, stream=method == "streamGenerateContent")

    def _json_array(self, rec: Received) -> web.Response:
        item = self.next_item()
        rec.item = item
        reply = item if isinstance(item, Reply) else self.default_reply()
        plan = self._chunks(reply, rec)
        return web.json_response(plan)

    def _unsigned(self, body: dict[str, Any]) -> str | None:
        """Gemini 3's rule: in the current turn every step's first call carries its exact signature."""
        contents = body.get("contents") or []
        position = sum(len(c.get("parts") or []) for c in contents)
        for content in reversed(contents):
            parts = content.get("parts") or []
            position -= len(parts)
            if content.get("role") != "model":
                if any("text" in p for p in parts):
                    return None
                continue
            for i, part in enumerate(parts):
                call = part.get("functionCall")
                if call is None:
                    continue
                sig = part.get("thoughtSignature")
                signed = self.issued.get(_raw(sig)) == _call_key(call.get("name"), call.get("args"))
                if sig != SKIP_SIGNATURE and not signed:
                    if sig is None:
                        return MISSING_SIGNATURE.format(name=call.get("name"), position=position + i + 1)
                    return "Corrupted thought signature."
                break  # parallel calls: only the first one of a step is signed
        return None

    # ----- rendering ----------------------------------------------------------------------------
    def error_body(self, status: int, message: str | None = None) -> Any:
        err: dict[str, Any] = {
            "code": status,
            "message": message or ERROR_MESSAGES.get(status, "Error"),
            "status": STATUS_NAMES.get(status, "UNKNOWN"),
        }
        if status == 429 and self.retry_delay is not None:
            err["details"] = quota_details(self.retry_delay)
        return [{"error": err}] if self.list_errors else {"error": err}

    def _sign(self, key: str) -> str:
        raw = hashlib.sha256(f"{uuid.uuid4()}|{key}".encode()).digest() * 2
        self.issued[raw] = key
        return base64.b64encode(raw).decode()

    def signed_by_me(self, part: dict[str, Any]) -> bool:
        """Whether a `functionCall` part carries the very signature this server issued for that call
        (Google's placeholder is not)."""
        call = part.get("functionCall") or {}
        return self.issued.get(_raw(part.get("thoughtSignature"))) == _call_key(str(call.get("name")), call.get("args"))

    def issued_signature(self, key_prefix: str) -> str:
        """The signature handed out for the first call whose key starts with ``key_prefix`` ("name:")."""
        return next(base64.b64encode(raw).decode() for raw, key in self.issued.items() if key.startswith(key_prefix))

    def _signed(self, reply: Reply, rec: Received) -> bool:
        return "gemini-3" in model_of(rec) or reply.signature is not None

    def _parts(self, reply: Reply, rec: Received, *, streamed: bool) -> list[list[dict[str, Any]]]:
        """The answer's parts, grouped as the chunks of a stream carry them."""
        groups: list[list[dict[str, Any]]] = []
        if reply.thinking is not None:
            thoughts = list(pieces(reply.thinking, reply.chunk_size)) if streamed else [reply.thinking]
            groups += [[{"text": p, "thought": True}] for p in thoughts]
        if reply.text:
            texts = list(pieces(reply.text, reply.chunk_size)) if streamed else [reply.text]
            groups += [[{"text": p}] for p in texts]
        calls: list[dict[str, Any]] = [
            {"functionCall": {"name": tc.name, "args": tc.input, **({"id": tc.id} if tc.id else {})}}
            for tc in reply.tool_calls
        ]
        if calls:
            if self._signed(reply, rec):
                first = calls[0]["functionCall"]
                calls[0]["thoughtSignature"] = reply.signature or self._sign(_call_key(first["name"], first["args"]))
            groups.append(calls)
        elif self._signed(reply, rec):
            sig = reply.signature or self._sign("answer")
            if streamed or not groups:
                groups.append([{"text": "", "thoughtSignature": sig}])
            else:
                groups[-1][-1]["thoughtSignature"] = sig
        return groups

    def _usage(self, reply: Reply) -> dict[str, Any]:
        prompt = reply.input_tokens + reply.cache_read + reply.cache_write
        u: dict[str, Any] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": reply.output_tokens - reply.reasoning_tokens,
            "totalTokenCount": prompt + reply.output_tokens,
        }
        if reply.reasoning_tokens:
            u["thoughtsTokenCount"] = reply.reasoning_tokens
        if reply.cache_read:
            u["cachedContentTokenCount"] = reply.cache_read
        return u

    def _envelope(self, reply: Reply, rec: Received, rid: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
            "modelVersion": reply.model or model_of(rec),
            "responseId": rid,
        }

    def render(self, reply: Reply, rec: Received) -> dict[str, Any]:
        if rec.path.endswith(":batchEmbedContents"):
            return native_embeddings.render_gemini_batch(rec.body)
        rid = reply.id or uuid.uuid4().hex[:22]
        parts = [p for group in self._parts(reply, rec, streamed=False) for p in group]
        out = self._envelope(reply, rec, rid, parts)
        out["candidates"][0]["finishReason"] = FINISH[reply.stop_kind]
        out["usageMetadata"] = self._usage(reply)
        return out

    def _chunks(self, reply: Reply, rec: Received) -> list[dict[str, Any]]:
        rid = reply.id or uuid.uuid4().hex[:22]
        groups = self._parts(reply, rec, streamed=True) or [[{"text": ""}]]
        chunks = [self._envelope(reply, rec, rid, g) for g in groups]
        prompt_only = {"promptTokenCount": self._usage(reply)["promptTokenCount"]}
        for c in chunks[:-1]:
            c["usageMetadata"] = prompt_only  # the real API repeats usage, complete only at the end
        chunks[-1]["candidates"][0]["finishReason"] = FINISH[reply.stop_kind]
        chunks[-1]["usageMetadata"] = self._usage(reply)
        return chunks

    def plan_stream(self, reply: Reply, fault: Fault, rec: Received) -> StreamPlan:
        events = [sse(c) for c in self._chunks(reply, rec)]
        error = fault.body if isinstance(fault.body, dict) else None
        error_event = error or {"error": {"code": 503, "message": ERROR_MESSAGES[503], "status": "UNAVAILABLE"}}
        return StreamPlan(events=events, error_event=sse(error_event), broken_event=b'data: {"candidates": [\n\n')

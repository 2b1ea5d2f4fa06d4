"""An Anthropic Messages upstream, written from the wire spec (wire-formats §3.5), not from keeprouter.

Routes: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import uuid
from typing import Any

from aiohttp import web

from .base import EmulatedUpstream, Received, StreamPlan, sse
from .script import ANTHROPIC_STOP, Fault, Reply, ToolCall, pieces

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
ERROR_MESSAGES: dict[int, str] = {
    401: "invalid x-api-key",
    429: "Number of request tokens has exceeded your per-minute rate limit",
    500: "Internal server error",
    529: "Overloaded",
}


# Anthropic's 400 for a tool loop whose last assistant turn lost its thinking while thinking is on
MISSING_THINKING = (
    "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. "
    "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
    "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include "
    "thinking blocks from previous turns. To avoid this requirement, disable `thinking`."
)
INVALID_SIGNATURE = "messages.{i}.content.{j}: Invalid `signature` in `thinking` block"


def _creation(reply: Reply) -> dict[str, int]:
    """Anthropic's split of the cache writes by TTL."""
    return {
        "ephemeral_5m_input_tokens": reply.cache_write - reply.cache_write_1h,
        "ephemeral_1h_input_tokens": reply.cache_write_1h,
    }


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def count_tokens(body: dict[str, Any]) -> int:
    """The emulator's deterministic token count: compact JSON length of system+messages+tools, // 4.

    Every block type counts (tool_use, tool_result, thinking, tool schemas), unlike buggy counters.
    """
    counted = {k: body.get(k) for k in ("system", "messages", "tools")}
    return max(1, len(json.dumps(counted, separators=(",", ":"), sort_keys=True)) // 4)


class AnthropicUpstream(EmulatedUpstream):
    """Anthropic Messages upstream.

    Auth: ``x-api-key`` (or ``Authorization: Bearer``) must equal ``expected_key`` (None: any).
    ``anthropic-version`` is required (400 otherwise). A forced tool choice is answered with that
    tool's call (see ``_forced``). With ``validate`` the body must have
    ``model``/``max_tokens``/``messages`` and every ``tool_use`` must be answered by ``tool_result``
    blocks in the next user message, as the real API enforces.

    Thinking is signed: a signature is an HMAC of the thinking text under this server's own key
    (a scripted ``Reply.signature`` is honoured and remembered as issued), and redacted_thinking data
    is remembered as issued. With ``verify_thinking`` a request is refused as the real API refuses
    it: a thinking block whose signature this server did not issue for exactly that text, a
    redacted_thinking block it did not issue, and, with thinking on, a tool loop whose last
    assistant turn does not start with its thinking.
    """

    DEFAULT_KEY = "sk-up-anthropic"

    def __init__(
        self,
        *,
        expected_key: str | None = DEFAULT_KEY,
        validate: bool = True,
        verify_thinking: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        super().__init__(expected_key=expected_key, host=host, port=port)
        self.validate = validate
        self.verify_thinking = verify_thinking
        self._secret = uuid.uuid4().bytes
        self.issued: dict[str, str] = {}  # signature -> the thinking text it signs
        self.redacted_issued: set[str] = set()
        self.add_route("POST", "/v1/messages", self._messages)
        self.add_route("POST", "/v1/messages/count_tokens", self._count_tokens)

    # ----- handlers -----------------------------------------------------------------------------
    async def _messages(self, request: web.Request, rec: Received) -> web.StreamResponse:
        rejected = self._check(rec, need_max_tokens=True)
        if rejected is not None:
            return rejected
        return await self.generate(request, rec, stream=rec.stream)

    async def _count_tokens(self, request: web.Request, rec: Received) -> web.StreamResponse:
        rejected = self._check(rec, need_max_tokens=False)
        if rejected is not None:
            return rejected
        assert isinstance(rec.body, dict)
        rec.completed = True
        return web.json_response({"input_tokens": count_tokens(rec.body)}, headers=self.response_headers())

    def _check(self, rec: Received, *, need_max_tokens: bool) -> web.Response | None:
        if self.expected_key is not None:
            key = rec.api_key
            if not key:
                return self.error_response(401, "x-api-key header is required")
            if key != self.expected_key:
                return self.error_response(401)
        if not rec.header("anthropic-version"):
            return self.error_response(400, "anthropic-version: header is required")
        if not isinstance(rec.body, dict):
            return self.error_response(400, "There was an error parsing the body of your request.")
        if self.validate:
            problem = _invalid(rec.body, need_max_tokens=need_max_tokens)
            if problem is not None:
                return self.error_response(400, problem)
        if self.verify_thinking and need_max_tokens:
            problem = self._thinking_problem(rec.body)
            if problem is not None:
                return self.error_response(400, problem)
        return None

    def sign(self, thinking: str) -> str:
        """This server's signature of `thinking` (base64 of an HMAC, as opaque as the real one)."""
        mac = hmac.new(self._secret, thinking.encode(), hashlib.sha256).digest()
        return base64.b64encode(b"EmuSig" + mac).decode()

    def _thinking_problem(self, body: dict[str, Any]) -> str | None:
        messages = body.get("messages") or []
        for i, msg in enumerate(messages):
            content = msg.get("content") if msg.get("role") == "assistant" else None
            for j, b in enumerate(content if isinstance(content, list) else ()):
                if b.get("type") == "thinking" and self.issued.get(str(b.get("signature"))) != b.get("thinking"):
                    return INVALID_SIGNATURE.format(i=i, j=j)
                if b.get("type") == "redacted_thinking" and b.get("data") not in self.redacted_issued:
                    return f"messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block"
        thinking = body.get("thinking")
        if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive"):
            return None
        # the tool loop in progress: the last message answers tool calls of the assistant turn before it
        if len(messages) < 2 or not _ids(messages[-1], "tool_result", "tool_use_id"):
            return None
        i = len(messages) - 2
        content = messages[i].get("content")
        first = content[0].get("type") if isinstance(content, list) and content else "text"
        if first not in ("thinking", "redacted_thinking"):
            return MISSING_THINKING.format(i=i, found=first)
        return None

    # ----- rendering ----------------------------------------------------------------------------
    def response_headers(self) -> dict[str, str]:
        return {"request-id": f"req_{uuid.uuid4().hex[:24]}"}

    def error_body(self, status: int, message: str | None = None) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": error_type(status), "message": message or ERROR_MESSAGES.get(status, "Error")},
            "request_id": f"req_{uuid.uuid4().hex[:24]}",
        }

    def _blocks(self, reply: Reply) -> list[dict[str, Any]]:
        """Final content blocks, in order: redacted_thinking, thinking, text, tool_use…"""
        blocks: list[dict[str, Any]] = []
        if reply.redacted is not None:
            self.redacted_issued.add(reply.redacted)
            blocks.append({"type": "redacted_thinking", "data": reply.redacted})
        if reply.thinking is not None:
            signature = reply.signature if reply.signature is not None else self.sign(reply.thinking)
            self.issued[signature] = reply.thinking
            blocks.append({"type": "thinking", "thinking": reply.thinking, "signature": signature})
        if reply.text is not None:
            blocks.append({"type": "text", "text": reply.text})
        for tc in reply.tool_calls:
            call_id = tc.id or f"toolu_{uuid.uuid4().hex[:24]}"
            blocks.append({"type": "tool_use", "id": call_id, "name": tc.name, "input": tc.input})
        return blocks

    @staticmethod
    def _message(reply: Reply, rec: Received, content: list[dict[str, Any]]) -> dict[str, Any]:
        stop = reply.stop_kind
        return {
            "id": reply.id or f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": reply.model or rec.model or "unknown",
            "content": content,
            "stop_reason": ANTHROPIC_STOP[stop],
            "stop_sequence": reply.stop_sequence if stop == "stop_sequence" else None,
            "usage": {
                "input_tokens": reply.input_tokens,
                "cache_creation_input_tokens": reply.cache_write,
                "cache_read_input_tokens": reply.cache_read,
                "cache_creation": _creation(reply),
                "output_tokens": reply.output_tokens,
                "service_tier": "standard",
            },
        }

    @staticmethod
    def _forced(reply: Reply, rec: Received) -> Reply:
        """The real API answers a forced ``tool_choice: {"type": "tool", "name"}`` with that tool's
        call and no text: a scripted reply whose text is JSON becomes the call, with it as input."""
        choice = rec.body.get("tool_choice") if isinstance(rec.body, dict) else None
        if not isinstance(choice, dict) or choice.get("type") != "tool" or reply.tool_calls or not reply.text:
            return reply
        try:
            args = json.loads(reply.text)
        except ValueError:
            return reply
        return dataclasses.replace(reply, text=None, tool_calls=[ToolCall(None, str(choice.get("name")), args)])

    def render(self, reply: Reply, rec: Received) -> dict[str, Any]:
        reply = self._forced(reply, rec)
        return self._message(reply, rec, self._blocks(reply))

    def plan_stream(self, reply: Reply, fault: Fault, rec: Received) -> StreamPlan:
        reply = self._forced(reply, rec)
        final = self._message(reply, rec, [])
        start = {
            **final,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": reply.input_tokens,
                "cache_creation_input_tokens": reply.cache_write,
                "cache_read_input_tokens": reply.cache_read,
                "cache_creation": _creation(reply),
                "output_tokens": 1,
            },
        }
        events = [sse({"type": "message_start", "message": start}, "message_start")]
        for index, block in enumerate(self._blocks(reply)):
            events.extend(_block_events(index, block, reply))
        # the real API pings right after the first content_block_start (or after message_start)
        events.insert(2 if len(events) > 1 else 1, sse({"type": "ping"}, "ping"))
        delta = {"stop_reason": final["stop_reason"], "stop_sequence": final["stop_sequence"]}
        usage = {"output_tokens": reply.output_tokens}
        events.append(sse({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta"))
        events.append(sse({"type": "message_stop"}, "message_stop"))

        error = fault.body if isinstance(fault.body, dict) else None
        error_event = {
            "type": "error",
            "error": error or {"type": "overloaded_error", "message": "Overloaded"},
        }
        broken = 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{\n\n'
        return StreamPlan(events=events, error_event=sse(error_event, "error"), broken_event=broken.encode())


def _block_events(index: int, block: dict[str, Any], reply: Reply) -> list[bytes]:
    """content_block_start, its deltas and content_block_stop for one final block."""
    kind = block["type"]
    if kind == "thinking":
        opening: dict[str, Any] = {"type": "thinking", "thinking": ""}
        deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces(block["thinking"], reply.chunk_size)]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "redacted_thinking":
        opening, deltas = block, []
    elif kind == "text":
        opening = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in pieces(block["text"], reply.chunk_size)]
    else:
        opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        arguments = json.dumps(block["input"], separators=(",", ":"))
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces(arguments, reply.args_chunk)]
    out = [sse({"type": "content_block_start", "index": index, "content_block": opening}, "content_block_start")]
    out += [sse({"type": "content_block_delta", "index": index, "delta": d}, "content_block_delta") for d in deltas]
    out.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    return out


def _invalid(body: dict[str, Any], *, need_max_tokens: bool) -> str | None:
    """The validation errors a real Messages API returns for malformed requests we care about."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if need_max_tokens and (not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1):
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: Field required"
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in {"user", "assistant"}:
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        used = _ids(msg, "tool_use", "id") if msg["role"] == "assistant" else set()
        answered = _ids(messages[i + 1], "tool_result", "tool_use_id") if i + 1 < len(messages) else set()
        if used - answered:
            return (
                f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(sorted(used - answered))}"
            )
        if msg["role"] == "user" and i > 0:
            previous = _ids(messages[i - 1], "tool_use", "id")
            stray = _ids(msg, "tool_result", "tool_use_id") - previous
            if stray:
                found = min(stray)
                return f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {found}"
    last = messages[-1]
    if last.get("role") == "assistant" and _ends_in_blank(last.get("content")):  # a prefill
        return "messages: final assistant content cannot end with trailing whitespace"
    return None


def _ends_in_blank(content: Any) -> bool:
    if isinstance(content, str):
        return content != content.rstrip()
    if isinstance(content, list) and content and isinstance(content[-1], dict):
        text = content[-1].get("text") if content[-1].get("type") == "text" else None
        return isinstance(text, str) and text != text.rstrip()
    return False


def _ids(message: Any, block_type: str, key: str) -> set[str]:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return set()
    return {str(b.get(key)) for b in content if isinstance(b, dict) and b.get("type") == block_type}

"""An AWS Bedrock Runtime upstream (Converse / ConverseStream), written from AWS's API reference and
the event-stream encoding spec, not from keeprouter.

Routes: ``POST /model/{modelId}/converse`` (JSON), ``POST /model/{modelId}/converse-stream`` (a
binary ``application/vnd.amazon.eventstream`` body, encoded here with its own CRCs) and
``POST /model/{modelId}/invoke`` for the Titan and Cohere embedding models (``native_embeddings.py``).

Auth as AWS checks it: a SigV4 ``Authorization`` header is verified by recomputing the signature with
botocore from the request as received (raw path, signed headers, body, ``x-amz-date``) and the test
secret; a wrong signature, an unknown key id, a wrong region or signing name, or a missing or wrong
``x-amz-security-token`` get 403 with ``x-amzn-ErrorType``. ``Authorization: Bearer`` is a Bedrock
API key, compared with ``api_key``.

CountTokens counts for foundation models only: an inference profile (``us.anthropic.claude-…`` or a
profile ARN) is refused with a ValidationException, as AWS documents and answers.
"""

from __future__ import annotations

import binascii
import dataclasses
import hmac
import json
import re
import struct
import uuid
from typing import Any

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from . import native_embeddings
from .base import EmulatedUpstream, Received, StreamPlan
from .bedrock_thinking import MODEL_ERRORS, as_messages, claude
from .script import Fault, Reply, ToolCall, pieces

ACCESS_KEY = "AKIDKEEPROUTERTEST01"
SECRET_KEY = "kr-test-secret/0123456789abcdefghijklmnopqrstu"
API_KEY = "bedrock-api-key-test-0123456789"
REGION = "us-east-1"

STOP = {
    "end": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "refusal": "content_filtered",
}
ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
ERROR_MESSAGES = {
    429: "Too many requests, please wait before trying again.",
    500: "The system encountered an unexpected error during processing. Try your request again.",
    503: "Bedrock is unable to process your request.",
}
BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})")
_BLOCK_KEYS = {
    "text",
    "image",
    "document",
    "toolUse",
    "toolResult",
    "reasoningContent",
    "cachePoint",
    "guardContent",
    "video",
}
_BODY_KEYS = {
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "promptVariables",
    "requestMetadata",
    "performanceConfig",
    "serviceTier",
}


# ----- the event-stream encoding ----------------------------------------------------------------


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (lengths + CRC), string headers, payload, message CRC."""
    encoded = b""
    for name, value in headers.items():
        n, v = name.encode(), value.encode()
        encoded += bytes([len(n)]) + n + b"\x07" + len(v).to_bytes(2, "big") + v
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + encoded + payload
    return body + struct.pack(">I", binascii.crc32(body) & 0xFFFFFFFF)


def event(kind: str, data: dict[str, Any]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, json.dumps(data, separators=(",", ":")).encode())


def exception(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, json.dumps({"message": message}).encode())


# ----- the server -------------------------------------------------------------------------------


class BedrockUpstream(EmulatedUpstream):
    DEFAULT_KEY = API_KEY

    def __init__(
        self,
        *,
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
        session_token: str | None = None,
        api_key: str | None = API_KEY,
        region: str = REGION,
        validate: bool = True,
        verify_thinking: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        super().__init__(expected_key=api_key, host=host, port=port)
        self.access_key, self.secret_key, self.session_token = access_key, secret_key, session_token
        self.region = region
        self.validate = validate
        # With `verify_thinking`, thinking is signed and checked as Claude does behind Converse (the
        # Anthropic emulator's signer and rule, never started; see bedrock_thinking).
        self.claude = claude(verify_thinking)
        self.add_route("POST", "/model/{model}/converse", self._converse)
        self.add_route("POST", "/model/{model}/converse-stream", self._converse_stream)
        self.add_route("POST", "/model/{model}/count-tokens", self._count_tokens)
        self.add_route("POST", "/model/{model}/invoke", self._invoke)

    async def _invoke(self, request: web.Request, rec: Received) -> web.StreamResponse:
        """InvokeModel for the embedding models; scripted Faults apply."""
        rejected = self._authorize(request, rec)
        if rejected is not None:
            return rejected
        model = request.match_info["model"]
        problem = native_embeddings.bedrock_invoke_problem(rec.body, model)
        if problem is not None:
            return self.error_response(400, problem)
        resp = await self.generate(request, rec, stream=False)
        if resp.status == 200 and "cohere.embed" in model:
            _, tokens = native_embeddings.render_bedrock_invoke(rec.body, model)
            resp.headers[native_embeddings.BEDROCK_TOKEN_HEADER] = str(tokens)
        return resp

    async def _converse(self, request: web.Request, rec: Received) -> web.StreamResponse:
        return await self._answer(request, rec, stream=False)

    async def _converse_stream(self, request: web.Request, rec: Received) -> web.StreamResponse:
        return await self._answer(request, rec, stream=True)

    async def _count_tokens(self, request: web.Request, rec: Received) -> web.StreamResponse:
        """CountTokens: ``{"input": {"converse": {messages, system, toolConfig, …}}}`` ->
        ``{"inputTokens"}``, the compact JSON length of that input // 4 (deterministic)."""
        rejected = self._authorize(request, rec)
        if rejected is not None:
            return rejected
        if not _COUNTED_MODEL.fullmatch(request.match_info["model"]):  # a profile, not a foundation model
            return self.error_response(400, "The provided model doesn't support counting tokens.")
        converse = rec.body.get("input", {}).get("converse") if isinstance(rec.body, dict) else None
        problem = invalid(converse) if isinstance(converse, dict) and self.validate else None
        if not isinstance(converse, dict) or problem is not None:
            return self.error_response(400, problem or "The provided request is not valid")
        rec.completed = True
        n = max(1, len(json.dumps(converse, separators=(",", ":"), sort_keys=True)) // 4)
        return web.json_response({"inputTokens": n}, headers=self.response_headers())

    async def _answer(self, request: web.Request, rec: Received, *, stream: bool) -> web.StreamResponse:
        rejected = self._authorize(request, rec)
        if rejected is not None:
            return rejected
        if not isinstance(rec.body, dict):
            return self.error_response(400, "Malformed input request, please reformat your input and try again.")
        if self.validate and (problem := invalid(rec.body)) is not None:
            return self.error_response(400, problem)
        if self.validate and _one_hour_points(rec.body) and not _ONE_HOUR_MODELS.search(request.match_info["model"]):
            return self.error_response(400, "The model does not support a cachePoint ttl of 1h.")
        if self.claude.verify_thinking and (problem := self.claude._thinking_problem(as_messages(rec.body))):
            return self.error_response(400, MODEL_ERRORS + problem)
        return await self.generate(request, rec, stream=stream)

    # ----- auth ---------------------------------------------------------------------------------
    def _authorize(self, request: web.Request, rec: Received) -> web.Response | None:
        auth = rec.header("authorization") or ""
        if auth.lower().startswith("bearer "):
            if self.expected_key is not None and auth[7:].strip() == self.expected_key:
                return None
            return self._denied("UnrecognizedClientException", "The security token included in the request is invalid.")
        m = _AUTH.fullmatch(auth.strip())
        if m is None:
            return self._denied("MissingAuthenticationTokenException", "Missing Authentication Token")
        credential, signed, signature = m.groups()
        key_id, _, scope = credential.partition("/")
        date = rec.header("x-amz-date") or ""
        if key_id != self.access_key:
            return self._denied("UnrecognizedClientException", "The security token included in the request is invalid.")
        if scope != f"{date[:8]}/{self.region}/bedrock/aws4_request":
            return self._denied("InvalidSignatureException", f"Credential should be scoped correctly: {scope}")
        if self.session_token is not None and rec.header("x-amz-security-token") != self.session_token:
            return self._denied("UnrecognizedClientException", "The security token included in the request is invalid.")
        names = signed.split(";")
        if "host" not in names or any(rec.header(n) is None for n in names):
            return self._denied("InvalidSignatureException", BAD_SIGNATURE)
        expected = self.signature(
            request.method,
            f"http://{rec.header('host')}{request.raw_path}",
            {n: rec.header(n) or "" for n in names},
            rec.raw,
            date,
        )
        if not hmac.compare_digest(expected, signature):
            return self._denied("InvalidSignatureException", BAD_SIGNATURE)
        return None

    def signature(self, method: str, url: str, headers: dict[str, str], body: bytes, amz_date: str) -> str:
        """SigV4 recomputed from the request as received, with botocore and the test secret."""
        req = AWSRequest(method=method, url=url, data=body, headers=headers)
        req.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(self.access_key, self.secret_key, self.session_token), "bedrock", self.region)
        canonical = signer.canonical_request(req)
        result: str = signer.signature(signer.string_to_sign(req, canonical), req)
        return result

    def _denied(self, kind: str, message: str) -> web.Response:
        return web.json_response(
            {"message": message},
            status=403,
            headers={
                **self.response_headers(),
                "x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.coral.service/",
            },
        )

    # ----- rendering ----------------------------------------------------------------------------
    def response_headers(self) -> dict[str, str]:
        return {"x-amzn-RequestId": str(uuid.uuid4())}

    def error_body(self, status: int, message: str | None = None) -> dict[str, Any]:
        return {"message": message or ERROR_MESSAGES.get(status, "Error")}

    def error_response(self, status: int, message: str | None = None, **extra: str) -> web.Response:
        extra.setdefault(
            "x-amzn-ErrorType",
            f"{ERROR_TYPES.get(status, 'InternalServerException')}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        )
        return super().error_response(status, message, **extra)

    def _fault_response(self, fault: Fault, headers: dict[str, str]) -> web.Response:
        assert fault.status is not None
        if not any(k.lower() == "x-amzn-errortype" for k in headers):
            headers = {**headers, "x-amzn-ErrorType": ERROR_TYPES.get(fault.status, "InternalServerException")}
        return super()._fault_response(fault, headers)

    async def _stream(
        self, request: web.Request, rec: Received, reply: Reply, fault: Fault, headers: dict[str, str]
    ) -> web.StreamResponse:
        headers = {**headers, "content-type": "application/vnd.amazon.eventstream"}
        return await super()._stream(request, rec, reply, fault, headers)

    @staticmethod
    def _forced(reply: Reply, rec: Received) -> Reply:
        """A forced ``toolChoice: {tool: {name}}`` is answered with that tool's call: a scripted reply
        whose text is JSON becomes the call, with it as input (as the real models do)."""
        config = rec.body.get("toolConfig") if isinstance(rec.body, dict) else None
        choice = config.get("toolChoice") if isinstance(config, dict) else None
        forced = choice.get("tool") if isinstance(choice, dict) else None
        if not isinstance(forced, dict) or reply.tool_calls or not reply.text:
            return reply
        try:
            args = json.loads(reply.text)
        except ValueError:
            return reply
        return dataclasses.replace(reply, text=None, tool_calls=[ToolCall(None, str(forced.get("name")), args)])

    def _blocks(self, reply: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if reply.thinking is not None:
            signature = reply.thinking_signature
            if self.claude.verify_thinking:
                signature = reply.signature or self.claude.sign(reply.thinking)
                self.claude.issued[signature] = reply.thinking
            text = {"text": reply.thinking, "signature": signature}
            blocks.append({"reasoningContent": {"reasoningText": text}})
        if reply.text is not None:
            blocks.append({"text": reply.text})
        for tc in reply.tool_calls:
            use = {"toolUseId": tc.id or f"tooluse_{uuid.uuid4().hex[:22]}", "name": tc.name, "input": tc.input}
            blocks.append({"toolUse": use})
        return blocks

    @staticmethod
    def _usage(reply: Reply) -> dict[str, Any]:
        u: dict[str, Any] = {
            "inputTokens": reply.input_tokens,
            "outputTokens": reply.output_tokens,
            "totalTokens": reply.prompt_tokens + reply.output_tokens,
        }
        if reply.cache_read or reply.cache_write:
            u |= {"cacheReadInputTokens": reply.cache_read, "cacheWriteInputTokens": reply.cache_write}
        if reply.cache_write:  # the writes by TTL (TokenUsage.cacheDetails)
            split = (("5m", reply.cache_write - reply.cache_write_1h), ("1h", reply.cache_write_1h))
            u["cacheDetails"] = [{"ttl": ttl, "inputTokens": n} for ttl, n in split if n]
        return u

    @staticmethod
    def _fields(reply: Reply, rec: Received) -> dict[str, Any]:
        """``additionalModelResponseFields``: the matched stop sequence when the request asked for it."""
        paths = rec.body.get("additionalModelResponseFieldPaths") if isinstance(rec.body, dict) else None
        if reply.stop_kind == "stop_sequence" and isinstance(paths, list) and "/stop_sequence" in paths:
            return {"additionalModelResponseFields": {"stop_sequence": reply.stop_sequence}}
        return {}

    def render(self, reply: Reply, rec: Received) -> dict[str, Any]:
        if rec.path.endswith("/invoke"):
            return native_embeddings.render_bedrock_invoke(rec.body, rec.path.split("/")[-2])[0]
        reply = self._forced(reply, rec)
        return {
            "output": {"message": {"role": "assistant", "content": self._blocks(reply)}},
            "stopReason": STOP[reply.stop_kind],
            "usage": self._usage(reply),
            "metrics": {"latencyMs": 42},
            **self._fields(reply, rec),
        }

    def plan_stream(self, reply: Reply, fault: Fault, rec: Received) -> StreamPlan:
        reply = self._forced(reply, rec)
        events = [event("messageStart", {"role": "assistant", "p": "abcdefghijklmnopq"})]
        for index, block in enumerate(self._blocks(reply)):
            events.extend(_block_events(index, block, reply))
        events.append(event("messageStop", {"stopReason": STOP[reply.stop_kind], **self._fields(reply, rec)}))
        events.append(event("metadata", {"usage": self._usage(reply), "metrics": {"latencyMs": 42}, "p": "ab"}))
        error = fault.body if isinstance(fault.body, dict) else {}
        error_event = exception(
            str(error.get("type") or "modelStreamErrorException"),
            str(error.get("message") or "The model stream failed."),
        )
        broken = bytearray(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}}))
        broken[-1] ^= 0xFF  # a message CRC that does not match
        return StreamPlan(events=events, error_event=error_event, broken_event=bytes(broken))


def _block_events(index: int, block: dict[str, Any], reply: Reply) -> list[bytes]:
    out: list[bytes] = []
    if "toolUse" in block:
        use = block["toolUse"]
        start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
        out.append(event("contentBlockStart", {"contentBlockIndex": index, "start": start}))
        arguments = json.dumps(use["input"], separators=(",", ":"))
        deltas: list[dict[str, Any]] = [{"toolUse": {"input": p}} for p in pieces(arguments, reply.args_chunk)]
    elif "reasoningContent" in block:
        text = block["reasoningContent"]["reasoningText"]
        deltas = [{"reasoningContent": {"text": p}} for p in pieces(text["text"], reply.chunk_size)]
        deltas.append({"reasoningContent": {"signature": text["signature"]}})
    else:
        deltas = [{"text": p} for p in pieces(block["text"], reply.chunk_size)]
    out += [event("contentBlockDelta", {"contentBlockIndex": index, "delta": d}) for d in deltas]
    out.append(event("contentBlockStop", {"contentBlockIndex": index}))
    return out


def invalid(body: dict[str, Any]) -> str | None:
    """The validation errors Converse returns for the malformed requests we care about."""
    for k in body:
        if k not in _BODY_KEYS:
            return f"Malformed input request: extraneous key [{k}] is not permitted, please reformat your input and try again."  # noqa: E501
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "A conversation must start with a user message. Try again with a conversation that starts with a user message."  # noqa: E501
    has_tool_blocks = False
    if isinstance(messages[0], dict) and messages[0].get("role") == "assistant":
        return "A conversation must start with a user message. Try again with a conversation that starts with a user message."  # noqa: E501
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Member must satisfy enum value set: [user, assistant]"
        if (msg["role"] == "user") != (i % 2 == 0):
            return "A conversation must alternate between user and assistant roles."
        content = msg.get("content")
        if not isinstance(content, list) or not content:
            return f"messages.{i}.content: Member must have length greater than or equal to 1"
        for j, b in enumerate(content):
            if not isinstance(b, dict) or len(b) != 1 or next(iter(b)) not in _BLOCK_KEYS:
                return f"messages.{i}.content.{j}: a content block must have exactly one known member"
            if "text" in b and not str(b["text"]).strip():
                return f"The text field in the ContentBlock object at messages.{i}.content.{j} is blank."
            result = b.get("toolResult")
            if isinstance(result, dict) and (
                not result.get("content") or any("text" in c and not str(c["text"]).strip() for c in result["content"])
            ):
                return f"The content field in the ToolResult object at messages.{i}.content.{j} is blank."
            problem = _block_problem(b, f"messages.{i}.content.{j}")
            if problem is not None:
                return problem
            rc = b.get("reasoningContent")
            if isinstance(rc, dict) and "reasoningText" in rc and not isinstance(rc["reasoningText"].get("text"), str):
                return f"messages.{i}.content.{j}.reasoningContent.reasoningText.text: Member must not be null"
            ids = [x.get("toolUseId") for x in (b.get("toolUse"), b.get("toolResult")) if isinstance(x, dict)]
            if any(not isinstance(t, str) or _TOOL_USE_ID.fullmatch(t) is None for t in ids):
                return f"1 validation error detected: Value at 'messages.{i + 1}.member.content.{j + 1}.member.toolUse.toolUseId' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.:-]+ and length less than or equal to 64"  # noqa: E501
            has_tool_blocks = has_tool_blocks or "toolUse" in b or "toolResult" in b
        used = {b["toolUse"]["toolUseId"] for b in content if "toolUse" in b} if msg["role"] == "assistant" else set()
        following = messages[i + 1].get("content", []) if i + 1 < len(messages) else []
        answered = {b["toolResult"]["toolUseId"] for b in following if isinstance(b, dict) and "toolResult" in b}
        if used - answered:
            return (
                f"Expected toolResult blocks at messages.{i + 1}.content for the following Ids: "
                f"{', '.join(sorted(used - answered))}"
            )
    if has_tool_blocks and not body.get("toolConfig"):
        return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
    for at, block in enumerate(body.get("system") or []):
        problem = _block_problem(block, f"system.{at}") if isinstance(block, dict) else None
        if problem is not None:
            return problem
    config = body.get("toolConfig")
    if config is not None:
        tools = config.get("tools") if isinstance(config, dict) else None
        if not isinstance(tools, list) or not tools:
            return "toolConfig.tools: Member must have length greater than or equal to 1"
        for n, t in enumerate(tools):
            spec = t.get("toolSpec") if isinstance(t, dict) else None
            if "cachePoint" in t:
                problem = _block_problem(t, f"toolConfig.tools.{n}")
                if problem is not None:
                    return problem
                continue
            if not isinstance(spec, dict) or not spec.get("name") or "json" not in (spec.get("inputSchema") or {}):
                return f"toolConfig.tools.{n}.toolSpec: name and inputSchema.json are required"
            if _TOOL_NAME.fullmatch(str(spec["name"])) is None:
                return f"1 validation error detected: Value at 'toolConfig.tools.{n + 1}.member.toolSpec.name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+ and length less than or equal to 64"  # noqa: E501
            if "description" in spec and not spec["description"]:  # NonEmptyString
                return f"toolConfig.tools.{n}.toolSpec.description: Member must have length greater than or equal to 1"
    inference = body.get("inferenceConfig") or {}
    unknown = set(inference) - {"maxTokens", "temperature", "topP", "stopSequences"}
    if unknown:
        return f"Malformed input request: extraneous key [{sorted(unknown)[0]}] is not permitted"
    for name, low, high in (("maxTokens", 1, None), ("temperature", 0, 1), ("topP", 0, 1)):
        v = inference.get(name)
        if v is not None and (not isinstance(v, int | float) or v < low or (high is not None and v > high)):
            return f"1 validation error detected: Value '{v}' at 'inferenceConfig.{name}' failed to satisfy constraint: Member must be {f'between {low} and {high}' if high is not None else f'at least {low}'}"  # noqa: E501
    for n, seq in enumerate(inference.get("stopSequences") or []):
        if not isinstance(seq, str) or not seq:  # a list of NonEmptyString
            return f"1 validation error detected: Value at 'inferenceConfig.stopSequences.{n}' failed to satisfy constraint: Member must have length greater than or equal to 1"  # noqa: E501
    return None


# DocumentBlock.name: letters, digits, hyphens, parentheses, square brackets, single whitespace
_DOCUMENT_NAME = re.compile(r"(?!.*\s\s)[A-Za-z0-9()\[\]\s-]+")
# CountTokens takes a foundation model's id or ARN: not a cross-region profile (`us.anthropic.…`)
_COUNTED_MODEL = re.compile(
    r"(?:arn:aws[^:]*:bedrock:[a-z0-9-]+::foundation-model/)?(?![a-z]{2,6}(?:-gov)?\.[a-z0-9-]+\.)[a-z0-9-]+\.[a-z0-9.:-]+"
)
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")  # ToolName
_TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_.:-]{1,64}")  # ToolUseId
_DOCUMENT_FORMATS = {"pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md"}


# one-hour cache points: Claude Opus, Sonnet and Haiku 4.5 and later
_ONE_HOUR_MODELS = re.compile(r"claude-(?:opus|sonnet|haiku)-(?:4-[5-9](?!\d)|[5-9](?!\d))")


def _one_hour_points(body: dict[str, Any]) -> bool:
    blocks = [b for m in body.get("messages") or [] if isinstance(m, dict) for b in m.get("content") or []]
    blocks += list(body.get("system") or []) + list((body.get("toolConfig") or {}).get("tools") or [])
    return any(isinstance(b, dict) and (b.get("cachePoint") or {}).get("ttl") == "1h" for b in blocks)


def _block_problem(b: dict[str, Any], where: str) -> str | None:
    """What Converse refuses in a `document` or `cachePoint` block (in messages, system or tools)."""
    doc = b.get("document")
    if isinstance(doc, dict):
        name = doc.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 200 or _DOCUMENT_NAME.fullmatch(name) is None:
            return (
                "The document file name can only contain alphanumeric characters, whitespace characters, hyphens, "
                "parentheses, and square brackets. The name can't contain more than one consecutive whitespace "
                "character."
            )
        if doc.get("format", "txt") not in _DOCUMENT_FORMATS:
            return f"{where}.document.format: Member must satisfy enum value set: {sorted(_DOCUMENT_FORMATS)}"
    point = b.get("cachePoint")
    if point is not None:
        if not isinstance(point, dict) or point.get("type") != "default":
            return f"{where}.cachePoint.type: Member must satisfy enum value set: [default]"
        if set(point) - {"type", "ttl"}:
            return (
                f"Malformed input request: extraneous key [{sorted(set(point) - {'type', 'ttl'})[0]}] is not permitted"
            )
        if "ttl" in point and point["ttl"] not in ("5m", "1h"):
            return f"{where}.cachePoint.ttl: Member must satisfy enum value set: [5m, 1h]"
    return None

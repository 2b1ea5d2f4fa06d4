"""An OpenAI-compatible upstream (Chat Completions), written from the wire spec, not from keeprouter.

Routes: ``POST {prefix}/chat/completions``, ``POST {prefix}/embeddings``, ``POST {prefix}/rerank`` and
``GET {prefix}/models`` (prefix default ``/v1``); embeddings and rerank answers are in ``embeddings.py``.
Quirk flags reproduce real hosts that deviate from OpenAI (see the constructor).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from aiohttp import web

from . import embeddings
from .base import EmulatedUpstream, Received, StreamPlan, sse
from .script import OPENAI_FINISH, Fault, Reply, pieces

ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    409: ("invalid_request_error", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}
# DeepSeek's answer (400, invalid_request_error) to a thinking-mode tool loop missing its reasoning
DEEPSEEK_REASONING_MISSING = "The reasoning_content in the thinking mode must be passed back to the API."
ERROR_MESSAGES: dict[int, str] = {
    401: "Incorrect API key provided.",
    404: "The model does not exist or you do not have access to it.",
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The engine is currently overloaded, please try again later.",
}


class OpenAIUpstream(EmulatedUpstream):
    """OpenAI Chat Completions upstream.

    Quirks (all off by default = plain OpenAI):
    - ``reasoning_field``: where ``Reply.thinking`` goes (``message.<field>`` / ``delta.<field>``).
    - ``usage_in_last_choice_chunk``: usage rides on the finish_reason chunk (non-empty choices), always
      sent, no separate usage chunk (BerriAI/litellm#36168).
    - ``repeat_tool_id``: every tool-call fragment repeats ``id`` and ``type`` (BerriAI/litellm#20480).
    - ``empty_tool_calls_list``: text deltas carry ``"tool_calls": []`` (vLLM, BerriAI/litellm#29286).
    - ``no_usage``: usage is never sent, streaming or not.
    - ``validate``: reject (400) requests a real OpenAI would reject (missing model/messages, assistant
      tool_calls not answered by tool messages).
    - ``thinking_mode``: DeepSeek's (and Kimi's) thinking mode: every assistant message carrying
      ``tool_calls`` must carry ``reasoning_content`` in every later request, and for the calls this
      server made, exactly the reasoning it answered them with; otherwise DeepSeek's 400. A
      reasoning-free tool call it made is answered with ``reasoning_content: ""``.
    - ``embeddings_max_batch``: refuse (413, TEI's wording) an embeddings request with more inputs.
    - ``embeddings_max_tokens``: refuse (400, OpenAI's wording) an embeddings request whose inputs
      sum to more tokens (OpenAI's 300,000 by default).
    - ``embeddings_reversed``: list embeddings last input first (only ``index`` orders them).
    - ``embeddings_dialect="voyage"``: ``/embeddings`` is Voyage's (no ``dimensions``, ``user`` or
      ``encoding_format: "float"``; ``output_dimension``; at most 1,000 texts; ``usage.total_tokens``);
      ``"mistral"``: Mistral's (a field it does not know, ``dimensions`` or ``user``, is a 422;
      ``output_dimension``; texts only).
    - ``rerank_tei``: ``/rerank`` speaks Hugging Face TEI's dialect (``texts`` in, a bare list out).
    - ``rerank_max_batch``: with ``rerank_tei``, refuse (413, TEI's wording) more texts a request.
    - ``rerank_cohere``: ``/rerank`` is Cohere's v2: a field it does not know is a 422, and the answer
      carries ``meta.billed_units.search_units`` and no documents.

    As OpenAI does: ``logprobs: true`` adds each content piece's token logprob (``top_logprobs``
    alternatives each), and ``n`` > 1 answers n choices (choice k's text gets `` [k]``), one usage.
    """

    DEFAULT_KEY = "sk-up-openai"

    def __init__(
        self,
        *,
        expected_key: str | None = DEFAULT_KEY,
        prefix: str = "/v1",
        reasoning_field: Literal["reasoning_content", "reasoning"] = "reasoning_content",
        usage_in_last_choice_chunk: bool = False,
        repeat_tool_id: bool = False,
        empty_tool_calls_list: bool = False,
        no_usage: bool = False,
        validate: bool = True,
        thinking_mode: bool = False,
        models: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o"),
        embeddings_max_batch: int | None = None,
        embeddings_reversed: bool = False,
        embeddings_max_tokens: int = embeddings.OPENAI_MAX_REQUEST_TOKENS,
        embeddings_dialect: embeddings.EmbeddingsDialect = "openai",
        rerank_tei: bool = False,
        rerank_cohere: bool = False,
        rerank_max_batch: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        super().__init__(expected_key=expected_key, host=host, port=port)
        self.prefix = prefix.rstrip("/")
        self.reasoning_field = reasoning_field
        self.usage_in_last_choice_chunk = usage_in_last_choice_chunk
        self.repeat_tool_id = repeat_tool_id
        self.empty_tool_calls_list = empty_tool_calls_list
        self.no_usage = no_usage
        self.validate = validate
        self.thinking_mode = thinking_mode
        self.issued: dict[str, str] = {}  # tool call id -> the reasoning answered with it (thinking_mode)
        self.models = models
        self.embeddings_max_batch = embeddings_max_batch
        self.embeddings_reversed = embeddings_reversed
        self.embeddings_max_tokens = embeddings_max_tokens
        self.embeddings_dialect: embeddings.EmbeddingsDialect = embeddings_dialect
        self.rerank_tei = rerank_tei
        self.rerank_cohere = rerank_cohere
        self.rerank_max_batch = rerank_max_batch
        self.add_route("POST", f"{self.prefix}/chat/completions", self._chat)
        self.add_route("POST", f"{self.prefix}/embeddings", self._embeddings)
        self.add_route("POST", f"{self.prefix}/rerank", self._rerank)
        self.add_route("GET", f"{self.prefix}/models", self._models)

    @property
    def url(self) -> str:
        """The SDK ``base_url`` (``http://127.0.0.1:PORT/v1``)."""
        return self.base_url + self.prefix

    # ----- handlers -----------------------------------------------------------------------------
    async def _chat(self, request: web.Request, rec: Received) -> web.StreamResponse:
        denied = self._check_auth(rec)
        if denied is not None:
            return denied
        if not isinstance(rec.body, dict):
            return self.error_response(400, "We could not parse the JSON body of your request.")
        problem = self._invalid(rec.body) if self.validate else None
        if problem is None and self.thinking_mode:
            problem = self._reasoning_missing(rec.body)
        if problem is not None:
            message, param = problem
            return web.json_response(
                self._error(400, message, param=param), status=400, headers=self.response_headers()
            )
        return await self.generate(request, rec, stream=rec.stream)

    async def _embeddings(self, request: web.Request, rec: Received) -> web.StreamResponse:
        denied = self._check_auth(rec)
        if denied is not None:
            return denied
        if not isinstance(rec.body, dict):
            return self.error_response(400, "We could not parse the JSON body of your request.")
        problem = embeddings.embedding_problem(
            rec.body, self.embeddings_max_batch, self.embeddings_dialect, self.embeddings_max_tokens
        )
        if problem is not None:
            status, message, param = problem
            return web.json_response(
                self._error(status, message, param=param), status=status, headers=self.response_headers()
            )
        return await self.generate(request, rec, stream=False)  # scripted Faults apply; see render

    async def _rerank(self, request: web.Request, rec: Received) -> web.StreamResponse:
        denied = self._check_auth(rec)
        if denied is not None:
            return denied
        if not isinstance(rec.body, dict):
            return self.error_response(400, "We could not parse the JSON body of your request.")
        problem = embeddings.rerank_problem(rec.body, self.rerank_tei, self.rerank_cohere, self.rerank_max_batch)
        if problem is not None and self.rerank_tei:
            status, message = problem
            if status == 422:  # axum's JSON extractor: a plain-text rejection, not TEI's error body
                return web.Response(status=422, text=message, content_type="text/plain")
            return web.json_response({"error": message, "error_type": "validation"}, status=status)
        if problem is not None:
            return self.error_response(*problem)
        return await self.generate(request, rec, stream=False)

    async def _models(self, request: web.Request, rec: Received) -> web.StreamResponse:
        denied = self._check_auth(rec)
        if denied is not None:
            return denied
        data = [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "emulator"} for m in self.models]
        return web.json_response({"object": "list", "data": data}, headers=self.response_headers())

    def _check_auth(self, rec: Received) -> web.Response | None:
        if self.expected_key is None:
            return None
        scheme, _, token = (rec.header("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            body = self._error(401, "You didn't provide an API key.", code=None)
            return web.json_response(body, status=401, headers=self.response_headers())
        if token.strip() != self.expected_key:
            return self.error_response(401, f"Incorrect API key provided: {token.strip()[:4]}****.")
        return None

    @staticmethod
    def _invalid(body: dict[str, Any]) -> tuple[str, str | None] | None:
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "you must provide a model parameter", "model"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "[] is too short - 'messages'", "messages"
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict) or msg.get("role") not in {
                "system",
                "developer",
                "user",
                "assistant",
                "tool",
            }:
                return f"Invalid value for 'messages[{i}].role'.", f"messages.[{i}].role"
            calls = (msg.get("tool_calls") or []) if msg.get("role") == "assistant" else []
            wanted = {c.get("id") for c in calls if isinstance(c, dict)}
            following = messages[i + 1 : i + 1 + len(wanted)]
            answered = {m.get("tool_call_id") for m in following if isinstance(m, dict) and m.get("role") == "tool"}
            if wanted - answered:
                return (
                    "An assistant message with 'tool_calls' must be followed by tool messages responding to "
                    f"each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                    f"{', '.join(sorted(str(x) for x in wanted - answered))}",
                    f"messages.[{i + 1}].role",
                )
        return None

    def _reasoning_missing(self, body: dict[str, Any]) -> tuple[str, str | None] | None:
        for msg in body.get("messages") or ():
            if not isinstance(msg, dict) or msg.get("role") != "assistant" or not msg.get("tool_calls"):
                continue
            got = msg.get("reasoning_content")
            ids = [c.get("id") for c in msg["tool_calls"] if isinstance(c, dict)]
            wanted = {self.issued[i] for i in ids if i in self.issued}
            if not isinstance(got, str) or (wanted and got not in wanted):
                return DEEPSEEK_REASONING_MISSING, None
        return None

    def _issue(self, reply: Reply, ids: list[str]) -> list[str]:
        if self.thinking_mode:
            for i in ids:
                self.issued[i] = reply.thinking or ""
        return ids

    # ----- rendering ----------------------------------------------------------------------------
    def response_headers(self) -> dict[str, str]:
        return {"x-request-id": f"req_{uuid.uuid4().hex}", "openai-processing-ms": "1"}

    def _error(self, status: int, message: str, *, param: str | None = None, code: Any = ...) -> dict[str, Any]:
        kind, default_code = ERROR_KINDS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        return {
            "error": {
                "message": message,
                "type": kind,
                "param": param,
                "code": default_code if code is ... else code,
            }
        }

    def error_body(self, status: int, message: str | None = None) -> dict[str, Any]:
        return self._error(status, message or ERROR_MESSAGES.get(status, f"Emulated upstream error {status}."))

    def _usage(self, reply: Reply) -> dict[str, Any]:
        prompt_details: dict[str, int] = {"cached_tokens": reply.cache_read, "audio_tokens": 0}
        if reply.cache_write:
            prompt_details["cache_write_tokens"] = reply.cache_write
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": reply.prompt_tokens + reply.output_tokens,
            "prompt_tokens_details": prompt_details,
            "completion_tokens_details": {
                "reasoning_tokens": reply.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _head(self, reply: Reply, rec: Received, obj: str) -> dict[str, Any]:
        return {
            "id": reply.id or f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": obj,
            "created": int(time.time()),
            "model": reply.model or rec.model or "unknown",
            "service_tier": "default",
            "system_fingerprint": "fp_emulated",
        }

    @staticmethod
    def _tool_ids(reply: Reply) -> list[str]:
        return [tc.id or f"call_{uuid.uuid4().hex[:24]}" for tc in reply.tool_calls]

    def _reasoning(self, reply: Reply) -> str | None:
        if reply.thinking is None and self.thinking_mode and reply.tool_calls:
            return ""
        return reply.thinking

    @staticmethod
    def _logprobs(text: str | None, reply: Reply, rec: Received) -> dict[str, Any] | None:
        body = rec.body if isinstance(rec.body, dict) else {}
        if body.get("logprobs") is not True:
            return None
        top = body.get("top_logprobs") or 0

        def token(t: str, lp: float) -> dict[str, Any]:
            return {"token": t, "logprob": lp, "bytes": list(t.encode())}

        content = [
            {**token(piece, -0.25), "top_logprobs": [token(piece, -0.25), token("~", -3.5)][:top]}
            for piece in pieces(text or "", reply.chunk_size)
        ]
        return {"content": content, "refusal": None}

    def render(self, reply: Reply, rec: Received) -> Any:
        body = rec.body if isinstance(rec.body, dict) else {}
        model = reply.model or rec.model or "unknown"
        if rec.path.endswith("/embeddings"):
            return embeddings.render_embeddings(
                body, model, reverse=self.embeddings_reversed, dialect=self.embeddings_dialect
            )
        if rec.path.endswith("/rerank"):
            return embeddings.render_rerank(body, model, tei=self.rerank_tei, cohere=self.rerank_cohere)
        n: int = body["n"] if isinstance(body.get("n"), int) else 1
        out = self._render_one(reply, rec)
        first = out["choices"][0]
        for k in range(1, n):
            text = None if reply.text is None else f"{reply.text} [{k}]"
            msg = {**first["message"], "content": text}
            out["choices"].append({**first, "index": k, "message": msg, "logprobs": self._logprobs(text, reply, rec)})
        return out

    def _render_one(self, reply: Reply, rec: Received) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text,
            "refusal": None,
            "annotations": [],
        }
        if (reasoning := self._reasoning(reply)) is not None:
            message[self.reasoning_field] = reasoning
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": tc.name, "arguments": tc.arguments}}
                for call_id, tc in zip(self._issue(reply, self._tool_ids(reply)), reply.tool_calls, strict=True)
            ]
        out = self._head(reply, rec, "chat.completion")
        out["choices"] = [
            {
                "index": 0,
                "message": message,
                "logprobs": self._logprobs(reply.text, reply, rec),
                "finish_reason": OPENAI_FINISH[reply.stop_kind],
            }
        ]
        if not self.no_usage:
            out["usage"] = self._usage(reply)
        return out

    def plan_stream(self, reply: Reply, fault: Fault, rec: Received) -> StreamPlan:
        head = self._head(reply, rec, "chat.completion.chunk")
        body = rec.body if isinstance(rec.body, dict) else {}
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        usage_null = include_usage and not self.no_usage

        def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None, logprobs: Any = None) -> bytes:
            out = {
                **head,
                "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
            }
            if usage is not None or usage_null:
                out["usage"] = usage
            return sse(out)

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        for piece in pieces(reply.thinking or "", reply.chunk_size):
            events.append(chunk({self.reasoning_field: piece}))
        for piece in pieces(reply.text or "", reply.chunk_size):
            delta: dict[str, Any] = {"content": piece}
            if self.empty_tool_calls_list:
                delta["tool_calls"] = []
            events.append(chunk(delta, logprobs=self._logprobs(piece, reply, rec)))
        ids = self._issue(reply, self._tool_ids(reply))
        for index, (call_id, tc) in enumerate(zip(ids, reply.tool_calls, strict=True)):
            first = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": tc.name, "arguments": ""},
            }
            events.append(chunk({"tool_calls": [first]}))
            for piece in pieces(tc.arguments, reply.args_chunk):
                frag: dict[str, Any] = {"index": index, "function": {"arguments": piece}}
                if self.repeat_tool_id:
                    frag = {"index": index, "id": call_id, "type": "function", **frag}
                events.append(chunk({"tool_calls": [frag]}))
        usage = None if self.no_usage else self._usage(reply)
        finish = OPENAI_FINISH[reply.stop_kind]
        if self.usage_in_last_choice_chunk:
            events.append(chunk({}, finish, usage))
        else:
            events.append(chunk({}, finish))
            if usage_null:
                events.append(sse({**head, "choices": [], "usage": usage}))
        events.append(b"data: [DONE]\n\n")

        error = fault.body if isinstance(fault.body, dict) else None
        error_chunk = {
            **head,
            "error": error
            or {"code": fault.status or 502, "message": "Upstream error mid-stream", "type": "server_error"},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        }
        broken = 'data: {"id":"' + head["id"] + '","object":"chat.completion.chunk","choices":[{"delta":\n\n'
        return StreamPlan(events=events, error_event=sse(error_chunk), broken_event=broken.encode())

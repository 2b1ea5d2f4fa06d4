"""An Azure OpenAI upstream, written from Azure's REST reference, not from keeprouter.

The OpenAI emulator with Azure's differences on top:

- two APIs on one host: the deployments API ``POST /openai/deployments/{deployment}/chat/completions``
  (``?api-version=`` required: missing -> 404 "Resource not found", unknown -> 400 "API version not
  supported"; the deployment comes from the path, the body's ``model`` is ignored) and the versionless
  v1 API ``POST /openai/v1/chat/completions`` (the deployment is the body's ``model``); an unknown
  deployment is 404 ``DeploymentNotFound`` on both;
- auth by the ``api-key`` header, or ``Authorization: Bearer`` with a Microsoft Entra token (the v1 API
  also takes the key as a bearer token, as the plain OpenAI SDK sends it); 401 in Azure's shape;
- Azure's error body ``{"error": {"code", "message"[, "innererror"]}}``; what the model service
  itself refuses in OpenAI's shape: before ``2024-09-01-preview`` the deployments API refuses
  ``stream_options`` and ``max_completion_tokens`` ("Unrecognized request argument supplied"), and a
  reasoning deployment refuses ``max_tokens`` and a ``temperature`` other than 1 on either API;
- content filtering: ``prompt_filter_results`` on every answer (streamed: alone, in a first chunk
  with empty ``choices`` and blank id/model), ``content_filter_results`` on every choice, and with
  ``async_filter`` an annotation-only chunk (a choice with no ``delta``) as the asynchronous filter
  mode sends. ``Reply(stop="refusal")`` answers a content-filter finish with the category in
  ``filtered_category`` marked filtered; ``prompt_filtered()`` is the 400 for a filtered prompt.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from .base import Received, StreamPlan, sse
from .openai_server import OpenAIUpstream
from .script import Fault, Reply

API_VERSIONS = frozenset({
    "2024-02-01", "2024-06-01", "2024-10-21", "2024-08-01-preview", "2024-10-01-preview",
    "2024-12-01-preview", "2025-01-01-preview", "2025-03-01-preview", "2025-04-01-preview",
})  # fmt: skip
V1_VERSIONS = frozenset({"preview", "latest"})  # v1 takes no dated version
CATEGORIES = ("hate", "self_harm", "sexual", "violence")
ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
    "for an active subscription and use a correct regional API endpoint for your resource."
)
DEPLOYMENT_NOT_FOUND = (
    "The API deployment for this resource does not exist. If you created the deployment within the last "
    "5 minutes, please wait a moment and try again."
)
ERROR_MESSAGES = {
    404: "Resource not found",
    429: "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have "
    "exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 7 seconds.",
    500: "The server had an error while processing your request. Sorry about that!",
}
_DEPLOYMENT_PATH = re.compile(r"^/openai/deployments/([^/]+)/")
# The deployments-API version that brought `max_completion_tokens` and `stream_options`
SINCE_2024_09 = "2024-09-01"
_REASONING = re.compile(r"o\d|gpt-5")  # models that refuse `max_tokens`


def filter_results(filtered: str | None = None) -> dict[str, Any]:
    """Azure's per-category verdicts; ``filtered`` names the one category that tripped."""
    out: dict[str, Any] = {
        c: {"filtered": c == filtered, "severity": "medium" if c == filtered else "safe"} for c in CATEGORIES
    }
    return out


class AzureUpstream(OpenAIUpstream):
    DEFAULT_KEY = "azure-key-0123456789abcdef"

    def __init__(
        self,
        *,
        expected_key: str | None = DEFAULT_KEY,
        entra_token: str | None = None,
        deployments: dict[str, str] | None = None,
        async_filter: bool = False,
        filtered_category: str = "violence",
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.deployments = deployments or {"gpt4o-prod": "gpt-4o-2024-11-20", "o4mini": "o4-mini-2025-04-16"}
        super().__init__(
            expected_key=expected_key, prefix="/openai/v1", models=tuple(self.deployments), host=host, port=port
        )
        self.entra_token = entra_token
        self.async_filter = async_filter
        self.filtered_category = filtered_category
        self.add_route("POST", "/openai/deployments/{deployment}/chat/completions", self._deployment_chat)

    @property
    def url(self) -> str:
        """The resource endpoint (``azure_endpoint`` of the AzureOpenAI SDK)."""
        return self.base_url

    @property
    def v1_url(self) -> str:
        """The plain OpenAI SDK's ``base_url`` for the v1 API."""
        return self.base_url + "/openai/v1"

    # ----- handlers -----------------------------------------------------------------------------
    async def _deployment_chat(self, request: web.Request, rec: Received) -> web.StreamResponse:
        version = rec.query.get("api-version")
        if version is None:  # Azure cannot route the request at all without it
            return self.error_response(404)
        if version not in API_VERSIONS:
            return self._azure_error(400, "BadRequest", "API version not supported")
        denied = self._auth(rec, v1=False)
        if denied is not None:
            return denied
        if request.match_info["deployment"] not in self.deployments:
            return self._azure_error(404, "DeploymentNotFound", DEPLOYMENT_NOT_FOUND)
        if version[:10] < SINCE_2024_09 and isinstance(rec.body, dict):
            for name in ("stream_options", "max_completion_tokens"):  # both came with 2024-09-01-preview
                if name in rec.body:
                    return self._invalid_request(f"Unrecognized request argument supplied: {name}", None, None)
        return await self._generation(request, rec)

    async def _chat(self, request: web.Request, rec: Received) -> web.StreamResponse:  # the v1 API
        version = rec.query.get("api-version")
        if version is not None and version not in V1_VERSIONS:
            return self._azure_error(400, "BadRequest", "API version not supported")
        denied = self._auth(rec, v1=True)
        if denied is not None:
            return denied
        if isinstance(rec.body, dict) and rec.body.get("model") not in self.deployments:
            return self._azure_error(404, "DeploymentNotFound", DEPLOYMENT_NOT_FOUND)
        return await self._generation(request, rec)

    async def _generation(self, request: web.Request, rec: Received) -> web.StreamResponse:
        if not isinstance(rec.body, dict):
            return self._azure_error(400, "BadRequest", "We could not parse the JSON body of your request.")
        problem = self._invalid({"model": self._deployment(rec), **rec.body})
        if problem is not None:
            return self._azure_error(400, "BadRequest", problem[0])
        reasoning = _REASONING.match(self.deployments.get(self._deployment(rec), "")) is not None
        if "max_tokens" in rec.body and reasoning:
            message = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."  # noqa: E501
            return self._invalid_request(message, "max_tokens", "unsupported_parameter")
        if reasoning and rec.body.get("temperature", 1) != 1:
            message = f"Unsupported value: 'temperature' does not support {rec.body['temperature']} with this model. Only the default (1) value is supported."  # noqa: E501
            return self._invalid_request(message, "temperature", "unsupported_value")
        return await self.generate(request, rec, stream=rec.stream)

    def _check_auth(self, rec: Received) -> web.Response | None:  # GET /openai/v1/models
        return self._auth(rec, v1=True)

    def _auth(self, rec: Received, *, v1: bool) -> web.Response | None:
        if self.expected_key is None:
            return None
        if rec.header("api-key") is not None:
            ok = rec.header("api-key") == self.expected_key
        else:
            scheme, _, token = (rec.header("authorization") or "").partition(" ")
            accepted = {self.entra_token, self.expected_key if v1 else None} - {None}
            ok = scheme.lower() == "bearer" and token.strip() in accepted
        return None if ok else self._azure_error(401, "401", ACCESS_DENIED)

    # ----- rendering ----------------------------------------------------------------------------
    def response_headers(self) -> dict[str, str]:
        return {"apim-request-id": "00000000-0000-0000-0000-000000000000", "x-ms-region": "Sweden Central"}

    def _invalid_request(self, message: str, param: str | None, code: str | None) -> web.Response:
        """A 400 the model service itself answers (OpenAI's shape, as Azure passes it on)."""
        body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
        return web.json_response(body, status=400, headers=self.response_headers())

    def _azure_error(self, status: int, code: str, message: str, **inner: Any) -> web.Response:
        body: dict[str, Any] = {"error": {"code": code, "message": message}}
        if inner:
            body["error"]["innererror"] = inner
        return web.json_response(body, status=status, headers=self.response_headers())

    def error_body(self, status: int, message: str | None = None) -> dict[str, Any]:
        return {"error": {"code": str(status), "message": message or ERROR_MESSAGES.get(status, f"HTTP {status}")}}

    def prompt_filtered(self) -> Fault:
        """The 400 Azure answers when the prompt itself trips the content filter."""
        body = {"error": {
            "code": "content_filter", "status": 400, "param": "prompt",
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management "
                       "policy. Please modify your prompt and retry.",
            "innererror": {"code": "ResponsibleAIPolicyViolation",
                           "content_filter_result": filter_results(self.filtered_category)},
        }}  # fmt: skip
        return Fault(status=400, body=body)

    def _deployment(self, rec: Received) -> str:
        m = _DEPLOYMENT_PATH.match(rec.path)
        return m.group(1) if m else str(rec.model or "")

    def _head(self, reply: Reply, rec: Received, obj: str) -> dict[str, Any]:
        head = super()._head(reply, rec, obj)
        head.pop("service_tier", None)
        head["model"] = reply.model or self.deployments.get(self._deployment(rec), "unknown")
        return head

    def _choice_filter(self, reply: Reply) -> dict[str, Any]:
        return filter_results(self.filtered_category if reply.stop_kind == "refusal" else None)

    def render(self, reply: Reply, rec: Received) -> Any:
        out = super().render(reply, rec)
        # an embeddings answer: Azure adds no filter results to it
        if not isinstance(out, dict) or "choices" not in out:
            return out
        out["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": filter_results()}]
        out["choices"][0]["content_filter_results"] = self._choice_filter(reply)
        return out

    def plan_stream(self, reply: Reply, fault: Fault, rec: Received) -> StreamPlan:
        plan = super().plan_stream(reply, fault, rec)
        prompt = [{"prompt_index": 0, "content_filter_results": filter_results()}]
        first = {"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": prompt}
        events = [sse(first)]
        for event in plan.events:
            data = event.removeprefix(b"data: ").strip()
            if data == b"[DONE]":
                events.append(event)
                continue
            chunk = json.loads(data)
            choices = chunk["choices"]
            for choice in choices:
                finished = choice["finish_reason"] is not None
                role = "role" in choice["delta"]
                choice["content_filter_results"] = (
                    self._choice_filter(reply) if finished else {} if role else filter_results()
                )
            if choices and choices[0]["finish_reason"] is not None and self.async_filter:
                events.append(sse({"choices": [{"index": 0, "finish_reason": None,
                                                "content_filter_results": filter_results(),
                                                "content_filter_offsets": {"check_offset": 0, "start_offset": 0,
                                                                           "end_offset": len(reply.text or "")}}],
                                   "created": 0, "id": "", "model": "", "object": ""}))  # fmt: skip
            events.append(sse(chunk))
        return StreamPlan(events=events, error_event=plan.error_event, broken_event=plan.broken_event)

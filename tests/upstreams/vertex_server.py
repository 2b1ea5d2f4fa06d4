"""A Vertex AI upstream: Gemini models as the Gemini emulator serves them, Claude models as the
Anthropic emulator does, at Vertex's paths, behind Google's OAuth2 token endpoint.

Routes:
``POST /token``: the OAuth2 JWT-bearer grant. The assertion must be an RS256 JWT signed by the
service account's key (``public_key``), ``iss`` its email, ``aud`` Google's token URL (or this one),
``scope`` naming cloud-platform, not expired; it answers ``{access_token, expires_in, token_type}``
(``expires_in`` settable, to test refreshing) and refuses anything else with ``invalid_grant`` as Google does.
``POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent``
(``:streamGenerateContent``, ``:countTokens`` with Vertex's unwrapped body, ``:predict`` for the
embedding models, see ``native_embeddings.py``) and
``POST /v1/publishers/google/models/{model}:...`` (express mode: an ``x-goog-api-key`` only);
``POST /v1/projects/.../publishers/anthropic/models/{model}:rawPredict`` / ``:streamRawPredict``: the
Messages body without ``model`` and with ``anthropic_version`` (KeepRouter's: ``vertex-2023-10-16``),
stream or not as the body's ``stream`` says; ``.../models/count-tokens:rawPredict`` with ``model`` in the body.
Project and location must be the expected ones; every project path needs ``Authorization: Bearer``
with a token this server issued and has not expired (401 ``UNAUTHENTICATED`` otherwise).
"""

from __future__ import annotations

import base64
import json
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import anthropic_server, native_embeddings
from .anthropic_server import AnthropicUpstream
from .base import Received, StreamPlan
from .gemini_server import GeminiUpstream
from .script import Fault, Reply

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
VERSION = "vertex-2023-10-16"
# The audience Google's token endpoint checks; google-auth names it, whatever the key file's token_uri.
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


@dataclass
class ServiceAccount:
    """A test service account: its RSA key and the JSON key file Google would hand out."""

    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    email: str = "keeprouter-test@test-project.iam.gserviceaccount.com"

    def write(self, path: Path, token_uri: str) -> Path:
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        info = {
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": "test-key-1",
            "private_key": pem,
            "client_email": self.email,
            "client_id": "1",
            "token_uri": token_uri,
        }
        path.write_text(json.dumps(info))
        return path


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


class VertexUpstream(GeminiUpstream):
    """Vertex AI for ``project`` in ``location``. ``tokens`` maps each access token issued to its
    expiry (``time.time()`` seconds); ``express_key`` is the express-mode key (Gemini models only)."""

    def __init__(
        self,
        account: ServiceAccount | None = None,
        *,
        project: str = "test-project",
        location: str = "us-east5",
        express_key: str | None = "AQ.express-test-key",
        expires_in: int = 3600,
        verify_thinking: bool = False,
    ) -> None:
        super().__init__(expected_key=None)  # our own checks below
        self.account = account or ServiceAccount()
        self.public_key = self.account.key.public_key()
        self.client_email = self.account.email
        self._key_dir: tempfile.TemporaryDirectory[str] | None = None
        self.project = project
        self.location = location
        self.express_key = express_key
        self.expires_in = expires_in
        self.tokens: dict[str, float] = {}
        self.grants = 0  # tokens issued
        # Its rendering and its thinking signatures (issued and verified as Anthropic's), never started.
        self.claude = AnthropicUpstream(expected_key=None, verify_thinking=verify_thinking)
        self.add_route("POST", "/token", self._token)
        base = "/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{target}"
        self.add_route("POST", base, self._project_models)
        self.add_route("POST", "/v1/publishers/google/models/{target}", self._express)

    @property
    def token_uri(self) -> str:
        return self.base_url + "/token"

    def key_file(self) -> str:
        """The account's key file, its token_uri this server (written once the server listens)."""
        if self._key_dir is None:
            self._key_dir = tempfile.TemporaryDirectory(prefix="vertex-sa-")
            self.account.write(Path(self._key_dir.name) / "sa.json", self.token_uri)
        return str(Path(self._key_dir.name) / "sa.json")

    async def close(self) -> None:
        await super().close()
        if self._key_dir is not None:
            self._key_dir.cleanup()
            self._key_dir = None

    # ----- OAuth2 -------------------------------------------------------------------------------
    def _grant_error(self, description: str) -> web.Response:
        return web.json_response({"error": "invalid_grant", "error_description": description}, status=400)

    async def _token(self, request: web.Request, rec: Received) -> web.StreamResponse:
        form = {k: v[0] for k, v in parse_qs(rec.raw.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        problem = self._bad_assertion(str(form.get("assertion", "")))
        if problem is not None:
            return self._grant_error(problem)
        token = f"ya29.{uuid.uuid4().hex}"
        self.tokens[token] = time.time() + self.expires_in
        self.grants += 1
        rec.completed = True
        return web.json_response({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})

    def _bad_assertion(self, assertion: str) -> str | None:
        try:
            head, claims, signature = assertion.split(".")
            header = json.loads(_b64(head))
            payload = json.loads(_b64(claims))
            signed = _b64(signature)
        except ValueError:
            return "Invalid JWT: malformed"
        if header.get("alg") != "RS256":
            return "Invalid JWT: alg must be RS256"
        try:
            self.public_key.verify(signed, f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except Exception:
            return "Invalid JWT Signature."
        now = time.time()
        if payload.get("iss") != self.client_email:
            return "Invalid JWT: iss is not the service account"
        if payload.get("aud") not in (self.token_uri, GOOGLE_TOKEN_URI):
            return "Invalid JWT: Failed audience check."
        if SCOPE not in str(payload.get("scope", "")).split():
            return "Invalid JWT: scope must name cloud-platform"
        if not isinstance(payload.get("exp"), int) or payload["exp"] < now or payload.get("iat", now + 1) > now + 60:
            return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe."
        return None

    # ----- models -------------------------------------------------------------------------------
    def _unauthenticated(self) -> web.Response:
        message = "Request had invalid authentication credentials. Expected OAuth 2 access token."
        return web.json_response({"error": {"code": 401, "message": message, "status": "UNAUTHENTICATED"}}, status=401)

    async def _project_models(self, request: web.Request, rec: Received) -> web.StreamResponse:
        scheme, _, token = (rec.header("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or self.tokens.get(token.strip(), 0.0) <= time.time():
            return self._unauthenticated()
        info = request.match_info
        if (info["project"], info["location"]) != (self.project, self.location):
            return self.error_response(404, f"Project {info['project']} in {info['location']} not found.")
        if info["publisher"] == "google":
            return await self._models(request, rec)
        if info["publisher"] == "anthropic":
            return await self._claude(request, rec)
        return self.error_response(404, f"Publisher {info['publisher']} not found.")

    async def _express(self, request: web.Request, rec: Received) -> web.StreamResponse:
        if self.express_key is None or rec.header("x-goog-api-key") != self.express_key:
            return self.error_response(400, "API key not valid. Please pass a valid API key.")
        return await self._models(request, rec)

    async def _models(self, request: web.Request, rec: Received) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        if method == "predict":
            problem = native_embeddings.vertex_predict_problem(rec.body, model)
            if problem is not None:
                return self.error_response(400, problem)
            return await self.generate(request, rec, stream=False)  # rendered by `render`
        # Vertex's countTokens body is the request's fields at the top level, not wrapped.
        if request.match_info["target"].endswith(":countTokens") and isinstance(rec.body, dict):
            if "generateContentRequest" in rec.body:
                return self.error_response(400, 'Invalid JSON payload received. Unknown name "generateContentRequest"')
        return await super()._models(request, rec)

    async def _claude(self, request: web.Request, rec: Received) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        body = rec.body
        if not isinstance(body, dict):
            return self.claude.error_response(400, "There was an error parsing the body of your request.")
        if model == "count-tokens" and method == "rawPredict":
            problem = anthropic_server._invalid(body, need_max_tokens=False)
            if problem is not None:
                return self.claude.error_response(400, problem)
            rec.completed = True
            return web.json_response({"input_tokens": anthropic_server.count_tokens(body)})
        if method not in ("rawPredict", "streamRawPredict"):
            return self.error_response(404, f"Method not found: {method or '(none)'}")
        if "model" in body:
            return self.claude.error_response(400, "model: Extra inputs are not permitted")
        # Required in the body (never the header). KeepRouter sends Vertex's documented VERSION (its
        # tests check that); newer Anthropic SDKs send their own API date, which passes here too.
        if not isinstance(body.get("anthropic_version"), str) or not body["anthropic_version"]:
            return self.claude.error_response(400, "anthropic_version: Field required")
        if (method == "streamRawPredict") != (body.get("stream") is True):
            return self.claude.error_response(400, f"{method}: stream must be {method == 'streamRawPredict'}")
        problem = anthropic_server._invalid({**body, "model": model}, need_max_tokens=True)
        if problem is None and self.claude.verify_thinking:
            problem = self.claude._thinking_problem(body)
        if problem is not None:
            return self.claude.error_response(400, problem)
        return await self.generate(request, rec, stream=method == "streamRawPredict")

    # ----- rendering: by the family the request's path names --------------------------------------
    @staticmethod
    def _is_claude(rec: Received) -> bool:
        return "/publishers/anthropic/" in rec.path

    def render(self, reply: Reply, rec: Received) -> dict[str, Any]:
        if rec.path.endswith(":predict"):
            return native_embeddings.render_vertex_predict(rec.body)
        return self.claude.render(reply, rec) if self._is_claude(rec) else super().render(reply, rec)

    def plan_stream(self, reply: Reply, fault: Fault, rec: Received) -> StreamPlan:
        if self._is_claude(rec):
            return self.claude.plan_stream(reply, fault, rec)
        return super().plan_stream(reply, fault, rec)

"""A small, strict OpenID Connect provider on 127.0.0.1 for tests, built on joserfc.

Discovery, an authorization endpoint that signs in `provider.user` at once (no form), a token
endpoint that checks the client's secret, the redirect URI and PKCE (S256) and spends each code
once, and a JWKS endpoint. `rotate()` replaces the signing key (a new kid). `next_claims` changes
the claims of the next ID token issued (then reset); `sign_with_unknown_key` signs the next one with
a key the JWKS does not publish.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.test_utils import TestServer
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

CLIENT_ID = "keeprouter-test"
CLIENT_SECRET = "s3cret-test"


def _key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(4), "use": "sig", "alg": "RS256"})


@dataclass
class Provider:
    url: str = ""
    user: dict[str, Any] = field(default_factory=lambda: {"sub": "u-1", "email": "ada@example.com",
                                                           "email_verified": True, "name": "Ada"})  # fmt: skip
    key: RSAKey = field(default_factory=_key)
    next_claims: dict[str, Any] = field(default_factory=dict)
    sign_with_unknown_key: bool = False
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    consent_page: bool = False  # answer /authorize with a page whose link goes back (as a person would)
    token_requests: int = 0
    jwks_requests: int = 0

    def rotate(self) -> None:
        self.key = _key()

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response({
            "issuer": self.url, "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token", "jwks_uri": self.url + "/jwks",
            "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })  # fmt: skip

    async def jwks(self, request: web.Request) -> web.Response:
        self.jwks_requests += 1
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("response_type") != "code" or q.get("client_id") != CLIENT_ID:
            return web.json_response({"error": "unauthorized_client"}, status=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge") or not q.get("nonce"):
            return web.json_response({"error": "invalid_request"}, status=400)
        if "openid" not in q.get("scope", "").split():
            return web.json_response({"error": "invalid_scope"}, status=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"redirect_uri": q["redirect_uri"], "challenge": q["code_challenge"], "nonce": q["nonce"]}
        back = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q.get("state", "")})
        if self.consent_page:  # the way back then starts on this site: a cross-site navigation
            link = back.replace("&", "&amp;").replace('"', "&quot;")
            return web.Response(text=f'<!doctype html><title>IdP</title><a href="{link}">Continue</a>',
                                content_type="text/html")  # fmt: skip
        raise web.HTTPFound(back)

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self.codes.pop(str(form.get("code", "")), None)  # single use
        if form.get("grant_type") != "authorization_code" or grant is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return web.json_response({"error": "invalid_grant", "error_description": "redirect_uri"}, status=400)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not hmac.compare_digest(challenge, grant["challenge"]):
            return web.json_response({"error": "invalid_grant", "error_description": "PKCE"}, status=400)
        now = int(time.time())
        claims = {"iss": self.url, "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": grant["nonce"],
                  **self.user, **self.next_claims}  # fmt: skip
        self.next_claims = {}
        key = _key() if self.sign_with_unknown_key else self.key
        self.sign_with_unknown_key = False
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        return web.json_response({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                                  "id_token": id_token, "expires_in": 300})  # fmt: skip


@asynccontextmanager
async def run_provider(host_name: str = "127.0.0.1") -> AsyncIterator[Provider]:
    """The provider on 127.0.0.1, its URLs written with `host_name` ("localhost": another site
    than a gateway on 127.0.0.1, for browser tests of the cross-site way back)."""
    provider = Provider()
    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", provider.discovery)
    app.router.add_get("/jwks", provider.jwks)
    app.router.add_get("/authorize", provider.authorize)
    app.router.add_post("/token", provider.token)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    provider.url = f"http://{host_name}:{server.port}"
    try:
        yield provider
    finally:
        await server.close()

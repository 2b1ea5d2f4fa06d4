"""OpenID Connect sign-in, the relying party's side: discovery, the authorization code flow with
PKCE, `state` and `nonce`, and the ID token checked against the issuer's JWKS.

The protocol pieces come from Authlib (PKCE challenge, random tokens, the OpenID Connect ID token
claims rules) and joserfc (JWS signatures, JWK sets); the three HTTP calls (discovery, token, keys)
use aiohttp like the rest of the server. Nothing here knows about cookies or pages (web/oidc.py).

Checks on the ID token: signature by a key of the issuer's JWKS (an unknown `kid` refetches the set
once, so a rotated key works at once, at most one refetch per REFETCH_EVERY seconds so forged kids
cannot hammer the provider); asymmetric algorithms only; `iss` equal to the configured issuer; `aud`
containing the client id (and `azp` equal to it when present); `exp`, `iat` and `nbf` with a small
leeway; `nonce` equal to the one this flow sent. `email_verified: false` is refused; a missing
`email_verified` is accepted (Microsoft Entra omits it).
"""

from __future__ import annotations

import base64
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from keeprouter.auth.settings import OidcConfig

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
LEEWAY = 60  # seconds of clock difference tolerated on exp/iat/nbf
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)
METADATA_TTL = 3600.0
REFETCH_EVERY = 10.0  # seconds between JWKS refetches triggered by an unknown kid


class SignInRefused(Exception):
    """The sign-in cannot complete; the message is safe to show the person signing in."""


@dataclass(frozen=True, slots=True)
class Flow:
    """One sign-in attempt, kept by the browser (signed) between the redirect and the callback."""

    state: str
    nonce: str
    verifier: str  # the PKCE code_verifier
    started: float


@dataclass(frozen=True, slots=True)
class Identity:
    sub: str
    email: str
    name: str | None


class OidcClient:
    def __init__(self, cfg: OidcConfig, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self._clock = clock
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: KeySet | None = None
        self._keys_fetched = 0.0

    async def _get(self, url: str) -> dict[str, Any]:
        try:
            async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as s, s.get(url) as r:
                if r.status != 200:
                    raise SignInRefused(f"the identity provider answered {r.status} at {url}")
                data = await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise SignInRefused(f"the identity provider could not be reached ({type(e).__name__})") from None
        if not isinstance(data, dict):
            raise SignInRefused(f"the identity provider sent no JSON object at {url}")
        return data

    async def metadata(self) -> dict[str, Any]:
        """The discovery document (cached for METADATA_TTL); its issuer must be ours exactly."""
        now = self._clock()
        if self._metadata is not None and now - self._metadata[0] < METADATA_TTL:
            return self._metadata[1]
        doc = await self._get(self.cfg.issuer.rstrip("/") + "/.well-known/openid-configuration")
        if doc.get("issuer") != self.cfg.issuer:
            raise SignInRefused("the identity provider's discovery document names another issuer")
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(field), str):
                raise SignInRefused(f"the identity provider's discovery document has no {field}")
        self._metadata = (now, doc)
        return doc

    async def _keyset(self, refresh: bool) -> KeySet:
        if self._keys is None or refresh:
            doc = await self.metadata()
            self._keys = KeySet.import_key_set(await self._get(doc["jwks_uri"]))  # type: ignore[arg-type]
            self._keys_fetched = self._clock()
        return self._keys

    async def start(self, redirect_uri: str) -> tuple[str, Flow]:
        """The provider's authorization URL to send the browser to, and the flow to keep."""
        doc = await self.metadata()
        flow = Flow(generate_token(32), generate_token(32), generate_token(64), self._clock())
        query = {
            "response_type": "code",
            "client_id": self.cfg.client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid email profile",
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": create_s256_code_challenge(flow.verifier),
            "code_challenge_method": "S256",
        }
        endpoint: str = doc["authorization_endpoint"]
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(query), flow

    async def finish(self, flow: Flow, params: Mapping[str, str], redirect_uri: str) -> Identity:
        """Check the callback against `flow`, redeem the code and verify the ID token."""
        if "error" in params:
            raise SignInRefused(f"the identity provider refused the sign-in: {params['error'][:100]}")
        state = params.get("state", "")
        if not hmac.compare_digest(state.encode(), flow.state.encode()):
            raise SignInRefused("this sign-in's state does not match; start again")
        code = params.get("code")
        if not code:
            raise SignInRefused("the identity provider sent no authorization code")
        doc = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": flow.verifier,
            "client_id": self.cfg.client_id,
        }
        headers = {"Accept": "application/json"}
        if self.cfg.client_secret is not None:
            # client_secret_basic: both parts form-encoded first, as OAuth 2.0 says
            pair = f"{quote(self.cfg.client_id, safe='')}:{quote(self.cfg.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        try:
            async with (
                aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as s,
                s.post(doc["token_endpoint"], data=form, headers=headers) as r,
            ):
                body = await r.json(content_type=None)
                status = r.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise SignInRefused(f"the identity provider's token endpoint failed ({type(e).__name__})") from None
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
            error = body.get("error") if isinstance(body, dict) else None
            raise SignInRefused(f"the identity provider did not redeem the code ({error or status})")
        claims = await self.verify(body["id_token"], flow.nonce, body.get("access_token"))
        return self._identity(claims)

    async def verify(self, id_token: str, nonce: str, access_token: Any = None) -> dict[str, Any]:
        """The ID token's claims, once its signature and claims pass (SignInRefused otherwise)."""
        try:
            kid = jws.extract_compact(id_token.encode()).headers().get("kid")
        except (JoseError, ValueError):
            raise SignInRefused("the ID token is malformed") from None
        keys = await self._keyset(refresh=False)
        if kid is not None and not any(k.kid == kid for k in keys.keys):
            # A rotated key: fetch the set again (bounded, so unknown kids cannot make us hammer it).
            if self._clock() - self._keys_fetched >= REFETCH_EVERY:
                keys = await self._keyset(refresh=True)
        try:
            token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            params: dict[str, Any] = {"nonce": nonce, "client_id": self.cfg.client_id}
            if isinstance(access_token, str):
                params["access_token"] = access_token  # checks at_hash when the token carries one
            options: dict[str, Any] = {
                "iss": {"essential": True, "value": self.cfg.issuer},
                "aud": {"essential": True, "value": self.cfg.client_id},
            }
            CodeIDToken(token.claims, token.header, options=options, params=params).validate(self._clock(), LEEWAY)
        except (JoseError, ValueError) as e:
            raise SignInRefused(f"the ID token was refused ({str(e)[:200]})") from None
        return dict(token.claims)

    def _identity(self, claims: Mapping[str, Any]) -> Identity:
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise SignInRefused("the identity provider sent no email address (grant the 'email' scope)")
        if claims.get("email_verified") is False:
            raise SignInRefused(f"{email} is not verified at the identity provider")
        if not self.cfg.allows(email):
            raise SignInRefused(f"{email} may not sign in here (its domain is not allowed)")
        name = claims.get("name")
        return Identity(str(claims.get("sub")), email.strip(), name if isinstance(name, str) else None)

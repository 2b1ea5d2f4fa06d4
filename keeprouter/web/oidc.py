"""Console sign-in with an OpenID Connect provider: GET /auth/oidc/login and /auth/oidc/callback.

The flow (state, nonce, PKCE verifier) travels in a signed, HttpOnly cookie scoped to /auth/oidc
with SameSite=Lax: the provider is another site, and the way back to the callback is a cross-site
top-level navigation, on which a Strict cookie would not be sent. It lives ten minutes and is
deleted by the callback whatever the outcome, so a flow is used once.

The session cookie stays SameSite=Strict, like the key sign-in's. A browser treats a redirect chain
that began on the provider's site as cross-site, so the callback answers with a small page that
moves on to /console itself (a same-site navigation, which carries the Strict cookie).

A signed-in person's session stands for "user:<id>": each request resolves it to a record with
the user's email, team and, for `admin_emails`, the operator's console. Deleting the user ends it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import time

import orjson
from aiohttp import web

from keeprouter.api.http import STATE
from keeprouter.auth.oidc import Flow, Identity, OidcClient, SignInRefused
from keeprouter.auth.settings import OidcConfig
from keeprouter.store.base import KeyRecord, Store, TeamRecord, UserRecord
from keeprouter.web import site as site_mod
from keeprouter.web.console_common import SESSIONS, message
from keeprouter.web.routes import SECURITY_HEADERS, WEB
from keeprouter.web.session import COOKIE, IDLE_SECONDS, Sessions

FLOW_COOKIE = "kr_oidc"
FLOW_PATH = "/auth/oidc"
FLOW_SECONDS = 600
USER_PREFIX = "user:"
CLIENT: web.AppKey[OidcClient] = web.AppKey("keeprouter_oidc", OidcClient)


def _sign(secret: bytes, payload: bytes) -> str:
    return hmac.new(secret, b"keeprouter-oidc-flow:" + payload, hashlib.sha256).hexdigest()


def pack_flow(secret: bytes, flow: Flow) -> str:
    payload = base64.urlsafe_b64encode(orjson.dumps([flow.state, flow.nonce, flow.verifier, flow.started]))
    return payload.decode() + "." + _sign(secret, payload)


def unpack_flow(secret: bytes, value: str | None, now: float) -> Flow | None:
    """The flow of a cookie this server signed in the last FLOW_SECONDS, or None."""
    if not value or len(value) > 1000 or "." not in value:
        return None
    payload, _, mac = value.partition(".")
    if not hmac.compare_digest(mac.encode(), _sign(secret, payload.encode()).encode()):
        return None
    try:
        state, nonce, verifier, started = orjson.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, TypeError):
        return None
    if not isinstance(started, int | float) or not 0 <= now - started <= FLOW_SECONDS:
        return None
    return Flow(str(state), str(nonce), str(verifier), float(started))


def principal(user: UserRecord, cfg: OidcConfig) -> KeyRecord:
    """What a signed-in user's session stands for, in the console's terms."""
    return KeyRecord(
        hash=USER_PREFIX + user.id, name=user.email, label=user.email, created_at=user.created_at,
        is_admin=cfg.is_admin(user.email), user_id=user.id, team_id=user.team_id,
    )  # fmt: skip


def _redirect_uri(request: web.Request) -> str:
    return site_mod.base_url(request.app[WEB].config.site, request) + FLOW_PATH + "/callback"


def _secret(request: web.Request) -> bytes:
    return request.app[SESSIONS].login.secret


async def login(request: web.Request) -> web.StreamResponse:
    client = request.app.get(CLIENT)
    if client is None:
        raise web.HTTPNotFound()
    try:
        url, flow = await client.start(_redirect_uri(request))
    except SignInRefused as e:
        return message(request, None, f"Sign-in is unavailable: {e}", 502)
    resp = web.HTTPSeeOther(url)
    resp.set_cookie(FLOW_COOKIE, pack_flow(_secret(request), flow), httponly=True, samesite="Lax", path=FLOW_PATH,
                    secure=site_mod.is_https(request.app[WEB].config.site, request), max_age=FLOW_SECONDS)  # fmt: skip
    raise resp


async def _team_id(store: Store, wanted: str | None, now: float) -> str | None:
    """The default team, by id or name; created (without limits) the first time it is needed."""
    if wanted is None:
        return None
    if await store.get_team(wanted, now) is not None:
        return wanted
    offset = 0
    while page := await store.list_teams(now, offset=offset, limit=500):
        for team in page:
            if team.name == wanted:
                return team.id
        offset += len(page)
    team = TeamRecord(id=f"team_{secrets.token_hex(8)}", name=wanted, created_at=now)
    await store.insert_team(team)
    return team.id


async def _user(store: Store, cfg: OidcConfig, who: Identity) -> UserRecord:
    """The user with this email; the first sign-in creates them, in the default team."""
    now = time.time()
    found = await store.find_user(who.email, now)
    if found is not None:
        return found
    user = UserRecord(
        id=f"user_{secrets.token_hex(8)}", email=who.email, created_at=now,
        team_id=await _team_id(store, cfg.default_team, now),
    )  # fmt: skip
    try:
        await store.insert_user(user)
    except ValueError:  # the same person signing in twice at once: the other request made them
        again = await store.find_user(who.email, now)
        if again is None:
            raise
        return again
    return user


async def callback(request: web.Request) -> web.StreamResponse:
    client = request.app.get(CLIENT)
    if client is None:
        raise web.HTTPNotFound()
    flow = unpack_flow(_secret(request), request.cookies.get(FLOW_COOKIE), time.time())
    try:
        if flow is None:
            raise SignInRefused("this sign-in expired or was not started here; start again")
        who = await client.finish(flow, request.query, _redirect_uri(request))
        user = await _user(request.app[STATE].store, client.cfg, who)
    except SignInRefused as e:
        resp = message(request, None, f"Sign-in refused: {e}", 403)
        resp.del_cookie(FLOW_COOKIE, path=FLOW_PATH)
        return resp
    sessions: Sessions = request.app[SESSIONS]
    session_id = await sessions.open(principal(user, client.cfg))
    body = (
        '<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=/console">'
        f"<title>Signed in</title><p>Signed in as {html.escape(user.email)}. "
        '<a href="/console">Continue to the console</a>.</p>'
    )
    resp = web.Response(text=body, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS)
    resp.headers["Cache-Control"] = "no-store"
    https = site_mod.is_https(request.app[WEB].config.site, request)
    resp.set_cookie(COOKIE, session_id, httponly=True, samesite="Strict", path="/", secure=https,
                    max_age=int(IDLE_SECONDS))  # fmt: skip
    resp.del_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return resp


def setup(app: web.Application, cfg: OidcConfig | None) -> None:
    """At start-up, after the sessions and the store exist: enable the routes, teach the sessions
    to resolve "user:<id>", and offer the provider on /login."""
    if cfg is None:
        return
    app[CLIENT] = OidcClient(cfg)
    store = app[STATE].store

    async def resolve(user_id: str) -> KeyRecord | None:
        user = await store.get_user(user_id, time.time())
        return None if user is None else principal(user, cfg)

    app[SESSIONS].principals[USER_PREFIX] = resolve
    app[WEB].renderer.html.globals["oidc_login"] = FLOW_PATH + "/login"


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get(FLOW_PATH + "/login", login)
    r.add_get(FLOW_PATH + "/callback", callback)

"""The console routes: sign-in, a key's own usage and request log, and the operator's keys.

Every page needs a session (else 303 to /login), is never cached (Cache-Control: no-store), and
carries the public pages' strict CSP. Every POST needs the session's CSRF token, and the sign-in
its pre-session token (else 403). No key or session id is ever put in a URL or logged.
"""

from __future__ import annotations

from aiohttp import web

from keeprouter.api.activity import key_activity
from keeprouter.api.http import STATE
from keeprouter.errors import GatewayError
from keeprouter.store.base import GenerationFilter
from keeprouter.web import console_admin
from keeprouter.web import site as site_mod
from keeprouter.web.console_common import SESSIONS, Message, html, message, signed, signed_in
from keeprouter.web.pages import console as pages
from keeprouter.web.pages import people
from keeprouter.web.routes import WEB, _site
from keeprouter.web.session import COOKIE, IDLE_SECONDS, LOGIN_COOKIE, LOGIN_COOKIE_SECONDS, Signed

LOG_PAGE = 50
_NAMED_KEYS = 1000  # keys named in a log's Key column; beyond, a key shows as its hash's start


def _login_page(request: web.Request, text: str, status: int = 200) -> web.Response:
    """The sign-in form, with its pre-session token (and the nonce cookie it is signed from)."""
    w, guard = request.app[WEB], request.app[SESSIONS].login
    nonce = guard.nonce(request.cookies.get(LOGIN_COOKIE))
    page = Message(_site(w, request), request.path, "Console", "", False, text, status, "", guard.token(nonce))
    resp = html(request, "console_message", page, status)
    resp.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="Strict", path="/login",
                    secure=site_mod.is_https(w.config.site, request), max_age=LOGIN_COOKIE_SECONDS)  # fmt: skip
    return resp


async def login_form(request: web.Request) -> web.StreamResponse:
    if await signed(request) is not None:
        raise web.HTTPSeeOther("/console")
    return _login_page(request, "")


async def login(request: web.Request) -> web.StreamResponse:
    w, sessions = request.app[WEB], request.app[SESSIONS]
    form = await request.post()
    if not sessions.login.ok(request.cookies.get(LOGIN_COOKIE), str(form.get("csrf", "")) or None):
        return _login_page(request, "Refused: this sign-in form is missing its security token. Reload and retry.", 403)
    addr = site_mod.client_address(w.config.site, request)
    wait = sessions.backoff.wait(addr)
    if wait > 0:
        resp = _login_page(request, f"Too many failed sign-ins: try again in {int(wait) + 1} s.", 429)
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
    try:
        record = await request.app[STATE].keys.authenticate(str(form.get("key", "")).strip())
    except GatewayError:
        sessions.backoff.failed(addr)
        return _login_page(request, "That key was not accepted.", 401)
    sessions.backoff.succeeded(addr)
    session_id = await sessions.open(record)
    resp = web.HTTPSeeOther("/console")
    resp.set_cookie(COOKIE, session_id, httponly=True, samesite="Strict", path="/",
                    secure=site_mod.is_https(w.config.site, request), max_age=int(IDLE_SECONDS))  # fmt: skip
    resp.del_cookie(LOGIN_COOKIE, path="/login")
    raise resp


async def logout(request: web.Request, s: Signed) -> web.StreamResponse:
    await request.app[SESSIONS].close(s.session_id)
    resp = web.HTTPSeeOther("/login")
    resp.del_cookie(COOKIE, path="/")
    raise resp


async def overview(request: web.Request, s: Signed) -> web.StreamResponse:
    """A key's credit and usage; the admin sees every key's usage, or one key's with `?key=`."""
    w, state = request.app[WEB], request.app[STATE]
    if s.record.hash.startswith("user:") and not s.record.is_admin:  # signed in as a person (web/oidc.py)
        raise web.HTTPSeeOther("/console/me")
    wanted = request.query.get("key") if s.record.is_admin else None
    try:
        record = s.record if s.record.is_admin and wanted is None else await state.keys.get(wanted or s.record.hash)
    except GatewayError:
        raise web.HTTPNotFound() from None
    start, end = w.sources.window(30)
    rows = await key_activity(state.store, s.record, wanted, start, end)
    site = _site(w, request)
    every_key = s.record.is_admin and wanted is None
    since = site.today.replace(day=1)
    cache = await state.store.cache_usage(since, site.today, key_hash=None if every_key else record.hash)
    names = {k.hash: k.name for k in await state.keys.list(limit=1000)} if every_key else None
    page = pages.overview(site, record, rows, s.csrf, s.record.is_admin, cache, names)
    return html(request, "console", page)


async def _key_names(request: web.Request, s: Signed) -> dict[str, str] | None:
    """Key hash -> name for a log spanning several keys (the operator's, a team's, a person's);
    None for a pasted key's own log, which spans one."""
    keys = request.app[STATE].keys
    if s.record.is_admin:
        return {k.hash: k.name for k in await keys.list(limit=_NAMED_KEYS)}
    if s.user is None:
        return None
    team_admin = s.user.team_admin and s.user.team_id is not None
    owned = await (keys.list(team_id=s.user.team_id, limit=_NAMED_KEYS) if team_admin
                   else keys.list(user_id=s.user.id, limit=_NAMED_KEYS))  # fmt: skip
    return {k.hash: k.name for k in owned}


async def log_list(request: web.Request, s: Signed) -> web.StreamResponse:
    """The request log: every request this session may see (people.scope), filtered by the query's
    key, user, team and model; one that asks for what the session may not see shows nothing."""
    try:
        before = float(request.query["before"]) if "before" in request.query else None
    except ValueError:
        before = None
    match = people.narrow(people.scope(s.record, s.user), people.log_filter(request.query))
    store = request.app[STATE].store
    gens = [] if match is None else await store.find_generations(match, before=before, limit=LOG_PAGE)
    names = await _key_names(request, s)
    filters = {name: request.query.get(name, "")[:200] for name in people.log_filters_offered(s.record, s.user)}
    page = pages.logs(_site(request.app[WEB], request), gens, LOG_PAGE, s.csrf, s.record.is_admin, filters, names)
    return html(request, "console_logs", page)


async def log_detail(request: web.Request, s: Signed) -> web.StreamResponse:
    gen_id = request.match_info["id"]
    match = people.narrow(people.scope(s.record, s.user), GenerationFilter(id=gen_id))
    found = [] if match is None or "\x00" in gen_id else await request.app[STATE].store.find_generations(match, limit=1)
    if not found:
        return message(request, s, "There is no such generation of this key.", 404)
    return html(request, "console_detail", pages.detail(_site(request.app[WEB], request), found[0], s.csrf,
                                                         s.record.is_admin))  # fmt: skip


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/login", login_form)
    r.add_post("/login", login)
    r.add_post("/logout", signed_in(logout))
    r.add_get("/console", signed_in(overview))
    r.add_get("/console/logs", signed_in(log_list))
    r.add_get("/console/logs/{id}", signed_in(log_detail))
    console_admin.add_routes(r)  # the operator's pages


__all__ = ["SESSIONS", "add_routes"]  # the app keeps the sessions under console.SESSIONS

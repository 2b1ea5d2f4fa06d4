"""The console's people routes: a person's own keys ("Get an API key"), a team's page, and the
operator's list of teams and users.

- GET /console/me: a person signed in with their organisation's account sees their budget and
  their team's, and their keys with each key's usage and a link to its requests; they make
  (POST /console/me/keys) and revoke (POST /console/me/keys/{hash}/revoke) their own keys, at most
  `auth.oidc.max_keys_per_user`, each with a limit no larger than what their budget has left.
- GET /console/teams/{id}: the team's usage per day, members and keys, for the team's admins and the
  operator, who may disable or enable any of the team's keys (POST .../keys/{hash}/{action}).
- GET /console/people: every team and user (the operator).

Every form carries the session's CSRF token (checked by `signed_in`, like every console form).
"""

from __future__ import annotations

import time

from aiohttp import web

from keeprouter.api.http import STATE
from keeprouter.errors import GatewayError
from keeprouter.people import create_own_key
from keeprouter.store.base import ADMIN_HASH, TeamRecord
from keeprouter.web.console_common import html, message, signed_in
from keeprouter.web.oidc import CLIENT
from keeprouter.web.pages import people as pages
from keeprouter.web.routes import WEB, _site
from keeprouter.web.session import Signed

HISTORY_DAYS = 30
_MAX_LISTED = 1000  # keys, members, teams or users on one page


def _ident(value: str) -> bool:
    """Whether a path segment can be an id or key hash we issue (else it is simply not found, and
    never reaches the database: PostgreSQL refuses NUL in text)."""
    return 0 < len(value) <= 100 and value.isascii() and value.replace("_", "").replace("-", "").isalnum()


def _most(request: web.Request) -> int:
    client = request.app.get(CLIENT)
    return 0 if client is None else client.cfg.max_keys_per_user


async def me(request: web.Request, s: Signed) -> web.StreamResponse:
    """The "Get an API key" page: a person's keys; a pasted key's session has no person behind it."""
    if s.user is None:
        raise web.HTTPSeeOther("/console/keys" if s.record.hash == ADMIN_HASH else "/console")
    state, user = request.app[STATE], s.user
    team = None if user.team_id is None else await state.store.get_team(user.team_id, time.time())
    keys = await state.keys.list(user_id=user.id, limit=_MAX_LISTED)
    page = pages.me(_site(request.app[WEB], request), s.csrf, user, team, keys, _most(request), s.record.is_admin)
    return html(request, "console_me", page)


async def create_key(request: web.Request, s: Signed) -> web.StreamResponse:
    if s.user is None:
        return message(request, s, "Only a person signed in with their organisation's account makes keys here.", 403)
    form = await request.post()
    values = {k: str(form.get(k, "")).strip() or None for k in ("name", "limit", "limit_reset")}
    state = request.app[STATE]
    try:
        key, record = await create_own_key(state.keys, state.store, s.user, dict(values), _most(request), time.time())
    except GatewayError as e:
        return message(request, s, f"Not created: {e}", 400)
    text = f"Key {record.name!r} created. Copy it now: it is shown only once."
    return message(request, s, text, 201, key, back="/console/me")


async def revoke_key(request: web.Request, s: Signed) -> web.StreamResponse:
    keys = request.app[STATE].keys
    if not _ident(request.match_info["hash"]):
        return message(request, s, "You have no such key.", 404)
    try:
        record = await keys.get(request.match_info["hash"])
        if s.user is None or record.user_id != s.user.id:  # only one's own: another's is not found
            return message(request, s, "You have no such key.", 404)
        await keys.delete(record.hash)
    except GatewayError:
        return message(request, s, "You have no such key.", 404)
    raise web.HTTPSeeOther("/console/me")


async def _team(request: web.Request, s: Signed) -> TeamRecord | web.Response:
    """The team of the path, when this session may manage it (the operator, or its admin)."""
    wanted = request.match_info["id"]
    found = await request.app[STATE].store.get_team(wanted, time.time()) if _ident(wanted) else None
    if found is None:
        return message(request, s, "There is no such team.", 404)
    admin_here = s.user is not None and s.user.team_admin and s.user.team_id == found.id
    if not (s.record.is_admin or admin_here):
        return message(request, s, "This page is for the team's admins and the operator.", 403)
    return found


async def team_page(request: web.Request, s: Signed) -> web.StreamResponse:
    team = await _team(request, s)
    if isinstance(team, web.Response):
        return team
    state, w = request.app[STATE], request.app[WEB]
    members = await state.store.list_users(time.time(), team_id=team.id, limit=_MAX_LISTED)
    keys = await state.keys.list(team_id=team.id, limit=_MAX_LISTED)
    start, end = w.sources.window(HISTORY_DAYS)
    activity = await state.store.activity(start, end, team_id=team.id)
    page = pages.team(_site(w, request), s.csrf, s.record.is_admin, team, members, keys, activity)
    return html(request, "console_team", page)


async def team_key(request: web.Request, s: Signed) -> web.StreamResponse:
    """Disable or enable one of the team's keys (a member's, or a service key)."""
    team = await _team(request, s)
    if isinstance(team, web.Response):
        return team
    action, keys = request.match_info["action"], request.app[STATE].keys
    if action not in ("disable", "enable"):
        raise web.HTTPNotFound()
    if not _ident(request.match_info["hash"]):
        return message(request, s, "The team has no such key.", 404)
    try:
        record = await keys.get(request.match_info["hash"])
        if record.team_id != team.id:
            return message(request, s, "The team has no such key.", 404)
        await keys.update(record.hash, disabled=action == "disable")
    except GatewayError:
        return message(request, s, "The team has no such key.", 404)
    raise web.HTTPSeeOther(f"/console/teams/{team.id}")


async def people_page(request: web.Request, s: Signed) -> web.StreamResponse:
    now, store = time.time(), request.app[STATE].store
    teams = await store.list_teams(now, limit=_MAX_LISTED)
    users = await store.list_users(now, limit=_MAX_LISTED)
    return html(request, "console_people", pages.people(_site(request.app[WEB], request), s.csrf, teams, users))


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/console/me", signed_in(me))
    r.add_post("/console/me/keys", signed_in(create_key))
    r.add_post("/console/me/keys/{hash}/revoke", signed_in(revoke_key))
    r.add_get("/console/teams/{id}", signed_in(team_page))
    r.add_post("/console/teams/{id}/keys/{hash}/{action}", signed_in(team_key))
    r.add_get("/console/people", signed_in(people_page, admin=True))

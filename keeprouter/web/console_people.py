"""The console page of a person signed in with their organisation's account: GET /console/me.

Their budget and their team's (limit, usage in the current period, what is left, when it resets),
and the keys they own. The operator's console is unchanged; `admin_emails` get that one instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from keeprouter.api.http import STATE
from keeprouter.people import budget_json
from keeprouter.web.console_common import html, signed_in
from keeprouter.web.pages.common import Site
from keeprouter.web.routes import WEB, _site
from keeprouter.web.session import Signed

_KEY_SCAN = 1000  # keys read to find a user's own (a store query by owner would replace this)


@dataclass(frozen=True, slots=True)
class MePage:
    site: Site
    path: str
    title: str
    csrf: str
    is_admin: bool
    email: str
    budgets: list[tuple[str, dict[str, Any]]]  # ("Your budget" | "Team <name>", budget_json)
    keys: list[dict[str, Any]]


async def me(request: web.Request, s: Signed) -> web.StreamResponse:
    state, now = request.app[STATE], time.time()
    budgets: list[tuple[str, dict[str, Any]]] = []
    user = None if s.record.user_id is None else await state.store.get_user(s.record.user_id, now)
    if user is None:
        raise web.HTTPSeeOther("/console")
    budgets.append(("Your budget", budget_json(user, now)))
    team = None if user.team_id is None else await state.store.get_team(user.team_id, now)
    if team is not None:
        budgets.append((f"Team {team.name}", budget_json(team, now)))
    owned = [k for k in await state.keys.list(limit=_KEY_SCAN) if k.user_id == user.id]
    keys = [state.keys.to_openrouter(k, now) for k in owned]
    page = MePage(_site(request.app[WEB], request), request.path, "Your usage", s.csrf, s.record.is_admin,
                  user.email, budgets, keys)  # fmt: skip
    return html(request, "console_me", page)


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/console/me", signed_in(me))

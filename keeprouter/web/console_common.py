"""What every console page shares: the session lookup, the signed-in guard (session, CSRF, admin),
and the HTML answer (never cached, the public pages' strict CSP). Its own module so that the
console (console.py) and the operator's pages (console_admin.py) both import it, not each other."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from keeprouter.api.http import STATE
from keeprouter.web.pages import people
from keeprouter.web.pages.common import Site
from keeprouter.web.routes import SECURITY_HEADERS, WEB, _site
from keeprouter.web.session import COOKIE, Sessions, Signed

SESSIONS: web.AppKey[Sessions] = web.AppKey("keeprouter_sessions", Sessions)
# The request's console menu, set by the signed-in guard: (title, href) pairs.
NAV: web.RequestKey[tuple[tuple[str, str], ...]] = web.RequestKey("keeprouter_console_nav", tuple)


@dataclass(frozen=True, slots=True)
class Message:
    site: Site
    path: str
    title: str
    csrf: str
    is_admin: bool
    text: str
    status: int = 200
    new_key: str = ""  # shown once, right after it is made
    login_csrf: str = ""  # the sign-in form's pre-session token
    back: str = "/console/keys"  # where the page showing a new key leads back to


def html(request: web.Request, template: str, page: Any, status: int = 200) -> web.Response:
    body = request.app[WEB].renderer.render(template, page, "html", nav=request.get(NAV, ()))
    resp = web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS)
    resp.headers["Cache-Control"] = "no-store"
    return resp


async def signed(request: web.Request) -> Signed | None:
    """The request's live session; a person's carries their user record, read afresh."""
    s = await request.app[SESSIONS].resolve(request.cookies.get(COOKIE))
    if s is not None and people.is_person(s.record) and s.record.user_id is not None:
        user = await request.app[STATE].store.get_user(s.record.user_id, time.time())
        s = dataclasses.replace(s, user=user)
    return s


Handler = Callable[[web.Request, Signed], Awaitable[web.StreamResponse]]


def signed_in(fn: Handler, *, admin: bool = False) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        s = await signed(request)
        if s is None:
            raise web.HTTPSeeOther("/login")
        request[NAV] = people.nav(s.record, s.user)
        if request.method == "POST":
            form = await request.post()
            if not s.csrf_ok(str(form.get("csrf", "")) or None):
                return message(request, s, "Refused: this form is missing its security token. Reload and retry.", 403)
        if admin and not s.record.is_admin:
            return message(request, s, "This page is for the operator's admin key.", 403)
        return await fn(request, s)

    return handler


def message(
    request: web.Request, s: Signed | None, text: str, status: int = 200, new_key: str = "",
    back: str = "/console/keys",
) -> web.Response:  # fmt: skip
    site = _site(request.app[WEB], request)
    page = Message(site, request.path, "Console", s.csrf if s else "", bool(s and s.record.is_admin), text,
                   status, new_key, back=back)  # fmt: skip
    return html(request, "console_message", page, status)

"""Every console route x every kind of session, through the real in-process gateway.

Sessions: none, expired, of a key disabled since, of a person deleted since (all: to /login); a
pasted customer key's; the admin key's; people signed in with OpenID Connect: a member of team T,
T's admin, another team's admin, and an operator (an `admin_emails` address). Each route states
what each live session gets; a POST without the session's CSRF token is refused (403) for each.
No sign-in flow runs here (tests/web/test_oidc.py drives those): people's sessions are opened the
way the callback opens them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from support.console import browser, post_login
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream

from keeprouter.api.http import STATE
from keeprouter.store.base import SessionRecord
from keeprouter.web.console_common import SESSIONS
from keeprouter.web.oidc import CLIENT, principal
from keeprouter.web.session import ABSOLUTE_SECONDS, COOKIE, csrf_token

TIMEOUT = aiohttp.ClientTimeout(total=10)
AUTH = {
    "oidc": {
        "issuer": "http://127.0.0.1:9",
        "client_id": "c",
        "allowed_domains": ["example.com"],
        "admin_emails": ["ops@example.com"],
    }
}  # fmt: skip  (never contacted: no flow runs)
# The live sessions, in the order each route is tried with them.
LIVE = ("customer", "admin", "user", "team_admin", "other_admin", "operator")


@dataclass(frozen=True)
class ConsoleRoute:
    method: str
    path: str  # "{hash}": the target key (member's, in team T); "{id}": team T
    expect: tuple[int, ...]  # what each LIVE session gets, in LIVE's order
    form: Any = None
    pattern: str = ""  # the router's pattern, when not the path itself
    fresh: bool = False  # destructive: {hash} is a new key of the member's for each session

    @property
    def route(self) -> tuple[str, str]:
        return self.method, self.pattern or self.path


OPERATOR_ONLY = (403, 200, 403, 403, 403, 200)
ACTION = "/console/keys/{hash}/{action}"
TEAM_ACTION = "/console/teams/{id}/keys/{hash}/{action}"
CONSOLE = [
    #                                                  customer admin user  t-adm other operator
    ConsoleRoute("GET", "/console", (200, 200, 303, 303, 303, 200)),  # a person's usage is on /console/me
    ConsoleRoute("GET", "/console/logs", (200, 200, 200, 200, 200, 200)),
    ConsoleRoute("GET", "/console/logs/gen-none", (404,) * 6, pattern="/console/logs/{id}"),
    ConsoleRoute("GET", "/console/keys", OPERATOR_ONLY),
    ConsoleRoute("POST", "/console/keys", (403, 201, 403, 403, 403, 201), {"name": "made"}),
    ConsoleRoute("GET", "/console/keys/{hash}/edit", OPERATOR_ONLY),
    ConsoleRoute(
        "POST", "/console/keys/{hash}/edit", (403, 303, 403, 403, 403, 303), {"name": "edited", "limit": "3"}, ACTION
    ),
    ConsoleRoute("POST", "/console/keys/{hash}/disable", (403, 303, 403, 403, 403, 303), pattern=ACTION),
    ConsoleRoute("POST", "/console/keys/{hash}/enable", (403, 303, 403, 403, 403, 303), pattern=ACTION),
    ConsoleRoute("GET", "/console/providers", OPERATOR_ONLY),
    ConsoleRoute("GET", "/console/people", OPERATOR_ONLY),
    # a pasted key has no person behind it: the admin key goes to Keys, a customer to their usage
    ConsoleRoute("GET", "/console/me", (303, 303, 200, 200, 200, 200)),
    ConsoleRoute("POST", "/console/me/keys", (403, 403, 201, 201, 201, 201), {"name": "mine"}),
    ConsoleRoute(
        "POST",
        "/console/me/keys/{hash}/revoke",
        (404, 404, 303, 404, 404, 404),
        pattern="/console/me/keys/{hash}/revoke",
        fresh=True,
    ),  # fmt: skip  (only its owner)
    ConsoleRoute("GET", "/console/teams/{id}", (403, 200, 403, 200, 403, 200), pattern="/console/teams/{id}"),
    ConsoleRoute(
        "POST", "/console/teams/{id}/keys/{hash}/disable", (403, 303, 403, 303, 403, 303), pattern=TEAM_ACTION
    ),
    ConsoleRoute("POST", "/console/teams/{id}/keys/{hash}/enable", (403, 303, 403, 303, 403, 303), pattern=TEAM_ACTION),
    ConsoleRoute("POST", "/console/keys/{hash}/delete", (403, 303, 403, 403, 403, 303), pattern=ACTION, fresh=True),
    ConsoleRoute("POST", "/logout", (303,) * 6),  # last: it ends the session
]


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path), auth=AUTH)
    async with run_gateway(cfg) as g:
        yield g


async def api(gw: RunningGateway, method: str, path: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as s,
        s.request(method, gw.url + path, json=body, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as r,
    ):
        assert r.status < 300, await r.text()
        return await r.json()


async def key_session(gw: RunningGateway, key: str) -> str:
    async with browser() as s:
        r = await post_login(s, gw.url, key)
        assert r.status == 303, r.status
        return r.cookies[COOKIE].value


async def person_session(gw: RunningGateway, user_id: str) -> str:
    """A person's session, opened as the OpenID Connect callback opens it."""
    app = gw.server.app
    user = await app[STATE].store.get_user(user_id, time.time())
    assert user is not None
    return await app[SESSIONS].open(principal(user, app[CLIENT].cfg))


async def test_console_routes_by_session(gw: RunningGateway) -> None:
    routes = gw.server.app.router.routes()
    table = {(r.method, r.resource.canonical) for r in routes if r.resource is not None and r.method != "HEAD"}
    table = {(m, p) for m, p in table if p.startswith("/console") or p == "/logout"}
    assert table == {r.route for r in CONSOLE}, table ^ {r.route for r in CONSOLE}  # every console route has a row

    team = (await api(gw, "POST", "/api/v1/teams", {"name": "T"}))["data"]["id"]
    other_team = (await api(gw, "POST", "/api/v1/teams", {"name": "U"}))["data"]["id"]
    people = {
        who: (await api(gw, "POST", "/api/v1/users", body))["data"]["id"]
        for who, body in {
            "user": {"email": "member@example.com", "team_id": team},
            "team_admin": {"email": "lead@example.com", "team_id": team, "team_admin": True},
            "other_admin": {"email": "else@example.com", "team_id": other_team, "team_admin": True},
            "operator": {"email": "ops@example.com"},
            "deleted": {"email": "gone@example.com", "team_id": team},
        }.items()
    }

    async def member_key(name: str) -> str:
        made = await api(gw, "POST", "/api/v1/keys", {"name": name, "user_id": people["user"]})
        return str(made["data"]["hash"])

    target = await member_key("target")
    customer = (await api(gw, "POST", "/api/v1/keys", {"name": "customer"}))["key"]
    to_disable = await api(gw, "POST", "/api/v1/keys", {"name": "disabled-later"})
    sessions = {"customer": await key_session(gw, customer), "admin": await key_session(gw, ADMIN_KEY),
                "disabled": await key_session(gw, to_disable["key"]), "expired": "expired-" + "x" * 40}  # fmt: skip
    for who in ("user", "team_admin", "other_admin", "operator", "deleted"):
        sessions[who] = await person_session(gw, people[who])
    await api(gw, "PATCH", f"/api/v1/keys/{to_disable['data']['hash']}", {"disabled": True})
    await api(gw, "DELETE", f"/api/v1/users/{people['deleted']}")
    past = time.time() - 60
    await gw.server.app[STATE].store.insert_session(SessionRecord(
        id_hash=hashlib.sha256(sessions["expired"].encode()).hexdigest(), key_hash=to_disable["data"]["hash"],
        created_at=past - ABSOLUTE_SECONDS, last_seen=past, expires_at=past))  # fmt: skip

    async with aiohttp.ClientSession(timeout=TIMEOUT) as s:

        async def send(route: ConsoleRoute, who: str | None, *, with_csrf: bool = True) -> tuple[int, str]:
            cookie = {"Cookie": f"{COOKIE}={sessions[who]}"} if who else {}
            data = dict(route.form or {})
            if who and with_csrf:
                data["csrf"] = csrf_token(sessions[who])
            key = await member_key(f"fresh-{who}") if route.fresh else target
            url = gw.url + route.path.replace("{hash}", key).replace("{id}", team)
            async with s.request(route.method, url, data=data if route.method == "POST" else None, headers=cookie,
                                 allow_redirects=False) as r:  # fmt: skip
                body = await r.text()
                for secret in (customer, ADMIN_KEY, *sessions.values()):
                    assert secret not in body
                return r.status, r.headers.get("Location", "")

        for route in CONSOLE:
            for gone in (None, "expired", "disabled", "deleted"):
                assert await send(route, gone) == (303, "/login"), (route.path, gone)
            if route.method == "POST":
                for who in LIVE:
                    assert (await send(route, who, with_csrf=False))[0] == 403, (route.path, who)
            got = tuple([(await send(route, who))[0] for who in LIVE])
            assert got == route.expect, (route.path, dict(zip(LIVE, got, strict=True)))

"""The console as served: sign-in, sessions, CSRF, a customer sees only their own usage and log, the
operator manages keys; cookie flags; no key or session id in a URL or page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from support.clients import anthropic_client, openai_client
from support.console import CSRF, browser, login_token, post_login
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply

from keeprouter.api.http import STATE
from keeprouter.web.routes import CSP


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    async with run_gateway(two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))) as g:
        yield g


async def sign_in(s: aiohttp.ClientSession, gw: RunningGateway, key: str) -> str:
    """Signs in; returns the console page's CSRF token."""
    r = await post_login(s, gw.url, key)
    assert r.status == 303 and r.headers["Location"] == "/console"
    cookie = next(c for c in r.headers.getall("Set-Cookie") if c.startswith("kr_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie  # plain http
    assert key not in cookie
    async with s.get(gw.url + "/console") as r:
        assert r.status == 200
        assert r.headers["Content-Security-Policy"] == CSP and r.headers["Cache-Control"] == "no-store"
        body = await r.text()
    assert key not in body
    m = CSRF.search(body)
    assert m
    return m.group(1)


async def test_without_a_session_every_console_page_goes_to_login(gw: RunningGateway) -> None:
    async with browser() as s:
        for path in ("/console", "/console/logs", "/console/logs/gen-x", "/console/keys", "/console/providers"):
            async with s.get(gw.url + path, allow_redirects=False) as r:
                assert (r.status, r.headers.get("Location")) == (303, "/login"), path
        async with s.get(gw.url + "/login") as r:
            text = await r.text()
            assert r.status == 200 and "/docs/quickstart#api-key" in text and 'name="key"' in text


async def test_customer_sees_only_their_own_generations_credit_and_session_ends_when_disabled(
    gw: RunningGateway, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    async with browser() as admin:
        token = await sign_in(admin, gw, ADMIN_KEY)
        async with admin.post(gw.url + "/console/keys", data={"name": "cust", "limit": "5", "csrf": token}) as r:
            assert r.status == 201
            page = await r.text()
        key = re.search(r'<code id="new-key">(sk-kr-v1-[^<]+)</code>', page)
        assert key
        customer_key = key.group(1)
        async with admin.get(gw.url + "/console/keys") as r:
            assert customer_key not in await r.text()  # shown once only
        other = (await gw.create_key("other"))["key"]
        openai_upstream.script(Reply(text="hi", input_tokens=100, output_tokens=50))
        anthropic_upstream.script(Reply(text="yo", input_tokens=200, output_tokens=10))
        async with openai_client(gw.url, customer_key) as oc, anthropic_client(gw.url, customer_key) as ac:
            await oc.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
            await ac.messages.create(model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
        openai_upstream.script(Reply(text="hi", input_tokens=7, output_tokens=7))
        async with openai_client(gw.url, other) as oc:
            await oc.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "x"}])
        await gw.server.app[STATE].gateway.drain()
        store = gw.server.app[STATE].store
        record = await gw.server.app[STATE].keys.authenticate(customer_key)
        mine = await store.list_generations(record.hash)
        assert len(mine) == 2
        async with browser() as cust:
            ctoken = await sign_in(cust, gw, customer_key)
            async with cust.get(gw.url + "/console") as r:
                body = await r.text()
            remaining = record.limit_remaining
            assert remaining is not None
            assert "Spend per day by model" in body and "claude-test" in body and "gpt-test" in body
            # this month's prompt cache, per model, of this key only (no per-key table for a key)
            assert "Prompt cache by model" in body and "Prompt cache by key" not in body
            async with admin.get(gw.url + "/console") as r:
                every = await r.text()
            assert "Prompt cache by key" in every and ">cust<" in every and ">other<" in every
            async with cust.get(gw.url + "/console/logs") as r:
                logs = await r.text()
            ids = set(re.findall(r'href="/console/logs/(gen-[^"]+)"', logs))
            assert ids == {g.id for g in mine}
            others = await store.list_generations((await gw.server.app[STATE].keys.authenticate(other)).hash)
            async with cust.get(gw.url + f"/console/logs/{others[0].id}") as r:
                assert r.status == 404
            async with cust.get(gw.url + f"/console/logs/{mine[0].id}") as r:
                assert r.status == 200 and "Attempts" in await r.text()
            async with cust.get(gw.url + "/console/keys") as r:
                assert r.status == 403
            # a forged form without the token is refused
            async with admin.post(gw.url + f"/console/keys/{record.hash}/disable", data={}) as r:
                assert r.status == 403
            async with cust.get(gw.url + "/console", allow_redirects=False) as r:
                assert r.status == 200
            async with admin.post(gw.url + f"/console/keys/{record.hash}/disable", data={"csrf": token},
                                  allow_redirects=False) as r:  # fmt: skip
                assert r.status == 303
            async with cust.get(gw.url + "/console", allow_redirects=False) as r:
                assert (r.status, r.headers["Location"]) == (303, "/login")
            async with cust.post(gw.url + "/logout", data={"csrf": ctoken}, allow_redirects=False) as r:
                assert r.status == 303  # the session is gone already: back to the sign-in page


async def test_sign_out_ends_the_session_and_failures_back_off(gw: RunningGateway) -> None:
    async with browser() as s:
        token = await sign_in(s, gw, ADMIN_KEY)
        async with s.post(gw.url + "/logout", data={"csrf": token}, allow_redirects=False) as r:
            assert r.status == 303
        async with s.get(gw.url + "/console", allow_redirects=False) as r:
            assert r.status == 303
        assert (await post_login(s, gw.url, "sk-kr-v1-wrong")).status == 401
        r = await post_login(s, gw.url, ADMIN_KEY)
        assert r.status == 429 and int(r.headers["Retry-After"]) >= 1  # slowed down, even for a good key


async def test_sign_in_needs_the_forms_own_token(gw: RunningGateway) -> None:
    async with browser() as s, browser() as other:
        async with s.post(gw.url + "/login", data={"key": ADMIN_KEY}, allow_redirects=False) as r:
            assert r.status == 403 and "security token" in await r.text()  # no token, no nonce cookie
        theirs = await login_token(other, gw.url)  # a token from another visitor's form
        async with s.post(gw.url + "/login", data={"key": ADMIN_KEY, "csrf": theirs}, allow_redirects=False) as r:
            assert r.status == 403
        mine = await login_token(s, gw.url)
        assert mine != theirs
        nonce = next(c for c in s.cookie_jar if c.key == "kr_login")
        assert nonce["httponly"] and nonce["samesite"] == "Strict" and nonce["path"] == "/login"
        async with s.post(gw.url + "/login", data={"key": ADMIN_KEY, "csrf": mine}, allow_redirects=False) as r:
            assert r.status == 303  # refusals above were not failed sign-ins: no backoff
        async with s.get(gw.url + "/console") as r:
            assert r.status == 200


async def test_cookies_are_secure_behind_a_trusted_https_proxy_only(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> None:
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path),
                            site={"trusted_proxies": ["127.0.0.1"]})  # fmt: skip
    async with run_gateway(cfg) as g, browser() as s:
        https = {"X-Forwarded-Proto": "https"}
        async with s.get(g.url + "/login", headers=https) as r:
            nonce = r.cookies["kr_login"]
            assert nonce["secure"] and nonce["httponly"] and nonce["samesite"] == "Strict"
            token = CSRF.search(await r.text())
        assert token
        data = {"key": ADMIN_KEY, "csrf": token.group(1)}
        # the jar keeps Secure cookies off plain http: hand the nonce over as the proxy would
        cookie = {"Cookie": f"kr_login={nonce.value}"}
        async with aiohttp.ClientSession() as raw:
            async with raw.post(g.url + "/login", data=data, headers={**https, **cookie}, allow_redirects=False) as r:
                assert r.status == 303
                session = r.cookies["kr_session"]
                assert session["secure"] and session["httponly"] and session["samesite"] == "Strict"
            async with raw.get(g.url + "/login") as r:  # the same peer, no proxy header: plain http
                assert not r.cookies["kr_login"]["secure"]


async def test_the_operator_edits_a_key_through_the_key_service(gw: RunningGateway) -> None:
    made = await gw.create_key("editable", limit=5)
    h = made["data"]["hash"]
    async with browser() as admin, browser() as cust:
        token = await sign_in(admin, gw, ADMIN_KEY)
        async with admin.get(gw.url + "/console/keys") as r:
            assert f'href="/console/keys/{h}/edit"' in await r.text()
        async with admin.get(gw.url + f"/console/keys/{h}/edit") as r:
            form = await r.text()
            assert r.status == 200 and 'value="editable"' in form
            assert 'id="limit" name="limit" inputmode="decimal" value="5"' in form
        edit = gw.url + f"/console/keys/{h}/edit"
        good = {"csrf": token, "name": "renamed", "limit": "7.5", "limit_reset": "weekly", "rpm_limit": "30",
                "tpm_limit": "", "disabled": "on"}  # fmt: skip
        async with admin.post(edit, data={**good, "rpm_limit": "lots", "limit": "-1"}) as r:
            page = await r.text()
            assert r.status == 400
            assert '<p class="field-error" id="rpm_limit-error">rpm_limit: must be a whole number' in page
            assert 'aria-invalid="true" aria-describedby="rpm_limit-error"' in page
            assert 'value="lots"' in page and 'value="renamed"' in page  # what was typed stays
        async with admin.post(edit, data={**good, "limit": "-1"}) as r:  # the service's own validation
            page = await r.text()
            assert r.status == 400 and 'id="limit-error">limit: must be between 0 and 1e9 USD' in page
        async with admin.post(edit, data={**good, "limit_reset": "hourly"}) as r:
            assert r.status == 400 and 'id="limit_reset-error"' in await r.text()
        async with admin.post(edit, data={**good, "csrf": ""}) as r:
            assert r.status == 403
        async with admin.get(gw.url + f"/api/v1/keys/{h}", headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as r:
            data = (await r.json())["data"]
            assert (data["name"], data["limit"], data["disabled"]) == ("editable", 5.0, False)  # nothing saved yet
        ctoken = await sign_in(cust, gw, made["key"])
        async with cust.get(edit) as r:
            assert r.status == 403
        async with cust.post(edit, data={**good, "csrf": ctoken}) as r:
            assert r.status == 403
        async with admin.post(edit, data=good, allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, "/console/keys")
        async with admin.get(gw.url + f"/api/v1/keys/{h}", headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as r:
            data = (await r.json())["data"]
        assert (data["name"], data["limit"], data["limit_reset"], data["rpm_limit"], data["tpm_limit"],
                data["disabled"]) == ("renamed", 7.5, "weekly", 30, None, True)  # fmt: skip
        async with cust.get(gw.url + "/console", allow_redirects=False) as r:
            assert r.status == 303  # disabled through the form: the customer's session ended
        async with admin.post(edit, data={**good, "disabled": ""}, allow_redirects=False) as r:
            assert r.status == 303  # an unticked box enables it again
        async with admin.get(gw.url + f"/console/keys/{'0' * 64}/edit") as r:
            assert r.status == 404


async def test_deleting_a_key_ends_its_sessions(gw: RunningGateway) -> None:
    made = await gw.create_key("doomed")
    async with browser() as admin, browser() as cust:
        token = await sign_in(admin, gw, ADMIN_KEY)
        await sign_in(cust, gw, made["key"])
        url = gw.url + f"/console/keys/{made['data']['hash']}/delete"
        async with admin.post(url, data={"csrf": token}, allow_redirects=False) as r:
            assert r.status == 303
        async with cust.get(gw.url + "/console/logs", allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, "/login")


async def test_the_operators_request_log_shows_every_keys_requests_filtered_and_linked(
    gw: RunningGateway, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    admin_h = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with aiohttp.ClientSession() as api:

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with api.post(gw.url + path, json=body, headers=admin_h) as r:
                assert r.status == 201, await r.text()
                made: dict[str, Any] = await r.json()
                return made

        team = (await post("/api/v1/teams", {"name": "Research"}))["data"]["id"]
        user = (await post("/api/v1/users", {"email": "ada@example.com", "team_id": team}))["data"]["id"]
        owned = await post("/api/v1/keys", {"name": "ada-laptop", "user_id": user})
    loose = await gw.create_key("loose")
    openai_upstream.script(Reply(text="hi", input_tokens=10, output_tokens=5))
    anthropic_upstream.script(Reply(text="yo", input_tokens=10, output_tokens=5))
    async with openai_client(gw.url, owned["key"]) as oc, anthropic_client(gw.url, loose["key"]) as ac:
        await oc.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
        await ac.messages.create(model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    await gw.server.app[STATE].gateway.drain()
    store = gw.server.app[STATE].store
    mine = {g.id for g in await store.list_generations(owned["data"]["hash"])}
    theirs = {g.id for g in await store.list_generations(loose["data"]["hash"])}
    assert len(mine) == len(theirs) == 1

    async with browser() as admin:
        await sign_in(admin, gw, ADMIN_KEY)

        async def shown(query: str = "") -> set[str]:
            async with admin.get(gw.url + "/console/logs" + query) as r:
                assert r.status == 200
                return set(re.findall(r'href="/console/logs/(gen-[^"]+)"', await r.text()))

        assert await shown() == mine | theirs, "the operator's log is every key's"
        h = owned["data"]["hash"]
        assert await shown(f"?key={h}") == mine
        assert await shown(f"?user={user}") == mine and await shown(f"?team={team}") == mine
        assert await shown("?model=claude-test") == theirs
        assert await shown(f"?team={team}&model=claude-test") == set()
        async with admin.get(gw.url + "/console/logs") as r:
            page = await r.text()
            assert f'href="/console/logs?key={h}">ada-laptop</a>' in page  # each row names its key
            assert 'id="filter-user"' in page and 'id="filter-team"' in page
        async with admin.get(gw.url + "/console/keys") as r:
            assert f'href="/console/logs?key={h}"' in await r.text()
        async with admin.get(gw.url + "/console/people") as r:
            page = await r.text()
            assert f'href="/console/logs?team={team}"' in page and f'href="/console/logs?user={user}"' in page
            assert f'href="/console/teams/{team}"' in page
        async with admin.get(gw.url + f"/console/teams/{team}") as r:
            page = await r.text()
            assert r.status == 200 and "ada@example.com" in page and "ada-laptop" in page
            assert f'href="/console/logs?team={team}"' in page
    async with browser() as cust:  # a pasted key still sees only its own requests, whatever it asks for
        await sign_in(cust, gw, loose["key"])
        async with cust.get(gw.url + f"/console/logs?key={h}") as r:
            assert "/console/logs/gen-" not in await r.text()
        async with cust.get(gw.url + "/console/logs") as r:
            assert set(re.findall(r'href="/console/logs/(gen-[^"]+)"', await r.text())) == theirs

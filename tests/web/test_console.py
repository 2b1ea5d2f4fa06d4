"""The console as served: sign-in, sessions, CSRF, a customer sees only their own usage and log, the
operator manages keys; cookie flags; no key or session id in a URL or page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest_asyncio
from support.clients import anthropic_client, openai_client
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply

from keeprouter.api.http import STATE
from keeprouter.web.routes import CSP

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    async with run_gateway(two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))) as g:
        yield g


def browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def sign_in(s: aiohttp.ClientSession, gw: RunningGateway, key: str) -> str:
    """Signs in; returns the console page's CSRF token."""
    async with s.post(gw.url + "/login", data={"key": key}, allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/console"
        cookie = r.headers["Set-Cookie"]
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
        async with s.post(gw.url + "/login", data={"key": "sk-kr-v1-wrong"}, allow_redirects=False) as r:
            assert r.status == 401
        async with s.post(gw.url + "/login", data={"key": ADMIN_KEY}, allow_redirects=False) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) >= 1  # slowed down, even for a good key

"""The console in a real headless Chromium against a real gateway on 127.0.0.1, with emulated
upstreams: the operator signs in, creates a key with a credit limit and copies it (read back from the
clipboard); that key is used through the OpenAI and Anthropic SDKs; its owner signs in and sees
exactly those generations, their costs and the credit left; disabling the key ends that session; a
forged form without its token is refused; cookie flags; axe-core; no console error; no other host."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest_asyncio
from support.browser import Watch, axe_violations, chromium, needs_chromium, watched_page
from support.clients import anthropic_client, openai_client
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply

from keeprouter.api.http import STATE
from keeprouter.web import format as f

pytestmark = needs_chromium

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "console-activity.png"
CLIPBOARD = ["clipboard-read", "clipboard-write"]
LIMIT = Decimal("0.05")


@dataclass
class Env:
    gw: RunningGateway
    browser: Any
    oa: OpenAIUpstream
    an: AnthropicUpstream


@pytest_asyncio.fixture
async def env(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[Env]:
    # 127.0.0.1 is the trusted proxy here, so a request saying X-Forwarded-Proto: https is https
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path),
                            site={"trusted_proxies": ["127.0.0.1"]})  # fmt: skip
    async with run_gateway(cfg) as gw, chromium() as browser:
        yield Env(gw, browser, openai_upstream, anthropic_upstream)


async def sign_in(page: Any, key: str) -> None:
    await page.goto("/login")
    await page.get_by_label("Your API key").fill(key)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in").click()


async def clean(page: Any, watch: Watch, where: str) -> None:
    """axe-core finds nothing serious on the page, and nothing went wrong or left this host."""
    assert await axe_violations(page) == [], where
    assert watch.console_errors == [], (where, watch.console_errors)
    assert watch.foreign == [], (where, watch.foreign)


async def cookie(page: Any, name: str) -> dict[str, Any]:
    found = [c for c in await page.context.cookies() if c["name"] == name]
    assert len(found) == 1, (name, found)
    return dict(found[0])


async def forge(page: Any, action: str, fields: dict[str, str]) -> Any:
    """Submits a form the page never offered (no CSRF token): what a forged request would send."""
    async with page.expect_navigation() as nav:
        await page.evaluate(
            """([action, fields]) => {
                const form = document.createElement('form');
                form.method = 'post'; form.action = action;
                for (const [k, v] of Object.entries(fields)) {
                    const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v;
                    form.appendChild(i);
                }
                document.body.appendChild(form); form.submit();
            }""",
            [action, fields],
        )
    return await nav.value


async def test_the_operator_makes_a_key_its_owner_sees_exactly_its_generations(env: Env, tmp_path: Path) -> None:
    gw, state = env.gw, env.gw.server.app[STATE]
    async with watched_page(env.browser, gw.url, permissions=CLIPBOARD, viewport={"width": 1280, "height": 900}) as (
        admin, watch):  # fmt: skip
        # a forged sign-in form (no token) is refused, and no session cookie is set
        await admin.goto("/login")
        await clean(admin, watch, "/login")
        nonce = await cookie(admin, "kr_login")
        assert nonce["httpOnly"] and nonce["sameSite"] == "Strict" and not nonce["secure"]  # plain http
        resp = await forge(admin, "/login", {"key": ADMIN_KEY})
        assert resp.status == 403 and "security token" in await admin.inner_text("main")
        assert not [c for c in await admin.context.cookies() if c["name"] == "kr_session"]
        watch.clear()  # Chromium reports the 403 document load as a console error

        await sign_in(admin, ADMIN_KEY)
        assert admin.url.endswith("/console")
        session = await cookie(admin, "kr_session")
        assert session["httpOnly"] and session["sameSite"] == "Strict" and not session["secure"]
        assert ADMIN_KEY not in session["value"] and ADMIN_KEY not in await admin.content()
        await clean(admin, watch, "admin /console")

        # create a key with a credit limit; it is shown once, with a working copy button
        await admin.goto("/console/keys")
        await clean(admin, watch, "/console/keys")
        await admin.get_by_label("Name").fill("browser-customer")
        await admin.get_by_label("Credit limit (USD, empty = unlimited)").fill(str(LIMIT))
        async with admin.expect_navigation():
            await admin.get_by_role("button", name="Create").click()
        key = (await admin.inner_text("#new-key")).strip()
        assert key.startswith("sk-kr-v1-")
        copy = admin.locator("button.copy")
        await copy.click()
        await admin.wait_for_function("document.querySelector('button.copy').textContent === 'Copied'")
        assert await admin.evaluate("navigator.clipboard.readText()") == key
        await clean(admin, watch, "the new key")
        await admin.goto("/console/keys")
        assert key not in await admin.content()  # shown once only
        record = await state.keys.authenticate(key)
        await admin.goto(f"/console/keys/{record.hash}/edit")
        assert await admin.get_by_label("Credit limit (USD, empty = unlimited)").input_value() == "0.05"
        await clean(admin, watch, "edit form")
        await admin.get_by_label("Requests per minute").fill("many")
        async with admin.expect_navigation():
            await admin.get_by_role("button", name="Save").click()
        assert "must be a whole number" in await admin.inner_text("#rpm_limit-error")
        watch.clear()  # the 400 page load
        assert await axe_violations(admin) == [], "edit form with an error"
        await admin.goto("/console/providers")
        await clean(admin, watch, "/console/providers")

        # generations with it through both APIs, and one with another key that must not show
        env.oa.script(Reply(text="hi", input_tokens=1000, output_tokens=500))
        env.an.script(Reply(text="yo", input_tokens=2000, output_tokens=400))
        async with openai_client(gw.url, key) as oc, anthropic_client(gw.url, key) as ac:
            chat = await oc.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
            raw = await ac.messages.with_raw_response.create(
                model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
            )
        ids = {chat.id, raw.headers["x-generation-id"]}
        other = (await gw.create_key("other"))["key"]
        env.oa.script(Reply(text="no", input_tokens=7, output_tokens=7))
        async with openai_client(gw.url, other) as oc:
            await oc.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "x"}])
        await state.gateway.drain()
        gens = {g.id: g for g in await state.store.list_generations(record.hash)}
        assert set(gens) == ids
        spent = sum((g.cost for g in gens.values()), Decimal(0))
        assert spent > 0

        async with watched_page(env.browser, gw.url, viewport={"width": 1280, "height": 900}) as (cust, cwatch):
            await sign_in(cust, key)
            assert cust.url.endswith("/console")
            assert await cust.inner_text("#credit-used") == f.usd(spent)
            assert await cust.inner_text("#credit-limit") == f.usd(LIMIT)
            assert await cust.inner_text("#credit-remaining") == f.usd(LIMIT - spent)
            assert await cust.locator("nav.console-nav a[href='/console/keys']").count() == 0
            await clean(cust, cwatch, "customer /console")
            update = not SCREENSHOT.exists() or os.environ.get("KEEPROUTER_UPDATE_SCREENSHOT") == "1"
            target = SCREENSHOT if update else tmp_path / SCREENSHOT.name
            target.parent.mkdir(parents=True, exist_ok=True)
            png = await cust.screenshot(full_page=True, type="png")
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 1280
            target.write_bytes(png)

            await cust.goto("/console/logs")
            await clean(cust, cwatch, "customer /console/logs")
            rows = cust.locator("table tbody tr")
            shown = {}
            for i in range(await rows.count()):
                href = await rows.nth(i).locator("a").get_attribute("href")
                cells = [c.strip() for c in await rows.nth(i).locator("td").all_inner_texts()]
                shown[str(href).removeprefix("/console/logs/")] = cells
            assert set(shown) == ids  # exactly those generations, nothing of the other key's
            for gen_id, cells in shown.items():
                g = gens[gen_id]
                assert (cells[0], cells[1], cells[3]) == (g.model, g.provider, f.usd(g.cost)), cells
            await cust.goto(f"/console/logs/{chat.id}")
            assert f.usd(gens[chat.id].cost) in await cust.inner_text("main")
            await clean(cust, cwatch, "customer detail")
            await cust.goto("/console/keys")
            assert "operator" in await cust.inner_text("main")
            cwatch.clear()  # the 403 page load

            # a forged form (no token) from the operator's own signed-in page is refused
            await admin.goto("/console/keys")
            resp = await forge(admin, f"/console/keys/{record.hash}/disable", {})
            assert resp.status == 403 and "security token" in await admin.inner_text("main")
            resp = await forge(admin, f"/console/keys/{record.hash}/disable", {"csrf": "0" * 64})
            assert resp.status == 403
            watch.clear()
            assert (await state.keys.get(record.hash)).disabled is False
            await cust.goto("/console")
            assert cust.url.endswith("/console")  # still signed in

            # disabling the key (the operator's button) ends its owner's session
            await admin.goto("/console/keys")
            async with admin.expect_navigation():
                await admin.get_by_role("button", name="Disable browser-customer").click()
            assert admin.url.endswith("/console/keys")
            assert (await state.keys.get(record.hash)).disabled is True
            await cust.goto("/console/logs")
            assert cust.url.endswith("/login")
            await clean(cust, cwatch, "customer after disable")
        await clean(admin, watch, "admin at the end")


async def test_behind_a_trusted_https_proxy_the_cookies_are_secure(env: Env) -> None:
    headers = {"X-Forwarded-Proto": "https"}
    async with watched_page(env.browser, env.gw.url, extra_http_headers=headers) as (page, watch):
        await sign_in(page, ADMIN_KEY)
        assert page.url.endswith("/console")  # Chromium keeps Secure cookies for 127.0.0.1 (a secure context)
        for name in ("kr_session",):
            c = await cookie(page, name)
            assert c["secure"] and c["httpOnly"] and c["sameSite"] == "Strict", c
        await page.goto("/login")  # signed in already: straight on to the console
        assert page.url.endswith("/console")
        assert watch.console_errors == [] and watch.foreign == []

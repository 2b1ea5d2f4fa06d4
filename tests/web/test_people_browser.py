"""Self-serve keys in a real headless Chromium: from a public page's "Get an API key" link, a person
signs in with their organisation's account (the loopback OpenID Connect provider, on another site),
makes a key, uses it through the `openai` SDK, sees the team's page as its admin (the screenshot in
docs/people.md) and disables a member's key there, then revokes their own key, which is refused at
once (401)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
import pytest_asyncio
from support.browser import axe_violations, chromium, needs_chromium
from support.clients import openai_client
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url, two_format_config
from support.oidc_provider import CLIENT_ID, CLIENT_SECRET, run_provider
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply

from keeprouter.api.http import STATE
from keeprouter.store.base import GenerationRecord

pytestmark = needs_chromium

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "console-team.png"
DAY = 86_400.0


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    async with run_provider(host_name="localhost") as idp:
        idp.consent_page = True  # the way back to the callback starts on the provider's site
        auth = {"oidc": {"issuer": idp.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                         "allowed_domains": ["example.com"], "max_keys_per_user": 3}}  # fmt: skip
        cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path), auth=auth)
        async with run_gateway(cfg) as g:
            yield g


async def api(gw: RunningGateway, method: str, path: str, body: Any = None) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, gw.url + path, json=body, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as r,
    ):
        assert r.status < 300, await r.text()
        data: dict[str, Any] = await r.json()
        return data


async def history(gw: RunningGateway, key_hash: str, tag: str, per_day: list[int]) -> None:
    """Requests over the past days, settled through the ledger as the gateway settles them."""
    store, now = gw.server.app[STATE].store, time.time()
    for back, n in enumerate(per_day):
        for i in range(n):
            gid, at = f"gen-{tag}-{back}-{i}", now - back * DAY - 60 - i
            assert await store.reserve(key_hash, gid, Decimal("0.01"), at + 60, at)
            model = ("gpt-test", "claude-test")[i % 2]
            gen = GenerationRecord(id=gid, key_hash=key_hash, model=model, provider="oa", upstream_model=model,
                                   api="openai", created_at=at, tokens_prompt=900, tokens_completion=300,
                                   cost=Decimal("0.0021") * (1 + i % 3))  # fmt: skip
            assert await store.settle(gid, gen, at)


async def test_a_person_gets_a_key_uses_it_sees_the_team_and_revokes_it(
    gw: RunningGateway, openai_upstream: OpenAIUpstream
) -> None:
    team = await api(gw, "POST", "/api/v1/teams", {"name": "Research", "limit": 50, "limit_reset": "monthly"})
    team_id = team["data"]["id"]
    await api(gw, "POST", "/api/v1/users", {"email": "ada@example.com", "team_id": team_id, "team_admin": True,
                                            "limit": 20, "limit_reset": "monthly"})  # fmt: skip
    bob = (await api(gw, "POST", "/api/v1/users", {"email": "bob@example.com", "team_id": team_id}))["data"]["id"]
    bobs = await api(gw, "POST", "/api/v1/keys", {"name": "bob-ci", "user_id": bob})
    await history(gw, bobs["data"]["hash"], "bob", [3, 5, 2, 6, 4, 3, 5])

    async with chromium() as browser:
        context = await browser.new_context(base_url=gw.url, viewport={"width": 1280, "height": 900})
        try:
            page: Any = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto("/models")
            await page.get_by_role("link", name="Get an API key").first.click()
            await page.wait_for_url("**/login")  # not signed in yet
            await page.get_by_role("link", name="Sign in with your organisation's account").click()
            await page.get_by_role("link", name="Continue").click()  # on the provider's site
            await page.wait_for_url("**/console/me", timeout=20_000)
            assert "Signed in as ada@example.com" in await page.inner_text("main")
            assert "You hold 0 of at most 3 keys." in await page.inner_text("main")
            assert await axe_violations(page) == [], "/console/me"

            await page.get_by_label("Name").fill("ada-laptop")
            await page.get_by_label("Credit limit (USD, empty = your budget's)").fill("25")
            async with page.expect_navigation():
                await page.get_by_role("button", name="Create key").click()
            assert "at most 20.0 USD" in await page.inner_text("main")  # more than her own budget has left
            await page.goto("/console/me")
            await page.get_by_label("Name").fill("ada-laptop")
            await page.get_by_label("Credit limit (USD, empty = your budget's)").fill("5")
            async with page.expect_navigation():
                await page.get_by_role("button", name="Create key").click()
            key = (await page.inner_text("#new-key")).strip()
            assert key.startswith("sk-kr-v1-")

            openai_upstream.script(Reply(text="hello from the router", input_tokens=12, output_tokens=6))
            async with openai_client(gw.url, key) as oc:
                chat = await oc.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
            assert chat.choices[0].message.content == "hello from the router"
            await gw.server.app[STATE].gateway.drain()
            mine = (await gw.server.app[STATE].keys.authenticate(key)).hash
            await history(gw, mine, "ada", [2, 1, 3, 0, 2, 4, 1])

            await page.goto("/console/me")
            row = page.locator("table tbody tr", has_text="ada-laptop")
            assert "$5.00" in await row.inner_text()
            await row.get_by_role("link", name="ada-laptop").click()  # the key's own requests
            await page.wait_for_url(lambda url: url.endswith(f"/console/logs?key={mine}"))
            assert await page.locator(f"a[href='/console/logs/{chat.id}']").count() == 1

            await page.get_by_role("link", name="Team", exact=True).click()
            await page.wait_for_url(f"**/console/teams/{team_id}")
            main = await page.inner_text("main")
            assert "bob@example.com" in main and "bob-ci" in main and "ada-laptop" in main
            assert await page.locator("#team-spend-chart rect.mark").count() >= 7
            assert await axe_violations(page) == [], "team page"
            update = not SCREENSHOT.exists() or os.environ.get("KEEPROUTER_UPDATE_SCREENSHOT") == "1"
            png = await page.screenshot(full_page=True, type="png")
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 1280
            if update:
                SCREENSHOT.write_bytes(png)

            async with page.expect_navigation():  # the team's admin disables a member's key
                await page.get_by_role("button", name="Disable bob-ci").click()
            assert (await gw.server.app[STATE].keys.get(bobs["data"]["hash"])).disabled

            await page.goto("/console/me")
            async with page.expect_navigation():
                await page.get_by_role("button", name="Revoke ada-laptop").click()
            assert "ada-laptop" not in await page.inner_text("main")
            async with openai_client(gw.url, key) as oc:
                with pytest.raises(openai.AuthenticationError) as refused:
                    await oc.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "x"}])
            assert refused.value.status_code == 401
            assert errors == []
        finally:
            await context.close()

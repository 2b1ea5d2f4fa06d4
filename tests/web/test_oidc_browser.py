"""OpenID Connect sign-in in a real headless Chromium, the provider on another site ("localhost")
than the gateway (127.0.0.1): the flow cookie must survive the cross-site navigation back to the
callback, and the Strict session cookie must be sent once the callback page moves on to /console."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from support.browser import chromium, needs_chromium
from support.gateway import RunningGateway, run_gateway, sqlite_url
from support.oidc_provider import CLIENT_ID, CLIENT_SECRET, run_provider

pytestmark = needs_chromium


@pytest_asyncio.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with run_provider(host_name="localhost") as idp:
        idp.consent_page = True
        auth = {"oidc": {"issuer": idp.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                         "allowed_domains": ["example.com"], "default_team": "engineering"}}  # fmt: skip
        async with run_gateway({"database": sqlite_url(tmp_path), "auth": auth}) as g:
            yield g


async def test_sign_in_across_sites_in_a_real_browser(gw: RunningGateway) -> None:
    async with chromium() as browser:
        context = await browser.new_context(base_url=gw.url)
        try:
            page: Any = await context.new_page()
            seen: list[str] = []
            page.on("request", lambda r: seen.append(r.url))
            await page.goto("/login")
            await page.get_by_role("link", name="Sign in with your organisation's account").click()
            await page.wait_for_url(lambda url: url.startswith("http://localhost:") and "/authorize" in url)
            await page.get_by_role("link", name="Continue").click()  # on the provider's site
            await page.wait_for_url("**/console/me", timeout=20_000)
            assert "Signed in as ada@example.com" in await page.content()
            assert any(u.startswith("http://localhost:") for u in seen), "the provider is another site"
            cookies = {c["name"]: c for c in await context.cookies()}
            assert "kr_oidc" not in cookies, "the flow is spent"
            session = cookies["kr_session"]
            assert session["sameSite"] == "Strict" and session["httpOnly"]
        finally:
            await context.close()

"""Headless Chromium for the page tests: Debian's /usr/bin/chromium driven by Playwright's async API
(never a downloaded browser), each page watched for console errors and for any request that would
leave the test server. Requests to another host are recorded and aborted, so none ever goes out."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import pytest

from support.services import service_missing, services_required

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# When services are required the test runs anyway and `chromium()` fails it, naming what is missing.
needs_chromium = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK) and not services_required(),
    reason=f"{CHROMIUM} is absent (apt-get install chromium; .ci/run does)",
)


@dataclass
class Watch:
    """What a browser context saw: console errors, uncaught script errors, requests to other hosts."""

    origin: str  # "127.0.0.1:PORT"
    console_errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.console_errors.clear()
        self.foreign.clear()


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        service_missing("Chromium", f"is absent at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    from playwright.async_api import async_playwright  # imported here: collection works without it

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def watched_page(browser: Any, base_url: str, **context_args: Any) -> AsyncIterator[tuple[Any, Watch]]:
    """A page in a fresh context whose every request is checked against the test server's origin."""
    watch = Watch(urlsplit(base_url).netloc)
    context = await browser.new_context(base_url=base_url, **context_args)

    async def route(r: Any) -> None:
        parts = urlsplit(r.request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != watch.origin:
            watch.foreign.append(r.request.url)
            await r.abort()
        else:
            await r.continue_()

    await context.route("**/*", route)
    page = await context.new_page()
    page.on("console", lambda m: watch.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watch.console_errors.append(f"uncaught: {e}"))
    try:
        yield page, watch
    finally:
        await context.close()


AXE_SCRIPT = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8")


async def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """Run axe-core in the page (evaluate is not subject to the page's CSP) and list the violations
    of the given impacts, one line each with the offending elements."""
    await page.evaluate(AXE_SCRIPT)
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    out = []
    for v in result["violations"]:
        if v["impact"] in impacts:
            targets = [" ".join(map(str, n["target"])) for n in v["nodes"]][:5]
            out.append(f"{v['id']} ({v['impact']}): {v['help']} at {targets}")
    return out

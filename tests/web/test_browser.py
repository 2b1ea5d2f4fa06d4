"""The pages in a real headless Chromium, against a real gateway on 127.0.0.1 with emulated upstreams:
every page loads clean and stays on this host, the models list filters (with and without script),
charts carry one mark per recorded day, axe-core finds nothing serious, a phone screen needs no
horizontal scrolling, the keyboard reaches everything, and no key ever shows on a page."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from support.browser import axe_violations, chromium, needs_chromium, watched_page
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply

from keeprouter.api import stats
from keeprouter.api.http import STATE
from keeprouter.store.base import EndpointMinute, GenerationRecord

pytestmark = needs_chromium

MODEL = "both-test"  # served by two providers: oa (up-gpt) and an (up-claude)
UNAVAILABLE = "ministral-14b-latest"  # a built-in model whose provider has no key here
PAST_DAYS = (1, 3, 6)  # days before today with recorded generations and endpoint minutes
PAGES = (
    "/",
    "/models",
    f"/models/{MODEL}",
    "/models/gpt-test",
    "/models/claude-test",
    f"/models/{UNAVAILABLE}",
    "/providers",
    "/providers/oa",
    "/providers/mistral",
    "/rankings",
    "/docs/quickstart",
    "/use-cases/openai-sdk",
    "/use-cases/anthropic-sdk",
    "/use-cases/claude-code",
)
MISSING = "/models/no-such-model"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "model-page.png"


@dataclass
class Site:
    gw: RunningGateway
    key: str  # the secret, as created through the keys API
    key_hash: str
    days: list[str]  # ISO dates with recorded activity on MODEL, oldest first
    browser: Any


def _noon(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(12), dt.UTC).timestamp()


async def _seed_past(gw: RunningGateway, key_hash: str, today: dt.date) -> list[dt.date]:
    """Generations and endpoint minutes on past UTC days, written through the store's own writes."""
    store = gw.server.app[STATE].store
    days = [today - dt.timedelta(days=n) for n in PAST_DAYS]
    minutes = []
    for i, day in enumerate(days):
        at = _noon(day)
        for j, (provider, upstream) in enumerate((("oa", "up-gpt"), ("an", "up-claude"))):
            gen = GenerationRecord(
                id=f"gen-past-{provider}-{i}", key_hash=key_hash, model=MODEL, provider=provider,
                upstream_model=upstream, api="openai", created_at=at, tokens_prompt=1000 * (i + 1),
                tokens_completion=400 * (i + 1), latency_ms=800, ttft_ms=300, throughput=40.0,
                app="https://example.test", app_title="Seeded App",
            )  # fmt: skip
            assert await store.settle(f"hold-{gen.id}", gen, at)
            minute = EndpointMinute(
                model=MODEL, provider=provider, upstream_model=upstream, minute=int(at) // 60 * 60,
                requests=10, successes=9 - i - 2 * j, rate_limited=0, latency_sum=3.0 + 2 * j, latency_count=10,
                throughput_sum=400.0 + 50 * i - 150 * j, throughput_count=10,
            )  # fmt: skip
            minutes.append(minute)
    await store.write_endpoint_minutes(minutes)
    return days


async def _traffic(gw: RunningGateway, key: str, oa: OpenAIUpstream, an: AnthropicUpstream) -> None:
    """Today: real requests to MODEL through both client APIs and on each provider, one with X-Title."""
    oa.script(Reply(text="hello", input_tokens=12, output_tokens=5))
    an.script(Reply(text="hello", input_tokens=20, output_tokens=8))
    async with aiohttp.ClientSession() as s:
        oa_body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "provider": {"only": ["oa"]}}
        headers = {"Authorization": f"Bearer {key}", "HTTP-Referer": "https://cline.test", "X-Title": "Cline"}
        async with asyncio.timeout(20), s.post(gw.url + "/v1/chat/completions", json=oa_body, headers=headers) as r:
            assert r.status == 200, await r.text()
        an_body = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}],
                   "provider": {"only": ["an"]}}  # fmt: skip
        async with asyncio.timeout(20), s.post(gw.url + "/v1/messages", json=an_body, headers={"x-api-key": key}) as r:
            assert r.status == 200, await r.text()
    await gw.server.app[STATE].gateway.drain()
    assert await gw.server.app[stats.FLUSHER].flush(final=True) >= 2  # today's minutes, one per endpoint


@pytest_asyncio.fixture
async def site(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[Site]:
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))
    async with run_gateway(cfg) as gw, chromium() as browser:
        created = await gw.create_key("pages")
        key, key_hash = created["key"], created["data"]["hash"]
        today = dt.datetime.now(dt.UTC).date()
        past = await _seed_past(gw, key_hash, today)
        await _traffic(gw, key, openai_upstream, anthropic_upstream)
        yield Site(gw, key, key_hash, [d.isoformat() for d in [*sorted(past), today]], browser)


async def test_every_page_loads_clean_and_stays_on_this_host(site: Site) -> None:
    async with watched_page(site.browser, site.gw.url) as (page, watch):
        for path in PAGES:
            watch.clear()
            resp = await page.goto(path, wait_until="load")
            assert resp is not None and resp.status == 200, path
            assert resp.headers["content-type"] == "text/html; charset=utf-8"
            assert "script-src 'self'" in resp.headers["content-security-policy"]
            assert await page.locator("main h1").count() == 1, path
            assert watch.console_errors == [], (path, watch.console_errors)
            assert watch.foreign == [], (path, watch.foreign)
        # The stylesheet and the script were served from here and applied (not blocked by the CSP).
        await page.goto("/models")
        assert await page.evaluate("getComputedStyle(document.body).margin") == "0px"
        assert await page.locator("button.copy").count() == 0  # the models list has no code samples

        watch.clear()
        resp = await page.goto(MISSING)
        assert resp is not None and resp.status == 404
        assert "no model here" in (await page.locator("main").inner_text()).lower()
        # Chromium reports the 404 status of the document itself; nothing else may fail.
        assert [e for e in watch.console_errors if "status of 404" not in e] == [], watch.console_errors
        assert watch.foreign == []


def _shown(text: str) -> int:
    m = re.fullmatch(r"Showing (\d+) of (\d+) models", text.strip())
    assert m, text
    return int(m.group(1))


async def test_the_models_list_filters_as_you_type(site: Site) -> None:
    async with watched_page(site.browser, site.gw.url) as (page, watch):
        await page.goto("/models")
        cards = page.locator("#model-list > li.model-card")
        visible = page.locator("#model-list > li.model-card:not([hidden])")
        count = page.locator("#model-count")
        total = await cards.count()
        assert total > 10 and _shown(await count.inner_text()) == total  # the built-in catalogue, all shown
        assert await page.locator(f"#model-list a[href='/models/{UNAVAILABLE}']").count() == 1

        await page.locator("#q").press_sequentially("both", delay=20)  # keystroke by keystroke
        await page.wait_for_function("document.getElementById('model-count').textContent.startsWith('Showing 1 ')")
        assert await visible.count() == 1
        assert await visible.locator("h2 a").inner_text() == "Both"

        await page.locator("#q").fill("")
        all_shown = f"document.getElementById('model-count').textContent.startsWith('Showing {total} ')"
        await page.wait_for_function(all_shown)
        await page.locator("#maker").select_option("Test")
        assert _shown(await count.inner_text()) == await visible.count() == 3
        await page.locator("#capability").select_option("reasoning")  # claude-test and both-test (via up-claude)
        names = set(await visible.locator("h2 a").all_inner_texts())
        assert names == {"Claude Test", "Both"} and _shown(await count.inner_text()) == 2

        await page.locator("#capability").select_option("")
        await page.locator("#sort").select_option("price")
        prices = [float(p) for p in await visible.evaluate_all("els => els.map(e => e.dataset.price)")]
        assert prices == sorted(prices) and len(prices) == 3
        await page.locator("#sort").select_option("context")
        contexts = [int(c) for c in await visible.evaluate_all("els => els.map(e => e.dataset.context)")]
        assert contexts == sorted(contexts, reverse=True) and contexts[0] == 200000

        await page.locator("#maker").select_option("")
        await page.locator("#modality").select_option("embedding")  # the built-in embedding models only
        kinds = await visible.evaluate_all("els => els.map(e => e.dataset.modality)")
        assert kinds and set(kinds) == {"embedding"} and _shown(await count.inner_text()) == len(kinds)
        assert await page.locator("#model-list a[href='/models/text-embedding-3-small']:visible").count() == 1
        assert watch.console_errors == [] and watch.foreign == []


async def test_without_script_the_form_asks_the_server(site: Site) -> None:
    async with watched_page(site.browser, site.gw.url, java_script_enabled=False) as (page, watch):
        await page.goto("/models")
        await page.locator("#q").fill("test")
        await page.locator("#maker").select_option("Test")
        await page.locator("#capability").select_option("tools")
        async with page.expect_navigation():
            await page.locator("form.filters button[type=submit]").click()
        assert "q=test" in page.url and "maker=Test" in page.url and "capability=tools" in page.url
        names = set(await page.locator("#model-list > li h2 a").all_inner_texts())
        assert names == {"GPT Test", "Claude Test", "Both"}
        assert _shown(await page.locator("#model-count").inner_text()) == 3
        assert await page.locator("#q").input_value() == "test"  # the form shows what was asked
        assert watch.console_errors == [] and watch.foreign == []


async def test_charts_have_one_mark_per_recorded_day(site: Site) -> None:
    async with watched_page(site.browser, site.gw.url) as (page, watch):
        await page.goto(f"/models/{MODEL}")
        for chart_id in ("activity-chart", "uptime-chart", "latency-chart", "throughput-chart"):
            fig = page.locator(f"figure#{chart_id}")
            assert await fig.count() == 1, chart_id
            assert (await fig.locator("figcaption").inner_text()).strip(), chart_id
            assert await fig.locator("svg[role=img][aria-label]").count() == 1
            assert await fig.locator("table").count() == 1, f"{chart_id}: its data table is in the same figure"
            marks = fig.locator("svg [data-date]")
            dates = await marks.evaluate_all("els => els.map(e => e.dataset.date)")
            titles = await marks.evaluate_all("els => els.map(e => e.querySelector('title').textContent)")
            assert all(t.startswith(d) for d, t in zip(dates, titles, strict=True)), chart_id
            box = await fig.locator("svg").evaluate(
                """svg => { const vb = svg.viewBox.baseVal, out = [];
                    for (const t of svg.querySelectorAll('text')) { const b = t.getBBox();
                        if (b.x < 0 || b.x + b.width > vb.width || b.y < 0 || b.y + b.height > vb.height)
                            out.push(t.textContent); }
                    return out; }"""
            )
            assert box == [], f"{chart_id}: labels drawn outside the chart: {box}"
            table_dates = await fig.locator("tbody th").all_inner_texts()
            assert table_dates == site.days, chart_id  # one row per day, oldest first

        activity = page.locator("#activity-chart svg [data-date]")
        assert sorted(set(await activity.evaluate_all("els => els.map(e => e.dataset.date)"))) == site.days
        # Stacked bars: a prompt and a completion mark per day.
        assert await activity.count() == 2 * len(site.days)

        groups = page.locator("#uptime-chart svg g.series")
        legend = await page.locator("#uptime-chart .legend li").all_inner_texts()
        assert sorted(legend) == ["an", "oa"]  # the test config's providers have no display name
        assert await groups.count() == 2  # one series per provider
        for i in range(2):
            dates = await groups.nth(i).locator("[data-date]").evaluate_all("els => els.map(e => e.dataset.date)")
            assert dates == site.days  # one mark per provider per day
        assert watch.console_errors == [] and watch.foreign == []


async def test_axe_finds_nothing_serious(site: Site) -> None:
    async with watched_page(site.browser, site.gw.url) as (page, watch):
        for path in (*PAGES, MISSING):
            await page.goto(path)
            assert await axe_violations(page) == [], path
        assert watch.foreign == []


async def test_a_phone_screen_needs_no_horizontal_scrolling(site: Site) -> None:
    viewport = {"width": 390, "height": 844}
    async with watched_page(site.browser, site.gw.url, viewport=viewport, is_mobile=True, has_touch=True) as (
        page,
        watch,
    ):
        for path in (*PAGES, MISSING):
            await page.goto(path)
            sizes = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert sizes[0] <= sizes[1], (path, sizes)
            assert sizes[1] == 390
            # A wide table scrolls inside its own box; its caption stays wrapped within the screen.
            wide = await page.evaluate(
                "[...document.querySelectorAll('caption')].filter(c => c.getBoundingClientRect().right > innerWidth)"
                ".map(c => c.textContent)"
            )
            assert wide == [], (path, wide)
        assert watch.foreign == []


async def _focused(page: Any) -> dict[str, Any]:
    return dict(
        await page.evaluate(
            """() => { const e = document.activeElement, s = getComputedStyle(e);
                return {tag: e.tagName, id: e.id, href: e.getAttribute('href'),
                        outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,
                        visible: e.matches(':focus-visible')}; }"""
        )
    )


async def test_the_keyboard_reaches_the_search_box_and_the_links(site: Site) -> None:
    async with watched_page(site.browser, site.gw.url) as (page, watch):
        await page.goto("/models")
        seen = []
        for _ in range(12):
            await page.keyboard.press("Tab")
            f = await _focused(page)
            assert f["visible"] and f["outline"], f  # every stop shows where focus is
            seen.append(f)
            if f["id"] == "q":
                break
        assert seen[0]["href"] == "#main"  # the skip link comes first
        assert {"/models", "/providers", "/rankings"} <= {f["href"] for f in seen}
        assert seen[-1]["id"] == "q", seen
        await page.keyboard.type("claude")
        await page.wait_for_function("document.getElementById('model-count').textContent.startsWith('Showing ')")
        # On through the filters to the first model link, then Enter follows it.
        for _ in range(10):
            await page.keyboard.press("Tab")
            f = await _focused(page)
            assert f["visible"] and f["outline"], f
            if f["tag"] == "A":
                break
        assert f["href"] and f["href"].startswith("/models/"), f
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        assert page.url.endswith(f["href"])
        assert watch.foreign == []


async def test_no_key_or_hash_on_any_page(site: Site) -> None:
    assert site.key.startswith("sk-") and len(site.key_hash) >= 16
    async with watched_page(site.browser, site.gw.url) as (page, watch):
        for path in (*PAGES, MISSING):
            resp = await page.goto(path)
            assert resp is not None
            assert site.key not in page.url
            html = await page.content()
            for secret in (site.key, site.key_hash, site.gw.admin_key):
                assert secret not in html, (path, secret[:8])
        async with aiohttp.ClientSession() as s:  # and not in the Markdown forms either
            for path in (*PAGES, "/llms.txt"):
                md = path if path.endswith(".txt") else ("/index.md" if path == "/" else path + ".md")
                async with s.get(site.gw.url + md) as r:
                    text = await r.text()
                    assert r.status == 200, md
                    assert site.key not in text and site.key_hash not in text and site.gw.admin_key not in text
        assert watch.foreign == []


async def test_a_screenshot_of_a_model_page(site: Site, tmp_path: Path) -> None:
    """The screenshot docs/pages.md shows. Written to docs/ when missing or with KEEPROUTER_UPDATE_SCREENSHOT=1
    (dates and port change every run, so a plain run leaves the committed image alone)."""
    update = not SCREENSHOT.exists() or os.environ.get("KEEPROUTER_UPDATE_SCREENSHOT") == "1"
    target = SCREENSHOT if update else tmp_path / SCREENSHOT.name
    async with watched_page(site.browser, site.gw.url, viewport={"width": 1280, "height": 900}) as (page, watch):
        await page.goto(f"/models/{MODEL}")
        assert await page.locator("#activity-chart svg [data-date]").count() > 0
        target.parent.mkdir(parents=True, exist_ok=True)
        png = await page.screenshot(full_page=True, type="png")
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 1280  # IHDR width
        target.write_bytes(png)
        assert watch.console_errors == [] and watch.foreign == []


@pytest.mark.parametrize("path", ["/models"])
async def test_the_csp_blocks_inline_script(site: Site, path: str) -> None:
    """The strict policy is in force: an inline script added to the page does not run."""
    async with watched_page(site.browser, site.gw.url) as (page, watch):
        await page.goto(path)
        await page.evaluate(
            "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
            " document.body.appendChild(s); }"
        )
        assert await page.evaluate("window.__ran === undefined")
        assert any("Content Security Policy" in e for e in watch.console_errors)

"""Endpoint health charted per day, through the real gateway: requests served (and failed) by emulated
upstreams are rolled up per minute, written to the store (by a forced flush, by the periodic task
with a moved clock, and at shutdown), and read back from GET /api/v1/models/{id}/uptime."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from store.backends import store_url_fixture  # noqa: F401  (the store_url fixture: SQLite and PostgreSQL)
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply

from keeprouter.api import stats
from keeprouter.store import open_store

MODEL = "vendor/duo"  # a slash in the id: the route must still find /uptime
MakeOpenAI = Callable[..., Awaitable[OpenAIUpstream]]


def config(p1: str, p2: str, db: str) -> dict[str, Any]:
    def ep(p: str) -> dict[str, Any]:
        pricing = {"input": 1.0, "output": 1.0}
        return {"provider": p, "model": f"up-{p}", "pricing": pricing, "capabilities": ["streaming"]}

    def provider(url: str) -> dict[str, Any]:
        return {"api": "openai", "base_url": url, "api_key": "sk-up-openai"}

    return {
        "database": db,
        "admin_key": ADMIN_KEY,
        "providers": {"p1": provider(p1), "p2": provider(p2)},
        "models": {MODEL: {"name": "Duo", "context_length": 100000, "endpoints": [ep("p1"), ep("p2")]}},
    }


async def ask(s: aiohttp.ClientSession, gw: RunningGateway, provider: str, *, stream: bool = False) -> int:
    body = {
        "model": MODEL,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
        "provider": {"only": [provider]},  # no fallback: each request is one endpoint's outcome
        "stream": stream,
    }
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with asyncio.timeout(20), s.post(gw.url + "/api/v1/chat/completions", json=body, headers=headers) as r:
        await r.read()
        return r.status


async def traffic(s: aiohttp.ClientSession, gw: RunningGateway, p1: OpenAIUpstream) -> None:
    """p1: a 500, a 429 and two successes (one streamed); p2: one success."""
    p1.script(Fault(status=500), Fault(status=429, headers={"retry-after": "1"}), Reply(), Reply())
    assert [await ask(s, gw, "p1") for _ in range(3)] == [502, 429, 200]  # an upstream 500 is a 502 to the caller
    assert await ask(s, gw, "p1", stream=True) == 200
    assert await ask(s, gw, "p2") == 200


async def uptime(s: aiohttp.ClientSession, gw: RunningGateway, query: str = "") -> tuple[int, Any]:
    async with asyncio.timeout(10), s.get(f"{gw.url}/api/v1/models/{MODEL}/uptime{query}") as r:
        return r.status, await r.json()


def totals(body: Any) -> dict[str, dict[str, Any]]:
    """Each provider's entries summed over the days (a test run may straddle midnight UTC)."""
    out: dict[str, dict[str, Any]] = {}
    for day in body["data"]["days"]:
        for e in day["endpoints"]:
            t = out.setdefault(e["provider_name"], {"requests": 0, "entries": []})
            t["requests"] += e["requests"]
            t["entries"].append(e)
    return out


@pytest_asyncio.fixture
async def upstreams(make_openai_upstream: MakeOpenAI) -> AsyncIterator[tuple[OpenAIUpstream, OpenAIUpstream]]:
    yield await make_openai_upstream(), await make_openai_upstream()


async def test_flushed_minutes_are_charted_per_day(
    upstreams: tuple[OpenAIUpstream, OpenAIUpstream], store_url: str
) -> None:
    p1, p2 = upstreams
    async with run_gateway(config(p1.url, p2.url, store_url)) as gw, aiohttp.ClientSession() as s:
        status, body = await uptime(s, gw)
        assert status == 200
        days = body["data"]["days"]
        today = dt.datetime.now(dt.UTC).date()
        assert body["data"]["id"] == MODEL and len(days) == 30
        assert days[-1]["date"] == today.isoformat() and days[0]["date"] == (today - dt.timedelta(days=29)).isoformat()
        assert all(d["endpoints"] == [] for d in days)  # nothing persisted yet

        await traffic(s, gw, p1)
        flusher = gw.server.app[stats.FLUSHER]
        assert await flusher.flush(final=True) >= 2  # one row per endpoint per minute
        assert await flusher.flush(final=True) == 0  # each minute once

        status, body = await uptime(s, gw, "?days=2")
        assert status == 200 and len(body["data"]["days"]) == 2
        t = totals(body)
        assert set(t) == {"p1", "p2"} and t["p1"]["requests"] == 4 and t["p2"]["requests"] == 1
        if len(t["p1"]["entries"]) == 1:  # the usual case: all on one day
            [e1] = t["p1"]["entries"]
            assert e1["upstream_model"] == "up-p1"
            assert e1["uptime"] == round(100 * 2 / 3, 2)  # the 429 counts neither way
            assert e1["latency_ms"] > 0 and e1["throughput"] > 0
        [e2] = t["p2"]["entries"]
        assert (e2["uptime"], e2["upstream_model"]) == (100.0, "up-p2")


async def test_the_periodic_task_writes_completed_minutes(
    upstreams: tuple[OpenAIUpstream, OpenAIUpstream], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEPROUTER_HEALTH_FLUSH_SECONDS", "0.02")
    p1, p2 = upstreams
    async with run_gateway(config(p1.url, p2.url, sqlite_url(tmp_path))) as gw, aiohttp.ClientSession() as s:
        minute = time.time() // 60
        await traffic(s, gw, p1)
        await asyncio.sleep(0.1)  # a few rounds of the task: the current minute is not over, so not written
        body = (await uptime(s, gw, "?days=2"))[1]
        if time.time() // 60 == minute:  # (unless the real minute ended meanwhile)
            assert totals(body) == {}
        gw.server.app[stats.FLUSHER].rollup.wall = lambda: time.time() + 60  # the minute is over
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            t = totals((await uptime(s, gw, "?days=2"))[1])
            if t:
                break
            await asyncio.sleep(0.02)
        assert {p: v["requests"] for p, v in t.items()} == {"p1": 4, "p2": 1}


async def test_a_graceful_stop_writes_the_unfinished_minute(
    upstreams: tuple[OpenAIUpstream, OpenAIUpstream], store_url: str
) -> None:
    p1, p2 = upstreams
    async with run_gateway(config(p1.url, p2.url, store_url)) as gw, aiohttp.ClientSession() as s:
        await traffic(s, gw, p1)
    store = await open_store(store_url)
    try:
        today = dt.datetime.now(dt.UTC).date()
        rows = await store.endpoint_daily(MODEL, today - dt.timedelta(days=1), today)
    finally:
        await store.close()
    assert {r.provider: 0 for r in rows} == {"p1": 0, "p2": 0}
    assert sum(r.requests for r in rows if r.provider == "p1") == 4
    assert sum(r.rate_limited for r in rows if r.provider == "p1") == 1
    assert sum(r.requests for r in rows if r.provider == "p2") == 1


@pytest.mark.parametrize("query", ["?days=0", "?days=366", "?days=abc", "?days=-3"])
async def test_bad_days_are_refused(
    upstreams: tuple[OpenAIUpstream, OpenAIUpstream], tmp_path: Path, query: str
) -> None:
    p1, p2 = upstreams
    async with run_gateway(config(p1.url, p2.url, sqlite_url(tmp_path))) as gw, aiohttp.ClientSession() as s:
        status, body = await uptime(s, gw, query)
        assert status == 400 and "days" in body["error"]["message"]
        status, body = await uptime(s, gw, "?days=365")
        assert status == 200 and len(body["data"]["days"]) == 365
        async with s.get(f"{gw.url}/api/v1/models/nope/uptime") as r:
            assert r.status == 404
        async with s.get(f"{gw.url}/v1/models/{MODEL}/uptime?days=1") as r:  # the /v1 prefix too
            assert r.status == 200 and len((await r.json())["data"]["days"]) == 1
        async with s.get(f"{gw.url}/api/v1/models/{MODEL}") as r:  # the model route is unchanged
            assert r.status == 200 and (await r.json())["id"] == MODEL

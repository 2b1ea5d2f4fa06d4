"""Benchmark: how long a model page takes to render, with 90 days of data for 5 endpoints.

    python bench/pages.py [--iterations 200]

Three figures, each the median over the iterations, on a temporary SQLite database filled with
90 days x 5 endpoints of health minutes and generations:
  build+render   page data from already-fetched rows, then HTML and Markdown (what a cached view costs)
  cached view    the whole page as served within the cache's few seconds (sources cached)
  cold view      the same with the cache expired: the store's aggregate queries included
  HTTP GET       the page fetched from a running gateway while its rendered copy is fresh (how
                 most views are served: a page is rendered at most once per few seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from keeprouter.config import parse_config
from keeprouter.keys import KeyService
from keeprouter.routing.health import HealthTracker
from keeprouter.store import open_store
from keeprouter.store.base import EndpointMinute, GenerationRecord
from keeprouter.web.pages import model
from keeprouter.web.pages.common import Site
from keeprouter.web.render import Renderer
from keeprouter.web.sources import PageSources

DAYS, ENDPOINTS, MINUTES_PER_DAY, GENERATIONS_PER_DAY = 90, 5, 48, 40


def config_with_five_endpoints(db: str):  # type: ignore[no-untyped-def]
    providers = {f"p{i}": {"api": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"} for i in range(5)}
    eps = [{"provider": f"p{i}", "model": f"up-{i}", "pricing": {"input": 0.2 + i / 10, "output": 0.6 + i / 10},
            "capabilities": ["streaming", "tools"]} for i in range(ENDPOINTS)]  # fmt: skip
    return parse_config(
        {"database": db, "providers": providers,
         "models": {"bench-model": {"name": "Bench", "maker": "Bench AI", "context_length": 131072, "endpoints": eps}}},
        env={},
    )  # fmt: skip


async def fill(store, now: float) -> None:  # type: ignore[no-untyped-def]
    today = int(now // 86400) * 86400
    minutes = []
    for d in range(DAYS):
        for e in range(ENDPOINTS):
            for m in range(MINUTES_PER_DAY):
                minute = today - d * 86400 + m * 1800
                minutes.append(EndpointMinute(model="bench-model", provider=f"p{e}", upstream_model=f"up-{e}",
                                              minute=minute, requests=10, successes=9 + (m % 2), rate_limited=0,
                                              latency_sum=3.0, latency_count=10, throughput_sum=800.0,
                                              throughput_count=10))  # fmt: skip
    await store.write_endpoint_minutes(minutes)
    n = 0
    for d in range(DAYS):
        for g in range(GENERATIONS_PER_DAY):
            n += 1
            at = today - d * 86400 + g * 60
            gen = GenerationRecord(id=f"gen-{n}", key_hash="admin", model="bench-model", provider=f"p{g % ENDPOINTS}",
                                   upstream_model=f"up-{g % ENDPOINTS}", api="openai", created_at=at,
                                   tokens_prompt=1000, tokens_completion=200, cost=Decimal("0.0004"),
                                   app="https://app.example" if g % 3 == 0 else None, app_title="App")  # fmt: skip
            await store.settle("none", gen, at)


async def http_views(config, iterations: int) -> list[float]:  # type: ignore[no-untyped-def]
    import aiohttp
    from aiohttp.test_utils import TestServer

    from keeprouter.app import create_app

    server = TestServer(create_app(config, "sk-kr-admin-bench"), host="127.0.0.1", port=0)
    await server.start_server()
    out = []
    try:
        async with aiohttp.ClientSession() as s:
            url = f"http://127.0.0.1:{server.port}/models/bench-model"
            for _ in range(iterations):
                t = time.perf_counter()
                async with s.get(url) as r:
                    assert r.status == 200
                    await r.read()
                out.append(time.perf_counter() - t)
    finally:
        await server.close()
    return out


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.2f} ms (p90 {sorted(samples)[int(len(samples) * 0.9)] * 1000:.2f})"


async def main(iterations: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'bench.db'}"
        config = config_with_five_endpoints(db)
        store = await open_store(db)
        now = time.time()
        await KeyService(store, admin_key="sk-kr-admin-bench").ensure_admin()  # generations belong to a key
        await fill(store, now)
        renderer = Renderer()
        site = Site("KeepRouter", "http://127.0.0.1:8080", dt.datetime.now(dt.UTC).date())
        cached = PageSources(store, HealthTracker(), ttl=3600)
        cold = PageSources(store, HealthTracker(), ttl=0)
        m = config.models["bench-model"]
        activity = [r for r in await cached.activity() if r.model == m.id]
        days = [d for d in await cached.endpoint_days() if d.model == m.id]
        apps = await cached.apps(30, model=m.id)
        assert len({d.date for d in days}) == DAYS and len(days) == DAYS * ENDPOINTS

        def build_render() -> None:
            page = model.build(config, site, m, {}, activity, days, apps)
            renderer.render("model", page, "html")
            renderer.render("model", page, "md")

        async def view(sources: PageSources) -> None:
            page = await model.model_page(config, sources, site, m.id)
            renderer.render("model", page, "html")

        results: dict[str, list[float]] = {"build+render (HTML + Markdown)": [], "cached view (HTML)": [],
                                           "cold view (HTML, store queries)": []}  # fmt: skip
        for _ in range(iterations):
            t = time.perf_counter()
            build_render()
            results["build+render (HTML + Markdown)"].append(time.perf_counter() - t)
            t = time.perf_counter()
            await view(cached)
            results["cached view (HTML)"].append(time.perf_counter() - t)
            t = time.perf_counter()
            await view(cold)
            results["cold view (HTML, store queries)"].append(time.perf_counter() - t)
        await store.close()
        results["HTTP GET, rendered copy fresh"] = await http_views(config, iterations)
    print(f"model page, {DAYS} days x {ENDPOINTS} endpoints, {DAYS * GENERATIONS_PER_DAY:,} generations, "
          f"{iterations} iterations")  # fmt: skip
    for name, samples in results.items():
        print(f"  {name:34s} {median_ms(samples)}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=200)
    asyncio.run(main(max(1, min(ap.parse_args().iterations, 10_000))))

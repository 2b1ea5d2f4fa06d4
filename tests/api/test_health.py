"""Liveness and readiness: `/health/ready` (and its alias `/health/readiness`) answers 503 while the
database does not answer, fast, and 200 again on its own once it does; liveness never asks it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from store.backends import PG_URL, pg_schema
from support.gateway import ADMIN_KEY, run_gateway, sqlite_url
from support.tcp_proxy import TcpProxy

READY = ("/health/ready", "/health/readiness")
LIVE = ("/health", "/health/live", "/health/liveness", "/health/liveliness")


async def statuses(s: aiohttp.ClientSession, base: str, paths: tuple[str, ...]) -> set[int]:
    out = set()
    for p in paths:
        async with s.get(base + p) as r:
            out.add(r.status)
            body = await r.json()
            assert body["status"] in ("ok", "ready", "unavailable"), body
    return out


async def test_ready_on_sqlite(tmp_path: Path) -> None:
    async with run_gateway({"database": sqlite_url(tmp_path), "admin_key": ADMIN_KEY}) as g:
        async with aiohttp.ClientSession() as s:
            assert await statuses(s, g.url, READY + LIVE) == {200}


@pytest.mark.postgres
async def test_ready_is_503_while_postgres_does_not_answer() -> None:
    pg = urlsplit(PG_URL)
    proxy = TcpProxy(pg.port or 5432)
    await proxy.start()
    async with pg_schema() as schema:
        url = f"{pg.scheme}://{pg.netloc.rsplit('@', 1)[0]}@127.0.0.1:{proxy.port}{pg.path}?search_path={schema}"
        async with run_gateway({"database": url, "admin_key": ADMIN_KEY}) as g, aiohttp.ClientSession() as s:
            assert await statuses(s, g.url, READY) == {200}

            await proxy.stop()  # the database is gone for this gateway
            t0 = time.monotonic()
            assert await statuses(s, g.url, READY) == {503}
            assert time.monotonic() - t0 < 5, "fast, no hang"
            assert await statuses(s, g.url, LIVE) == {200}, "alive all the same"

            await proxy.start()
            deadline = time.monotonic() + 10
            while await statuses(s, g.url, READY) != {200}:
                assert time.monotonic() < deadline, "ready again on its own"
                await asyncio.sleep(0.2)
    await proxy.stop()


async def test_ready_answers_503_while_the_process_drains_and_live_still_200(tmp_path: Path) -> None:
    from keeprouter.serving import DRAINING

    async with run_gateway({"database": sqlite_url(tmp_path), "admin_key": ADMIN_KEY}) as g:
        async with aiohttp.ClientSession() as s:
            assert await statuses(s, g.url, READY) == {200}
            g.server.app[DRAINING].on = True  # what serving.serve sets on the first SIGTERM
            for p in READY:
                async with s.get(g.url + p) as r:
                    assert (r.status, (await r.json())["status"]) == (503, "draining")
            assert await statuses(s, g.url, LIVE) == {200}

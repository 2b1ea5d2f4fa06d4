"""`keeprouter serve --workers N` as real processes: the workers share one port, a SIGTERM to the
supervisor drains every worker without losing a stream, SQLite refuses more than one process, and
one key's credit and rpm limit stay exact across `--workers 2` plus a second instance on one
PostgreSQL and one Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
import yaml
from prometheus_client.parser import text_string_to_metric_families
from store.backends import pg_schema
from support.gateway import ADMIN_KEY, sqlite_url, two_format_config
from support.process import ServerProcess
from support.raw import auth, chat_body, path
from support.redis_server import SHARED_URL, drop_prefix, shared_client, unique_prefix
from test_shutdown import WORD, read_stream
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply

from keeprouter.billing import pricing
from keeprouter.clients.openai_chat import request as openai_fmt
from keeprouter.config import parse_config
from keeprouter.formats import tokens
from keeprouter.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
PG_URL = os.environ.get("KEEPROUTER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest_asyncio.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh schema on the shared PostgreSQL server, dropped afterwards."""
    async with pg_schema("kr_workers") as schema:
        yield f"{PG_URL}?search_path={schema}"


def gateway(tmp_path: Path, name: str, oa: OpenAIUpstream, an: AnthropicUpstream, db: str, *args: str,
            env: dict[str, str] | None = None, **extra: str) -> ServerProcess:  # fmt: skip
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(two_format_config(oa.url, an.url, db, **extra)))
    return ServerProcess(cfg, tmp_path / f"{name}.log", env, args)


async def fresh_get(url: str) -> dict[str, object]:
    """One request on a new connection (a kept-alive one would stay with one worker)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s, s.get(url) as r:
        assert r.status == 200
        body: dict[str, object] = await r.json()
        return body


async def worker_pids(gw: ServerProcess, n: int = 2) -> set[object]:
    """The pids answering on gw's port, once `n` distinct ones did (every worker is up)."""
    pids: set[object] = set()
    for _ in range(300):  # bounded: the kernel spreads new connections, n pids show up fast
        pids.add((await fresh_get(gw.url + "/health/live"))["pid"])
        if len(pids) == n:
            return pids
        await asyncio.sleep(0.02)
    raise AssertionError(f"only {pids} answered")


async def test_two_workers_on_one_port_both_serve_and_a_dead_worker_is_restarted(
    tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, pg_url: str
) -> None:
    gw = gateway(tmp_path, "gw", openai_upstream, anthropic_upstream, pg_url, "--workers", "2")
    try:
        await gw.start()
        assert gw.proc is not None
        pids = await worker_pids(gw)
        assert gw.proc.pid not in pids, pids
        victim = int(str(next(iter(pids))))
        os.kill(victim, signal.SIGKILL)
        seen: set[object] = set()
        for _ in range(100):
            await asyncio.sleep(0.1)
            try:
                seen.add((await fresh_get(gw.url + "/health/live"))["pid"])
            except aiohttp.ClientError:
                continue
            if len(seen - pids) >= 1 and len(seen) >= 2:
                break
        assert seen - pids, f"the killed worker {victim} was not replaced: {seen}"
        assert victim not in seen
        gw.signal(signal.SIGTERM)
        assert await gw.wait(20) == 0, gw.log.read_text()
    finally:
        await gw.stop()


async def test_sqlite_refuses_more_than_one_process_with_one_line(
    tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    cfg = tmp_path / "kr.yaml"
    cfg.write_text(yaml.safe_dump(two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))))
    cmd = [sys.executable, "-m", "keeprouter", "--config", str(cfg), "serve", "--port", "0"]
    two = await asyncio.to_thread(subprocess.run, [*cmd, "--workers", "2"], capture_output=True, text=True,
                                  timeout=30)  # fmt: skip
    assert two.returncode == 2
    assert two.stderr.strip().count("\n") == 0 and "PostgreSQL" in two.stderr, two.stderr

    first = gateway(tmp_path, "first", openai_upstream, anthropic_upstream, sqlite_url(tmp_path))
    try:
        await first.start()
        second = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=30)
        assert second.returncode == 2
        line = second.stderr.strip()
        assert "\n" not in line and "PostgreSQL" in line and "kr.db" in line, second.stderr
        assert (await fresh_get(first.url + "/health/live"))["status"] == "ok"  # the first one is unharmed
    finally:
        await first.stop()


async def test_sigterm_to_the_supervisor_drains_every_worker_and_loses_no_stream(
    tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, pg_url: str
) -> None:
    n = 6  # ~1.5 s streams, spread over both workers
    openai_upstream.script(*[Fault(drip_interval=0.1, reply=Reply(text=WORD * 15, chunk_size=len(WORD),
                                                                   output_tokens=15)) for _ in range(n)])  # fmt: skip
    gw = gateway(tmp_path, "gw", openai_upstream, anthropic_upstream, pg_url, "--workers", "2",
                 env={"KEEPROUTER_SHUTDOWN_SECONDS": "30"})  # fmt: skip
    try:
        await gw.start()
        await worker_pids(gw)
        conn = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=conn) as s:
            started = [asyncio.Event() for _ in range(n)]
            streams = [asyncio.ensure_future(read_stream(s, gw.url, "openai", ev)) for ev in started]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), 15)
            gw.signal(signal.SIGTERM)
            results = await asyncio.wait_for(asyncio.gather(*streams), 30)
            code = await gw.wait(20)
        assert code == 0, gw.log.read_text()
        assert all(done for _, done in results), f"every stream in flight must finish: {results}"
        store = await open_store(pg_url)
        try:
            for gen_id, _ in results:
                g = await store.get_generation(gen_id)
                assert g is not None and (g.status, g.tokens_completion) == ("ok", 15), g
        finally:
            await store.close()
        assert gw.log.read_text().count("shut down cleanly") == 2  # both workers drained
    finally:
        await gw.stop()


async def test_a_credit_for_exactly_n_admits_exactly_n_across_two_workers_and_a_second_instance(
    tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, pg_url: str
) -> None:
    n, sent, max_tokens = 20, 60, 50
    body = chat_body("openai", "gpt-test", stream=False, max_tokens=max_tokens)
    estimate = tokens.estimate_request(openai_fmt.parse_request(body))
    price = parse_config(two_format_config("http://x", "http://x", "sqlite:///:memory:"), env={})
    worst = pricing.worst_case(estimate, max_tokens, price.models["gpt-test"].endpoints[0].pricing)
    # Every answer costs its whole reservation, so the limit binds at exactly n whatever the timing.
    openai_upstream.default = Reply(text="ok", input_tokens=estimate, output_tokens=max_tokens)
    a = gateway(tmp_path, "a", openai_upstream, anthropic_upstream, pg_url, "--workers", "2")
    b = gateway(tmp_path, "b", openai_upstream, anthropic_upstream, pg_url)
    try:
        await a.start()
        await b.start()
        await worker_pids(a)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=30)) as s:
            async with s.post(a.url + "/api/v1/keys", json={"name": "n", "limit": float(worst * n)},
                              headers=auth("openai", ADMIN_KEY)) as r:  # fmt: skip
                assert r.status == 201
                made = await r.json()
                key = made["key"]

            async def one(i: int) -> int:
                url = (a.url, b.url)[i % 2]
                async with s.post(url + path("openai"), json=body, headers=auth("openai", key)) as r:
                    await r.read()
                    return r.status

            statuses = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(sent))), 90)
            metrics = {}
            for gw in (a, b):
                async with s.get(gw.url + "/metrics", headers=auth("openai", ADMIN_KEY)) as r:
                    assert r.status == 200
                    metrics[gw.url] = requests_by_status(await r.text())
        assert statuses.count(200) == n and statuses.count(402) == sent - n, sorted(statuses)
        store = await open_store(pg_url)
        try:
            usage = await store.key_usage(made["data"]["hash"])
            assert usage is not None and usage.usage == worst * n, usage
        finally:
            await store.close()
        # One scrape of either worker of `a` covers both; `b` counts its own.
        a_sent = sum(1 for i in range(sent) if i % 2 == 0)
        a_ok = sum(1 for i, st in enumerate(statuses) if i % 2 == 0 and st == 200)
        assert sum(metrics[a.url].values()) == a_sent, metrics
        assert metrics[a.url].get("ok", 0) == a_ok and metrics[a.url].get("402", 0) == a_sent - a_ok, metrics
        assert sum(metrics[b.url].values()) == sent - a_sent, metrics
    finally:
        await a.stop()
        await b.stop()


async def test_an_rpm_limit_admits_exactly_n_per_minute_across_every_process(
    tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, pg_url: str
) -> None:
    rpm, sent = 30, 90
    env = {"KEEPROUTER_REDIS_PREFIX": unique_prefix()}
    a = gateway(tmp_path, "a", openai_upstream, anthropic_upstream, pg_url, "--workers", "2", env=env, redis=SHARED_URL)
    b = gateway(tmp_path, "b", openai_upstream, anthropic_upstream, pg_url, env=env, redis=SHARED_URL)
    body = chat_body("openai", "gpt-test", stream=False, max_tokens=16)
    try:
        await a.start()
        await b.start()
        await worker_pids(a)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=30)) as s:
            async with s.post(a.url + "/api/v1/keys", json={"name": "rpm", "rpm_limit": rpm},
                              headers=auth("openai", ADMIN_KEY)) as r:  # fmt: skip
                assert r.status == 201
                key = (await r.json())["key"]

            async def one(i: int) -> tuple[int, str | None]:
                url = (a.url, b.url)[i % 2]  # new connections: a's share spreads over its two workers
                async with s.post(url + path("openai"), json=body, headers=auth("openai", key)) as r:
                    await r.read()
                    return r.status, r.headers.get("retry-after")

            got = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(sent))), 60)
        statuses = [st for st, _ in got]
        assert statuses.count(200) == rpm and statuses.count(429) == sent - rpm, sorted(statuses)
        assert all(ra is not None for st, ra in got if st == 429)
    finally:
        await a.stop()
        await b.stop()
        client = await shared_client()
        try:
            await drop_prefix(client, env["KEEPROUTER_REDIS_PREFIX"])
        finally:
            await client.aclose()


def requests_by_status(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name != "keeprouter_requests":
            continue
        for sample in fam.samples:
            if sample.name == "keeprouter_requests_total":
                st = sample.labels["status"]
                out[st] = out.get(st, 0) + sample.value
    return out

"""A PostgreSQL outage through the real gateway: the database (the shared server, a private schema)
is reached through a TCP proxy that the test cuts (every connection reset, new ones refused) and
restores, so the server itself keeps running for everyone else.

Pinned: no request is admitted without a ledger, and the refusal is a fast 503 in the caller's
format (key lookups included); readiness says so; streams whose settle hit the outage are recorded
once the database is back (generations == delivered, usage == their sum, no hold left), even when
the gateway is killed -9 before it returns (the next process replays the spool); serving resumes
on its own.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
import yaml
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, two_format_config
from support.process import ServerProcess
from support.raw import auth, chat, wait_until
from support.tcp_proxy import TcpProxy
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply

from keeprouter.api.http import STATE
from keeprouter.store.base import KeyUsage
from store.backends import PG_URL, _pg_admin, pg_schema

pytestmark = pytest.mark.postgres
FAST = 1.5  # seconds: a refusal during the outage must come at least this fast
MSGS = [{"role": "user", "content": "hi"}]


@dataclass
class Outage:
    gw: RunningGateway
    proxy: TcpProxy
    schema: str
    spool: Path
    openai: OpenAIUpstream

    async def rows(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Straight from the server, behind the gateway's back (not through the proxy)."""
        conn = await asyncpg.connect(PG_URL, server_settings={"search_path": self.schema}, timeout=5)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows
        finally:
            await conn.close()

    async def usage(self, key_hash: str) -> KeyUsage:
        got = await self.gw.server.app[STATE].store.key_usage(key_hash)
        assert got is not None
        return got


@pytest_asyncio.fixture
async def outage(
    tmp_path: Path,
    openai_upstream: OpenAIUpstream,
    anthropic_upstream: AnthropicUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Outage]:
    spool = tmp_path / "spool"
    monkeypatch.setenv("KEEPROUTER_SPOOL_DIR", str(spool))
    proxy = TcpProxy(int(PG_URL.rsplit(":", 1)[1].split("/")[0]))
    await proxy.start()
    try:
        async with pg_schema() as schema:
            url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test?search_path={schema}"
            raw = two_format_config(openai_upstream.url, anthropic_upstream.url, url)
            async with run_gateway(raw) as gw:
                yield Outage(gw, proxy, schema, spool, openai_upstream)
    finally:
        await proxy.stop()


async def post(s: aiohttp.ClientSession, url: str, key: str, path: str, body: dict[str, Any]) -> tuple[int, Any, float]:
    api = "anthropic" if path == "/v1/messages" else "openai"
    t0 = time.monotonic()
    async with s.post(url + path, json=body, headers=auth(api, key)) as r:
        return r.status, await r.json(content_type=None), time.monotonic() - t0


async def test_an_outage_gives_fast_503s_in_each_callers_format_then_serving_resumes(outage: Outage) -> None:
    gw = outage.gw
    outage.openai.default = Reply(text="ok", input_tokens=3, output_tokens=1)
    user = (await gw.create_key("user"))["key"]
    async with aiohttp.ClientSession() as s:
        assert (await chat(s, gw.url, user, "openai", "gpt-test", stream=False, max_tokens=5)).status == 200
        await outage.proxy.stop()
        await asyncio.sleep(2.1)  # past the key cache's 2 s: the user key's lookup needs the database

        chat_body = {"model": "gpt-test", "max_tokens": 5, "messages": MSGS}
        cases = [
            ("/v1/chat/completions", chat_body),
            ("/v1/responses", {"model": "gpt-test", "input": "hi", "max_output_tokens": 16}),
            ("/v1/messages", chat_body),
        ]
        for key in (user, ADMIN_KEY):  # the user key fails at its lookup, the admin key at its hold
            for path, body in cases:
                status, err, took = await post(s, gw.url, key, path, body)
                assert status == 503, (path, err)
                assert took < FAST, f"{path}: {took:.2f}s"
                if path == "/v1/messages":
                    assert err["type"] == "error" and err["error"]["type"] == "overloaded_error", err
                else:
                    assert err["error"]["code"] == 503 and err["error"]["type"] == "server_error", err
                assert "database" in (err["error"]["message"]), err
        async with s.get(gw.url + "/health/ready") as r:
            assert r.status == 503
        assert outage.openai.requests and len(outage.openai.requests) == 1, "nothing reached an upstream"

        await outage.proxy.start()

        async def served() -> bool:
            return (await chat(s, gw.url, user, "openai", "gpt-test", stream=False, max_tokens=5)).status == 200

        await wait_until(served, 10.0, 0.2)
        async with s.get(gw.url + "/health/ready") as r:
            assert r.status == 200


async def test_streams_whose_settle_hits_the_outage_are_recorded_once_the_database_returns(outage: Outage) -> None:
    gw, n = outage.gw, 6
    reply = Reply(text="hello there", input_tokens=7, output_tokens=5)
    outage.openai.script(*[Fault(hold_before=b'"finish_reason":"stop"', reply=reply) for _ in range(n)])
    created = await gw.create_key("streams", limit=10.0)
    key, key_hash = created["key"], created["data"]["hash"]
    async with aiohttp.ClientSession() as s:
        streams = [
            asyncio.ensure_future(chat(s, gw.url, key, "openai", "gpt-test", stream=True, max_tokens=50))
            for _ in range(n)
        ]
        await outage.openai.wait_for_requests(n)
        await asyncio.sleep(0.3)  # every stream is held before its last events: admitted and flowing
        await outage.proxy.stop()
        t0 = time.monotonic()
        outage.openai.release()
        outs = await asyncio.gather(*streams)
        took = time.monotonic() - t0
    assert all(o.status == 200 and o.completed and o.error is None for o in outs), outs
    assert took < FAST, f"the settle outage held the streams' ends back {took:.2f}s"
    gateway = gw.server.app[STATE].gateway
    assert gateway.settle_queue.pending == n
    spooled = [p for p in outage.spool.rglob("settle-*.jsonl")]
    assert len(spooled) == 1 and len(spooled[0].read_bytes().splitlines()) == n, "spooled before the answers left"

    await outage.proxy.start()
    await wait_until(lambda: gateway.settle_queue.wait_empty(0.1), 15.0, 0.1)
    ids = {o.body_id for o in outs}
    rows = await outage.rows("SELECT id, cost_nanos FROM generations WHERE key_hash = $1", key_hash)
    assert {r["id"] for r in rows} == ids and len(rows) == n, "every delivered stream recorded, once"
    price = Decimal(7 * 1 + 5 * 2) / 1_000_000  # gpt-test: $1 / $2 per 1M input / output tokens
    u = await outage.usage(key_hash)
    assert u.generations == n and u.usage == u.settled == price * n, u

    async def lease_back() -> Any:  # the process's credit lease goes back once idle (store._pg_leases)
        u = await outage.usage(key_hash)
        return u if u.open_holds == 0 else None

    u = await wait_until(lease_back, 5.0, 0.1)
    assert u.reserved == 0 and u.usage == price * n, u
    assert spooled[0].stat().st_size == 0, "the spool is emptied once everything in it is recorded"


async def test_a_gateway_killed_during_the_outage_records_the_spooled_streams_after_its_restart(
    tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    schema = f"kr_test_{secrets.token_hex(6)}"
    admin = await _pg_admin()
    proxy = TcpProxy(int(PG_URL.rsplit(":", 1)[1].split("/")[0]))
    await proxy.start()
    n = 3
    reply = Reply(text="hello there", input_tokens=7, output_tokens=5)
    openai_upstream.script(*[Fault(hold_before=b'"finish_reason":"stop"', reply=reply) for _ in range(n)])
    cfg = tmp_path / "keeprouter.yaml"
    url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test?search_path={schema}"
    cfg.write_text(yaml.safe_dump(two_format_config(openai_upstream.url, anthropic_upstream.url, url)))
    gw = ServerProcess(cfg, tmp_path / "gateway.log", env={"KEEPROUTER_SPOOL_DIR": str(tmp_path / "spool")})
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        await gw.start()
        async with aiohttp.ClientSession() as s:
            streams = [
                asyncio.ensure_future(chat(s, gw.url, ADMIN_KEY, "openai", "gpt-test", stream=True, max_tokens=50))
                for _ in range(n)
            ]
            await openai_upstream.wait_for_requests(n)
            await asyncio.sleep(0.3)
            await proxy.stop()
            openai_upstream.release()
            outs = await asyncio.gather(*streams)
        assert all(o.status == 200 and o.completed for o in outs), outs
        await gw.kill9()  # the database is still away: the settles exist only in the spool
        await proxy.start()
        await gw.start()  # a new process claims the dead one's spool and records it

        async def recorded() -> int:
            conn = await asyncpg.connect(PG_URL, server_settings={"search_path": schema}, timeout=5)
            try:
                got: int = await conn.fetchval("SELECT COUNT(*) FROM generations")
                return got if got == n else 0
            finally:
                await conn.close()

        assert await wait_until(recorded, 15.0, 0.2) == n
        conn = await asyncpg.connect(PG_URL, server_settings={"search_path": schema}, timeout=5)
        try:
            ids = {r[0] for r in await conn.fetch("SELECT id FROM generations")}
        finally:
            await conn.close()
        assert ids == {o.body_id for o in outs}
    finally:
        await gw.stop()
        await proxy.stop()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()

"""A non-streamed answer leaves only once its generation is committed, but a slow database cannot
hold it back for ever: past KEEPROUTER_SETTLE_WAIT_SECONDS the answer goes out, and the settle keeps
being retried until the database takes it (recorded late, never lost while the process lives).

The slow database is real: another connection holds SQLite's write lock (as the `keeprouter keys`
CLI may), longer than the store's busy_timeout, so the first settle attempt fails and is retried.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest
from support.gateway import ADMIN_KEY, run_gateway, sqlite_url, two_format_config
from support.raw import chat, wait_until
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply

from keeprouter.api.http import STATE

WAIT = 0.4  # the settle wait under test
LOCK_HELD = 6.0  # longer than the store's busy_timeout (5 s): the first attempt fails


def recorded(db: Path, gen_id: str) -> bool:
    with sqlite3.connect(db, timeout=10) as c:
        return c.execute("SELECT 1 FROM generations WHERE id = ?", (gen_id,)).fetchone() is not None


@pytest.mark.slow
async def test_a_locked_database_delays_the_answer_by_the_settle_wait_then_records_it_late(
    tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("KEEPROUTER_SETTLE_WAIT_SECONDS", str(WAIT))
    db = tmp_path / "kr.db"
    raw = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))
    openai_upstream.script(*[Reply(text="hi", input_tokens=3, output_tokens=2) for _ in range(2)])
    async with run_gateway(raw) as gw, aiohttp.ClientSession() as s:
        warm = await chat(s, gw.url, ADMIN_KEY, "openai", "gpt-test", stream=False, max_tokens=20)
        assert warm.completed and warm.body_id
        assert recorded(db, warm.body_id), "an answer in hand with the database free: already committed"

        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # the write lock: every settle now waits
        try:
            t0 = time.monotonic()
            slow = await chat(s, gw.url, ADMIN_KEY, "openai", "gpt-test", stream=False, max_tokens=20)
            took = time.monotonic() - t0
            assert slow.completed and slow.body_id, slow
            assert WAIT <= took < WAIT + 2.5, f"the answer must wait the settle wait, not the database: {took:.2f}s"
            assert lock.execute("SELECT 1 FROM generations WHERE id = ?", (slow.body_id,)).fetchone() is None
            assert gw.server.app[STATE].gateway.settling == 1
            await asyncio.sleep(LOCK_HELD - took)  # past busy_timeout: the first attempt failed
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        gen_id = slow.body_id
        await wait_until(lambda: asyncio.to_thread(recorded, db, gen_id), 10, 0.1)
        gateway = gw.server.app[STATE].gateway
        for _ in range(50):  # the settle task finishes its bookkeeping just after the row commits
            if gateway.settling == 0:
                break
            await asyncio.sleep(0.1)
        assert gateway.settling == 0
        usage = await gw.server.app[STATE].store.key_usage(
            (await gw.server.app[STATE].store.get_generation(gen_id)).key_hash  # type: ignore[union-attr]
        )
        assert usage is not None and usage.usage == usage.settled and usage.generations == 2

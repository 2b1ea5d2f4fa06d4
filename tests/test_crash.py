"""Repeated `kill -9` of the real server under mixed load (both client APIs, streamed and not), on
SQLite and on PostgreSQL, restarting on the same database each time. Checked from the client side:
every answer a client received in full (the whole body, or the stream's final event) has its
generation in the ledger, under the key that paid for it; and each key's usage equals the sum of
its generations. Bounded: KILLS rounds of about LOAD_SECONDS each, per backend.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
import yaml
from store.backends import backend_of, store_url_fixture  # noqa: F401  (SQLite file / PostgreSQL schema per test)
from support.gateway import ADMIN_KEY, two_format_config
from support.process import ServerProcess
from support.raw import Outcome, chat
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply

from keeprouter.store import Store, open_store

pytestmark = pytest.mark.slow

KILLS = 8
WORKERS = 48  # concurrent clients
LOAD_SECONDS = (0.6, 1.4)  # the kill lands at a random moment in this window after the load starts
WORD = " tok"


@pytest_asyncio.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    s = await open_store(store_url)
    try:
        yield s
    finally:
        await s.close()


async def client(s: aiohttp.ClientSession, url: str, key: str, rng: random.Random, outs: list[tuple[str, Outcome]],
                 stop: asyncio.Event) -> None:  # fmt: skip
    """One client sending requests back to back until `stop`, or until the server is gone."""
    while not stop.is_set():
        api = rng.choice(("openai", "anthropic"))
        stream = rng.random() < 0.5
        out = Outcome(api, stream, 0)
        try:
            out = await chat(s, url, key, api, "gpt-test", stream=stream, max_tokens=100, seconds=10)
        except (aiohttp.ClientError, ConnectionError, TimeoutError):
            return  # killed under us: whatever this one got is not a full answer
        finally:
            outs.append((key, out))
        if out.status != 200:
            return


async def test_kill_9_repeatedly_under_mixed_load_loses_no_answer_received_in_full(
    store_url: str, store: Store, tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    t_start = time.monotonic()
    cfg = tmp_path / "keeprouter.yaml"
    cfg.write_text(yaml.safe_dump(two_format_config(openai_upstream.url, anthropic_upstream.url, store_url)))
    # Streams of 10 pieces, 20 ms apart (~0.2 s): many are mid-flight at each kill.
    openai_upstream.script(*[Fault(drip_interval=0.02, reply=Reply(text=WORD * 10, chunk_size=len(WORD),
                                                                    input_tokens=9, output_tokens=10))
                             for _ in range(20_000)])  # fmt: skip
    gw = ServerProcess(cfg, tmp_path / "gateway.log")
    rng = random.Random(12)
    outs: list[tuple[str, Outcome]] = []
    try:
        await gw.start()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=False)) as s:
            keys: dict[str, str] = {}  # key -> hash
            for name in ("alice", "bob"):
                async with s.post(gw.url + "/api/v1/keys", json={"name": name, "limit": 1000},
                                  headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as r:  # fmt: skip
                    assert r.status == 201, await r.text()
                    created = await r.json()
                keys[created["key"]] = created["data"]["hash"]
            for round_ in range(KILLS):
                if round_:
                    await gw.start()
                stop = asyncio.Event()
                clients = [asyncio.ensure_future(client(s, gw.url, k, rng, outs, stop))
                           for i in range(WORKERS) for k in [list(keys)[i % 2]]]  # fmt: skip
                await asyncio.sleep(rng.uniform(*LOAD_SECONDS))
                await gw.kill9()
                stop.set()
                await asyncio.wait_for(asyncio.gather(*clients), 15)
            await gw.start()  # once more: the database opens cleanly after the last kill
        full = [(k, o) for k, o in outs if o.completed]
        assert len(full) > 20 * KILLS, f"the load must be real: {len(full)} full answers"
        assert all(o.status in (0, 200) for _, o in outs), [o for _, o in outs if o.status not in (0, 200)]
        lost = []
        for k, o in full:
            assert o.header_id and (o.api == "anthropic" or o.body_id == o.header_id), o
            g = await store.get_generation(o.header_id)
            if g is None:
                lost.append(o)
            else:
                assert (g.key_hash, g.status, g.streamed) == (keys[k], "ok", o.stream), g
        assert not lost, f"{len(lost)} of {len(full)} answers received in full are not in the ledger: {lost[:3]}"
        for key_hash in keys.values():
            usage = await store.key_usage(key_hash)
            assert usage is not None and usage.usage == usage.settled, usage
        streams = sum(1 for _, o in full if o.stream)
        print(
            f"\n[{backend_of(store_url)}] {KILLS} kill -9 under load: {len(full) - streams} non-streamed and"
            f" {streams} streamed answers received in full, lost 0; {len(outs) - len(full)} cut by the kills;"
            f" each key's usage = the sum of its generations; {time.monotonic() - t_start:.1f}s"
        )
    finally:
        await gw.stop()

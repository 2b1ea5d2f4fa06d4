"""`kill -9` of a real `keeprouter serve` process in the middle of a streaming load, on SQLite and on
PostgreSQL, then a restart on the same database:

- every generation whose client got the stream's final event before the kill is recorded,
  exactly once, at tokens x price; the key's usage is exactly the sum of its records (no double
  billing, nothing billed without a record);
- on PostgreSQL, the credit holds the dead process left behind block the key until they expire,
  then the sweeper releases them and the credit comes back; on SQLite the holds lived in the dead
  process's memory (one process owns a SQLite database: see keeprouter/store/sqlite.py), so the
  restart itself gives the credit back.

The hold lifetime and the sweep period are shortened through KEEPROUTER_HOLD_TTL and
KEEPROUTER_HOLD_SWEEP_SECONDS (keeprouter/settings.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from store.backends import backend_of, store_url_fixture  # noqa: F401  (SQLite file / PostgreSQL schema per test)
from support.gateway import ADMIN_KEY, two_format_config
from support.process import ServerProcess
from support.raw import Outcome, auth, chat, chat_body, path, price_of, sse_events, wait_until
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply

from keeprouter.billing import pricing
from keeprouter.clients.openai_chat import request as openai_fmt
from keeprouter.config import parse_config
from keeprouter.formats import tokens
from keeprouter.store import Store, open_store

pytestmark = pytest.mark.slow

HOLD_TTL = 6.0  # seconds; every stream below lasts about 1.5 s
SWEEP = 0.3
MAX_TOKENS = 10_000  # big holds: the in-flight requests' holds saturate the key's limit
CONCURRENT_HOLDS = 8  # the key's limit covers this many worst cases (probes stay under the context length)
STAGGER = 0.04  # seconds between stream starts
KILL_AT = 2.0  # seconds after the first stream starts; streams keep starting until then
WORD = " tok"  # one token per streamed piece


class Gateway(ServerProcess):
    """The real server with short hold lifetimes."""

    def __init__(self, cfg_file: Path, log: Path) -> None:
        env = {"KEEPROUTER_HOLD_TTL": str(HOLD_TTL), "KEEPROUTER_HOLD_SWEEP_SECONDS": str(SWEEP)}
        super().__init__(cfg_file, log, env)


@pytest_asyncio.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    s = await open_store(store_url)
    try:
        yield s
    finally:
        await s.close()


async def stream_one(s: aiohttp.ClientSession, base: str, key: str, api: str, out: Outcome) -> None:
    """One streamed request; records what the client saw, whatever happens to the gateway."""
    body = chat_body(api, "gpt-test", stream=True, max_tokens=MAX_TOKENS)
    try:
        async with asyncio.timeout(15), s.post(base + path(api), json=body, headers=auth(api, key)) as r:
            out.status = r.status
            out.header_id = r.headers.get("X-Generation-Id")
            if r.status != 200:
                return
            async for data in sse_events(r):
                if data == "[DONE]" or (isinstance(data, dict) and data.get("type") == "message_stop"):
                    out.completed, out.completed_at = True, time.monotonic()
                    return
                if isinstance(data, dict) and data.get("type") == "message_start":
                    out.body_id = data["message"]["id"]
                elif isinstance(data, dict) and api == "openai":
                    out.body_id = out.body_id or data.get("id")
    except (aiohttp.ClientError, TimeoutError, ConnectionError) as e:
        out.error = repr(e)


async def test_kill_9_mid_load_loses_no_settled_generation_and_holds_expire(
    store_url: str, store: Store, tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    t_start = time.monotonic()
    raw = two_format_config(openai_upstream.url, anthropic_upstream.url, store_url)
    cfg_file = tmp_path / "keeprouter.yaml"
    cfg_file.write_text(yaml.safe_dump(raw))
    price = parse_config(raw, env={}).models["gpt-test"].endpoints[0].pricing
    prompt = tokens.count_request(openai_fmt.parse_request(chat_body("openai", "gpt-test", stream=True,
                                                                     max_tokens=MAX_TOKENS)))  # fmt: skip
    worst = pricing.worst_case(prompt, MAX_TOKENS, price)
    limit = worst * CONCURRENT_HOLDS
    # ~1.5 s per stream: 30 one-token pieces, 50 ms apart; usage only at the end (as OpenAI does)
    openai_upstream.script(*[Fault(drip_interval=0.05, reply=Reply(text=WORD * 30, chunk_size=len(WORD),
                                                                    input_tokens=prompt, output_tokens=30))
                             for _ in range(int(KILL_AT / STAGGER) + 10)])  # fmt: skip

    gw = Gateway(cfg_file, tmp_path / "gateway.log")
    try:
        await gw.start()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
            async with s.post(gw.url + "/api/v1/keys", json={"name": "load", "limit": str(limit)},
                              headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as r:  # fmt: skip
                assert r.status == 201, await r.text()
                created = await r.json()
            key, key_hash = created["key"], created["data"]["hash"]

            # ---- the load, and the kill in the middle of it ----------------------------------
            outs: list[Outcome] = []
            tasks: list[asyncio.Task[None]] = []
            t0 = time.monotonic()
            while time.monotonic() - t0 < KILL_AT:  # at most KILL_AT / STAGGER = 50 streams
                o = Outcome("openai" if len(outs) % 2 else "anthropic", True, 0)
                outs.append(o)
                tasks.append(asyncio.ensure_future(stream_one(s, gw.url, key, o.api, o)))
                await asyncio.sleep(STAGGER)
            killed_at = time.monotonic()
            await gw.kill9()
            await asyncio.wait_for(asyncio.gather(*tasks), 10)

            done = [o for o in outs if o.completed]
            cut = [o for o in outs if o.status == 200 and not o.completed]
            refused = [o for o in outs if o.status == 402]
            assert done and cut, f"the kill must land mid-load: {len(done)} done, {len(cut)} cut"
            assert len(done) + len(cut) + len(refused) == len(outs), [o for o in outs if o.status not in (200, 402)]
            for o in done:
                assert o.body_id and o.body_id == o.header_id

            # ---- restart on the same database ------------------------------------------------
            await gw.start()
            restarted_at = time.monotonic()
            before = await store.key_usage(key_hash)
            assert before is not None
            stale_holds = before.open_holds
            sqlite = backend_of(store_url) == "sqlite"
            if sqlite:
                # the holds were in the dead process's memory: nothing of them is left
                assert stale_holds == 0 and before.reserved == 0, before
                # a request the key could not take if even one cut stream's hold had survived
                # (each held `worst`), but that fits in what the key has
                want = limit - before.usage - worst / 2
            else:
                assert stale_holds > 0 and before.reserved > 0, before
                # a request needing more than what the stale holds leave, but less than the key has
                available = limit - before.usage - before.reserved
                want = available + before.reserved / 2
            probe_tokens = int(
                ((want.scaleb(6) - prompt * price.input) / price.output).to_integral_value(ROUND_CEILING)
            )
            probe = await chat(s, gw.url, key, "openai", "gpt-test", stream=False, max_tokens=probe_tokens)
            if sqlite:
                assert probe.status == 200 and probe.completed, f"the restart must give the credit back: {probe}"
                probe_id = probe.body_id
                assert probe_id
                probe_cost = (await wait_until(lambda: store.get_generation(probe_id), 5)).cost
            else:
                assert probe.status == 402, "the dead process's holds still hold the credit"
                probe_cost = Decimal(0)

            # settled generations: all there, once, at tokens x price
            last_done = max(o.completed_at or 0 for o in done)
            for o in done:
                assert o.body_id
                g = await store.get_generation(o.body_id)
                assert g is not None, f"{o.body_id}: the client saw its final event, the ledger has no record"
                assert (g.key_hash, g.status, g.streamed, g.tokens_completion) == (key_hash, "ok", True, 30)
                exact = price_of(g.tokens_prompt, g.tokens_completion, g.tokens_cached, g.tokens_cache_write, price)
                assert g.cost == pricing.quantize(exact)
            records = await store.list_generations(key_hash, limit=1000)
            ids = [g.id for g in records]
            assert len(ids) == len(set(ids))
            # Only finished answers settle. A stream settles just before its final event is written,
            # so a kill in between leaves the record of a whole answer (30 tokens produced, billed as
            # produced) whose last bytes its client never got: allowed, and only that.
            extra = set(ids) - {probe.body_id} - {o.body_id for o in done}
            cut_ids = {o.header_id for o in cut}
            for gid in extra:
                g = await store.get_generation(gid)
                assert gid in cut_ids and g is not None and g.tokens_completion == 30, f"{gid} settled unfinished"
            assert len(extra) <= 2, f"{len(extra)} records ahead of their final events: more than a kill's window"

            # the stale holds expire and the credit comes back
            async def released() -> Any:
                u = await store.key_usage(key_hash)
                return u if u is not None and u.open_holds == 0 else None

            after = await wait_until(released, HOLD_TTL + 5)
            assert after.reserved == after.held == 0
            assert after.usage == after.settled == sum((g.cost for g in records), Decimal(0))
            assert after.usage == before.usage + probe_cost
            probe2 = await chat(s, gw.url, key, "openai", "gpt-test", stream=True, max_tokens=probe_tokens)
            assert probe2.status == 200 and probe2.completed, probe2

            async def quiet() -> Any:
                u = await store.key_usage(key_hash)
                return u if u is not None and u.open_holds == 0 else None

            final = await wait_until(quiet, 5)
            assert final.usage == final.settled and final.reserved == 0
            assert final.usage <= limit
    finally:
        await gw.stop()
    print(
        f"\n[{store_url.split(':')[0]}] {len(done)} streams finished before the kill (last"
        f" {killed_at - last_done:.3f}s before it), all recorded; {len(cut)} cut, {len(refused)} refused;"
        f" {stale_holds} stale holds after restart, released {time.monotonic() - restarted_at:.1f}s later;"
        f" total {time.monotonic() - t_start:.1f}s"
    )


async def test_kill_9_right_after_the_final_event_keeps_the_record(
    store_url: str, store: Store, tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    """The worst moment: the gateway dies the instant its client has read the stream's final event,
    or the last byte of a non-streamed answer."""
    raw = two_format_config(openai_upstream.url, anthropic_upstream.url, store_url)
    cfg_file = tmp_path / "keeprouter.yaml"
    cfg_file.write_text(yaml.safe_dump(raw))
    openai_upstream.script(*[Fault(drip_interval=0.01, reply=Reply(text=WORD * 10, chunk_size=len(WORD),
                                                                    output_tokens=10)) for _ in range(8)])  # fmt: skip
    gw = Gateway(cfg_file, tmp_path / "gateway.log")
    try:
        async with aiohttp.ClientSession() as s:
            for api, stream in (("openai", True), ("anthropic", True), ("openai", False), ("anthropic", False)):
                await gw.start()
                body = chat_body(api, "gpt-test", stream=stream, max_tokens=50)
                async with (
                    asyncio.timeout(10),
                    s.post(gw.url + path(api), json=body, headers=auth(api, ADMIN_KEY)) as r,
                ):
                    assert r.status == 200
                    gen_id = r.headers["X-Generation-Id"]
                    if not stream:
                        await r.read()  # the whole answer is in the client's hands
                        await gw.kill9()
                    else:
                        async for data in sse_events(r):
                            if data == "[DONE]" or (isinstance(data, dict) and data.get("type") == "message_stop"):
                                await gw.kill9()
                                break
                        else:
                            raise AssertionError("the stream ended without its final event")
                g = await store.get_generation(gen_id)
                assert g is not None, f"{api}: the client saw the end of {gen_id} but it was never recorded"
                assert (g.status, g.streamed, g.tokens_completion) == ("ok", stream, 10)
                admin = await store.key_usage(g.key_hash)
                assert admin is not None and admin.usage == admin.settled
    finally:
        await gw.stop()

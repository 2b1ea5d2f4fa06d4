"""SIGTERM on the real `keeprouter serve`: it stops accepting, lets the streams in flight finish,
records them, and exits 0; a second SIGTERM (or KEEPROUTER_SHUTDOWN_SECONDS) ends the wait at once,
and what the cut streams produced is still recorded."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
import pytest
import yaml
from support.gateway import ADMIN_KEY, sqlite_url, two_format_config
from support.process import ServerProcess
from support.raw import auth, chat_body, path, sse_events
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply

from keeprouter.store import open_store

pytestmark = pytest.mark.slow
WORD = " tok"


async def read_stream(s: aiohttp.ClientSession, base: str, api: str, started: asyncio.Event) -> tuple[str, bool]:
    """(generation id, whether the stream's final event arrived)."""
    body = chat_body(api, "gpt-test", stream=True, max_tokens=500)
    gen_id = ""
    try:
        async with asyncio.timeout(40), s.post(base + path(api), json=body, headers=auth(api, ADMIN_KEY)) as r:
            assert r.status == 200
            gen_id = r.headers["X-Generation-Id"]
            async for data in sse_events(r):
                started.set()
                if data == "[DONE]" or (isinstance(data, dict) and data.get("type") == "message_stop"):
                    return gen_id, True
            return gen_id, False
    except (aiohttp.ClientError, ConnectionError):
        return gen_id, False


def server(tmp_path: Path, oa: OpenAIUpstream, an: AnthropicUpstream, grace: float) -> ServerProcess:
    cfg = tmp_path / "keeprouter.yaml"
    cfg.write_text(yaml.safe_dump(two_format_config(oa.url, an.url, sqlite_url(tmp_path))))
    return ServerProcess(cfg, tmp_path / "gateway.log", {"KEEPROUTER_SHUTDOWN_SECONDS": str(grace)})


async def refused(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(url + "/health", timeout=aiohttp.ClientTimeout(total=2)):
            return False
    except aiohttp.ClientError:
        return True


async def test_sigterm_lets_streams_in_flight_finish_records_them_and_exits_0(
    tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    # ~1.5 s streams: 15 pieces, 100 ms apart
    openai_upstream.script(*[Fault(drip_interval=0.1, reply=Reply(text=WORD * 15, chunk_size=len(WORD),
                                                                   output_tokens=15)) for _ in range(2)])  # fmt: skip
    gw = server(tmp_path, openai_upstream, anthropic_upstream, grace=30)
    try:
        await gw.start()
        async with aiohttp.ClientSession() as s:
            started = [asyncio.Event(), asyncio.Event()]
            streams = [asyncio.ensure_future(read_stream(s, gw.url, api, ev))
                       for api, ev in zip(("openai", "anthropic"), started, strict=True)]  # fmt: skip
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), 10)
            t0 = time.monotonic()
            gw.signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            assert await refused(gw.url), "new connections must be refused while draining"
            results = await asyncio.wait_for(asyncio.gather(*streams), 20)
            code = await gw.wait(15)
            took = time.monotonic() - t0
        assert code == 0, gw.log.read_text()
        assert all(done for _, done in results), f"every stream in flight must finish: {results}"
        assert took < 10, f"shutdown took {took:.1f}s once the streams were done"
        store = await open_store(sqlite_url(tmp_path))
        try:
            for gen_id, _ in results:
                g = await store.get_generation(gen_id)
                assert g is not None and (g.status, g.tokens_completion) == ("ok", 15), g
            assert "shut down cleanly" in gw.log.read_text()
        finally:
            await store.close()
    finally:
        await gw.stop()


@pytest.mark.parametrize("how", ["second SIGTERM", "deadline"])
async def test_a_second_sigterm_or_the_deadline_ends_it_at_once_still_recording_what_was_produced(
    how: str, tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    # a 30 s stream: 100 pieces, 300 ms apart
    openai_upstream.script(Fault(drip_interval=0.3, reply=Reply(text=WORD * 100, chunk_size=len(WORD),
                                                                 output_tokens=100)))  # fmt: skip
    grace = 30.0 if how == "second SIGTERM" else 1.0
    gw = server(tmp_path, openai_upstream, anthropic_upstream, grace=grace)
    try:
        await gw.start()
        async with aiohttp.ClientSession() as s:
            started = asyncio.Event()
            stream = asyncio.ensure_future(read_stream(s, gw.url, "openai", started))
            await asyncio.wait_for(started.wait(), 10)
            await asyncio.sleep(0.7)  # a few pieces out
            t0 = time.monotonic()
            gw.signal(signal.SIGTERM)
            if how == "second SIGTERM":
                await asyncio.sleep(0.5)
                gw.signal(signal.SIGTERM)
            code = await gw.wait(10)
            took = time.monotonic() - t0
            gen_id, done = await asyncio.wait_for(stream, 10)
        assert code == 0, gw.log.read_text()
        assert not done
        assert took < (2.5 if how == "second SIGTERM" else grace + 2.5), f"took {took:.1f}s"
        store = await open_store(sqlite_url(tmp_path))
        try:
            g = await store.get_generation(gen_id)
            assert g is not None, "the cut stream must be recorded"
            assert g.status == "cancelled" and 0 < g.tokens_completion < 100 and g.cost > 0, g
            usage = await store.key_usage(g.key_hash)
            assert usage is not None and usage.usage == usage.settled
        finally:
            await store.close()
    finally:
        await gw.stop()

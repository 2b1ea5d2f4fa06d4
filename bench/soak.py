"""Soak: a real `keeprouter` server under steady mixed load for N minutes, sampled each minute.

    python bench/soak.py --minutes 30 [--rps 20] [--database sqlite|postgresql://...]

The server runs in a child process (this file with --child: create_app + keeprouter.serving, as
`keeprouter serve` does, plus a sampler of its own asyncio task count) on a temporary SQLite
database by default, against the emulated upstreams of tests/upstreams. Load, at a bounded rate:
both client APIs (OpenAI, Anthropic), half streamed (20 pieces, 10 ms apart), 5 % upstream faults
(503 before the first byte, an in-band error mid-stream), 10 % of the streams dropped by the client
after a few events. Each minute: the server's RSS and open descriptors (/proc), its asyncio tasks,
requests, unexpected errors, latency p50/p99. At the end: RSS growth after the first minute, its
least-squares slope, and the ledger check (each key's usage = the sum of its generations).
Everything stays on 127.0.0.1; not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the upstream emulators and test helpers

WORD = " tok"


async def child(cfg: str, port: int, stats: str) -> None:
    """The server: what `keeprouter serve` runs, plus a task-count sampler writing to `stats`."""
    from keeprouter.app import create_app
    from keeprouter.config import load_config
    from keeprouter.serving import serve

    async def sample() -> None:
        while True:
            _write(stats, str(len(asyncio.all_tasks())))  # a few bytes to the page cache: not worth a thread
            await asyncio.sleep(5)

    sampler = asyncio.ensure_future(sample())
    config = load_config(cfg)
    assert config.admin_key
    try:
        await serve(create_app(config, config.admin_key), "127.0.0.1", port)
    finally:
        sampler.cancel()


def _write(path: str, text: str) -> None:
    Path(path).write_text(text)


def proc_sample(pid: int) -> tuple[float, int]:
    """(RSS in MiB, open descriptors) of `pid`."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


async def one(s: Any, url: str, key: str, rng: random.Random, lat: list[float], errs: list[str]) -> None:
    from support.raw import auth, chat_body, path, sse_events

    api = rng.choice(("openai", "anthropic"))
    stream = rng.random() < 0.5
    drop = stream and rng.random() < 0.1
    body = chat_body(api, "gpt-test", stream=stream, max_tokens=100)
    t0 = time.monotonic()
    try:
        async with asyncio.timeout(30), s.post(url + path(api), json=body, headers=auth(api, key)) as r:
            if r.status != 200:
                await r.read()
                if r.status != 502:  # 502: the injected 503, nowhere to fall back
                    errs.append(f"status {r.status}")
                return
            if not stream:
                await r.read()
            else:
                n = 0
                async for _ in sse_events(r):
                    n += 1
                    if drop and n == 3:
                        return  # the client goes away mid-stream
        lat.append(time.monotonic() - t0)
    except Exception as e:  # anything else is unexpected
        errs.append(type(e).__name__)


async def main(args: argparse.Namespace) -> None:
    import aiohttp
    import yaml
    from support.gateway import ADMIN_KEY, two_format_config
    from support.process import free_port
    from upstreams.anthropic_server import AnthropicUpstream
    from upstreams.openai_server import OpenAIUpstream
    from upstreams.script import Fault, Reply

    from keeprouter.store import open_store

    tmp = Path(tempfile.mkdtemp(prefix="kr-soak-"))
    db = args.database if args.database != "sqlite" else f"sqlite:///{tmp / 'soak.db'}"
    rng = random.Random(7)
    async with OpenAIUpstream() as oa, AnthropicUpstream() as an:
        cfg = tmp / "keeprouter.yaml"
        cfg.write_text(yaml.safe_dump(two_format_config(oa.url, an.url, db)))
        port, stats = free_port(), tmp / "tasks"
        log = os.open(tmp / "server.log", os.O_WRONLY | os.O_CREAT, 0o600)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--child", str(cfg), "--port", str(port), "--stats", str(stats),
            stdout=log, stderr=log,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"

        def refill() -> None:  # one scripted answer per request, in the mix the docstring gives
            x = rng.random()
            reply = Reply(text=WORD * 20, chunk_size=len(WORD), input_tokens=9, output_tokens=20)
            if x < 0.025:
                oa.script(Fault(status=503))
            elif x < 0.05:
                oa.script(Fault(stream_error_after=5, drip_interval=0.01, reply=reply))
            else:
                oa.script(Fault(drip_interval=0.01, reply=reply))

        rows: list[tuple[int, float, int, int, int, int, float, float]] = []
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
                for _ in range(200):
                    try:
                        async with s.get(url + "/health") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.1)
                hdr = {"Authorization": f"Bearer {ADMIN_KEY}"}
                async with s.post(url + "/api/v1/keys", json={"name": "soak", "limit": 1e6}, headers=hdr) as r:
                    created = await r.json()
                key, key_hash = created["key"], created["data"]["hash"]
                inflight: set[asyncio.Task[None]] = set()
                print("minute  rss_MiB  fds  tasks  requests  errors  p50_ms  p99_ms", flush=True)
                for minute in range(1, args.minutes + 1):
                    lat: list[float] = []
                    errs: list[str] = []
                    end = time.monotonic() + 60
                    while time.monotonic() < end:
                        refill()
                        t = asyncio.ensure_future(one(s, url, key, rng, lat, errs))
                        inflight.add(t)
                        t.add_done_callback(inflight.discard)
                        await asyncio.sleep(1 / args.rps)
                    rss, fds = proc_sample(proc.pid)
                    tasks = int(stats.read_text()) if stats.exists() else -1
                    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [0.0] * 99
                    rows.append((minute, rss, fds, tasks, len(lat), len(errs), q[49] * 1e3, q[98] * 1e3))
                    m, rss, fds, tasks, n, e, p50, p99 = rows[-1]
                    print(
                        f"{m:6d}  {rss:7.1f}  {fds:3d}  {tasks:5d}  {n:8d}  {e:6d}  {p50:6.1f}  {p99:6.1f}", flush=True
                    )
                await asyncio.gather(*inflight)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 60)
            os.close(log)
        store = await open_store(db)
        try:
            usage = await store.key_usage(key_hash)
        finally:
            await store.close()
    assert usage is not None
    base = rows[0][1]
    xs = [r[0] for r in rows]
    slope = statistics.linear_regression(xs, [r[1] for r in rows]).slope if len(rows) > 1 else 0.0
    print(f"RSS growth after minute 1: {rows[-1][1] - base:+.1f} MiB, slope {slope:+.2f} MiB/min;"
          f" unexpected errors {sum(r[5] for r in rows)}; exit code on SIGTERM {code};"
          f" ledger: usage {usage.usage} = sum of {usage.generations} generations {usage.settled}:"
          f" {usage.usage == usage.settled}; open holds {usage.open_holds}")  # fmt: skip


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=int, default=30)
    p.add_argument("--rps", type=float, default=20.0, help="requests started per second (bounded)")
    p.add_argument("--database", default="sqlite", help="sqlite (a temporary file) or a postgresql:// URL")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--stats", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        asyncio.run(child(a.child, a.port, a.stats))
    else:
        asyncio.run(main(a))

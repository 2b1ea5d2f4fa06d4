"""Benchmark (not a timed test): what the gateway adds to embeddings, per request and per input.

    python bench/embeddings.py [--texts 1000] [--rounds 10] [--concurrency 8]

1,000 short texts (5-12 words) are embedded against the emulated OpenAI-compatible upstream
(tests/upstreams/openai_server.py, 16-dimension vectors derived from each text), once DIRECT to it
and once THROUGH an in-process gateway (SQLite, a key, every request priced, recorded and settled
before it is answered), with plain aiohttp and `encoding_format: float`, in two shapes:
  batch    one request carrying every text (the gateway splits nothing: the host takes 2048);
           median of `--rounds` requests
  single   one request per text, `--concurrency` in flight; the wall time of all of them
Overhead = through - direct: per request, and per input (the batch's overhead over its texts).
Client, gateway and upstream share one event loop on one core, so the figures are the gateway's
whole CPU cost per call plus its database write, not network latency.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the upstream emulators and test helpers

from support.gateway import ADMIN_KEY, run_gateway  # noqa: E402
from upstreams.openai_server import OpenAIUpstream  # noqa: E402

WORDS = "the a cat dog river stone light quick slow red blue green north south data index vector query".split()


def texts(n: int) -> list[str]:
    rnd = random.Random(20)  # the same texts on every run
    return [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(5, 12))) + f" #{i}" for i in range(n)]


async def post(s: aiohttp.ClientSession, url: str, key: str, model: str, inputs: list[str] | str) -> None:
    body = {"model": model, "input": inputs, "encoding_format": "float"}
    async with s.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as r:
        data = await r.json()
        assert r.status == 200, data
        n = len(inputs) if isinstance(inputs, list) else 1
        assert len(data["data"]) == n and data["data"][-1]["index"] == n - 1, data


async def batch_ms(s: aiohttp.ClientSession, url: str, key: str, model: str, items: list[str], rounds: int) -> float:
    await post(s, url, key, model, items)  # warm: connections, caches
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await post(s, url, key, model, items)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


async def singles_s(s: aiohttp.ClientSession, url: str, key: str, model: str, items: list[str], conc: int) -> float:
    await post(s, url, key, model, items[0])
    queue = iter(items)

    async def worker() -> None:
        for text in queue:  # one shared iterator: each text is sent once
            await post(s, url, key, model, text)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return time.perf_counter() - t0


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    items = texts(args.texts)
    async with OpenAIUpstream() as up, aiohttp.ClientSession() as s:
        with tempfile.TemporaryDirectory() as tmp:
            cfg: dict[str, Any] = {
                "database": f"sqlite:///{tmp}/bench.db",
                "admin_key": ADMIN_KEY,
                "providers": {"up": {"api": "openai", "base_url": up.url, "api_key": up.expected_key}},
                "models": {
                    "emb": {
                        "modality": "text->embedding",
                        "context_length": 8192,
                        "endpoints": [{"provider": "up", "model": "up-emb", "pricing": {"input": 0.02}}],
                    }
                },
            }
            async with run_gateway(cfg) as gw:
                key = (await gw.create_key("bench"))["key"]
                direct, through = up.url + "/embeddings", gw.openai_base + "/embeddings"
                upkey = up.expected_key or ""
                b_direct = await batch_ms(s, direct, upkey, "up-emb", items, args.rounds)
                b_gw = await batch_ms(s, through, key, "emb", items, args.rounds)
                s_direct = await singles_s(s, direct, upkey, "up-emb", items, args.concurrency)
                s_gw = await singles_s(s, through, key, "emb", items, args.concurrency)
    n = len(items)
    print(f"{n} texts of 5-12 words, 16-dim vectors, emulated upstream, in-process gateway on SQLite")
    print(f"  batch (1 request, {n} inputs), median of {args.rounds}:")
    print(f"    direct {b_direct:8.1f} ms   through {b_gw:8.1f} ms   overhead {b_gw - b_direct:6.1f} ms per request,"
          f" {(b_gw - b_direct) * 1e3 / n:6.1f} us per input")  # fmt: skip
    print(f"  single ({n} requests of 1 input, {args.concurrency} in flight):")
    per = (s_gw - s_direct) * 1e3 / n
    print(f"    direct {s_direct:8.2f} s    through {s_gw:8.2f} s    overhead {per:6.2f} ms per request"
          f"   ({n / s_direct:6.0f} vs {n / s_gw:6.0f} requests/s)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())

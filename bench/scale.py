"""Requests per second of one process, `--workers 2` (shared socket and SO_REUSEPORT) and two
instances, all on one private PostgreSQL schema and the local Redis (a private key prefix, never
flushed), against the emulated OpenAI upstream of tests/upstreams; then whether the limits held.

Bounded: `--seconds` of load per set-up (default 10) at `--concurrency` requests in flight (32),
non-streamed chat completions. Load spread: the CPU seconds each worker used during the run.
Limits: a key whose credit covers exactly 20 requests gets 60 (admitted must be 20), a key with
`rpm_limit: 30` gets 60 within a minute (admitted must be 30), spread over every process.

    python bench/scale.py [--seconds 10] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the upstream emulators and test helpers

from support.gateway import ADMIN_KEY, two_format_config  # noqa: E402
from support.process import ServerProcess  # noqa: E402
from upstreams.openai_server import OpenAIUpstream  # noqa: E402
from upstreams.script import Reply  # noqa: E402

from keeprouter.billing import pricing  # noqa: E402
from keeprouter.clients.openai_chat import request as openai_fmt  # noqa: E402
from keeprouter.config import parse_config  # noqa: E402
from keeprouter.formats import tokens  # noqa: E402

PG = os.environ.get("KEEPROUTER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("KEEPROUTER_BENCH_REDIS", "redis://127.0.0.1:6379/0")
BODY = {"model": "gpt-test", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_of(proc: ServerProcess, n: int) -> list[int]:
    assert proc.proc is not None
    if n == 1:
        return [proc.proc.pid]
    kids = Path(f"/proc/{proc.proc.pid}/task/{proc.proc.pid}/children").read_text().split()
    return [int(k) for k in kids]


async def load(urls: list[str], seconds: float, concurrency: int) -> tuple[int, int, float]:
    """(ok, failed, seconds): `concurrency` loops, each on its own connection, round-robin over urls."""
    ok = failed = 0
    deadline = time.monotonic() + seconds

    async def loop(i: int) -> None:
        nonlocal ok, failed
        url = urls[i % len(urls)] + "/v1/chat/completions"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s:
            while time.monotonic() < deadline:
                try:
                    async with s.post(url, json=BODY, headers=HEADERS) as r:
                        await r.read()
                        ok, failed = (ok + 1, failed) if r.status == 200 else (ok, failed + 1)
                except aiohttp.ClientError:
                    failed += 1

    t0 = time.monotonic()
    await asyncio.gather(*(loop(i) for i in range(concurrency)))
    return ok, failed, time.monotonic() - t0


async def limits(urls: list[str], n_credit: int = 20, rpm: int = 30) -> tuple[str, str]:
    est = tokens.estimate_request(openai_fmt.parse_request(BODY))
    cfg = parse_config(two_format_config("http://x", "http://x", "sqlite:///:memory:"), env={})
    worst = pricing.worst_case(est, BODY["max_tokens"], cfg.models["gpt-test"].endpoints[0].pricing)  # type: ignore[arg-type]
    out = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=30)) as s:
        for fields, sent in (({"limit": float(worst * n_credit)}, 3 * n_credit), ({"rpm_limit": rpm}, 2 * rpm)):
            async with s.post(urls[0] + "/api/v1/keys", json={"name": "bench", **fields}, headers=HEADERS) as r:
                key = (await r.json())["key"]

            async def one(i: int, key: str = key) -> int:
                async with s.post(urls[i % len(urls)] + "/v1/chat/completions", json=BODY,
                                  headers={"Authorization": f"Bearer {key}"}) as r:  # fmt: skip
                    await r.read()
                    return r.status

            got = await asyncio.gather(*(one(i) for i in range(sent)))
            out.append(f"{got.count(200)} of {sent} admitted")
    return out[0], out[1]


async def setup(name: str, nproc: int, workers: int, mode: str, up: OpenAIUpstream, tmp: Path,
                seconds: float, conc: int) -> dict[str, Any]:  # fmt: skip
    schema = f"kr_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(PG)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    db = f"{PG}?search_path={schema}"
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(two_format_config(up.url, up.url, db, redis=REDIS)))
    env = {"KEEPROUTER_WORKER_SOCKET": mode, "KEEPROUTER_REDIS_PREFIX": f"krbench:{schema}:"}
    args = ("--workers", str(workers)) if workers > 1 else ()
    procs = [ServerProcess(cfg, tmp / f"{name}-{i}.log", env, args) for i in range(nproc)]
    try:
        for p in procs:
            await p.start(60)
        await asyncio.sleep(3)  # every worker up (the first answer may come from the first alone)
        urls = [p.url for p in procs]
        await load(urls, 1.0, conc)  # warm-up
        pids = [pid for p in procs for pid in workers_of(p, workers)]
        cpu0 = [cpu_seconds(pid) for pid in pids]
        ok, failed, took = await load(urls, seconds, conc)
        cpu = [round(cpu_seconds(pid) - c, 1) for pid, c in zip(pids, cpu0, strict=True)]
        credit, rpm = await limits(urls)
        return {"setup": name, "rps": round(ok / took), "failed": failed, "cpu_s_per_worker": cpu,
                "credit_for_20": credit, "rpm_30": rpm}  # fmt: skip
    finally:
        for p in procs:
            await p.stop()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--only", help="comma-separated set-up names")
    a = ap.parse_args()
    import tempfile

    up = OpenAIUpstream(expected_key=None)
    # each answer costs exactly its reservation, so a credit for 20 admits 20 whatever the timing
    est = tokens.estimate_request(openai_fmt.parse_request(BODY))
    up.default = Reply(text="Hello!", input_tokens=est, output_tokens=50)
    await up.start()
    plans = [("one process", 1, 1, "shared"), ("--workers 2 (shared socket)", 1, 2, "shared"),
             ("--workers 2 (SO_REUSEPORT)", 1, 2, "reuseport"), ("two instances", 2, 1, "shared")]  # fmt: skip
    if a.only:
        plans = [p for p in plans if p[0] in a.only.split(",")]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, nproc, workers, mode in plans:
                print(await setup(name, nproc, workers, mode, up, Path(tmp), a.seconds, a.concurrency), flush=True)
    finally:
        await up.close()


if __name__ == "__main__":
    asyncio.run(main())

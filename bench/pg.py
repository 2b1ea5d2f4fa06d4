"""Requests per second and CPU per request of the real server on SQLite and on PostgreSQL.

One gateway process per backend (SQLite: a temporary file; PostgreSQL: a private schema of the
`test` database at 127.0.0.1:5432, dropped afterwards), the emulated OpenAI upstream of
tests/upstreams, non-streamed chat completions from a key with a credit limit (so authentication,
the reservation's limit check and the settle all run), `--concurrency` connections (8) for
`--seconds` (10) each, all on one key unless `--keys N` (one key is the worst case on PostgreSQL:
every request updates its row). The backends alternate for `--rounds` rounds (2), so both see the same
machine; compare the ratios of one round (printed at the end: their median), the machine is shared.

Per backend: requests/s, the gateway's CPU per request (from /proc, before and after), and on
PostgreSQL the CPU of the backend processes serving the gateway's connections (found by their
application_name, read from /proc), plus the walwriter's, and the database's committed
transactions per request (pg_stat_database: other users of the `test` database add to it).

    python bench/pg.py [--seconds 10] [--concurrency 8] [--rounds 2] [--keys 1] [--pg-params '&setting=value']
    python bench/pg.py --rounds 1 --profile /tmp/pg.raw   # py-spy of the PostgreSQL gateway's run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys
import tempfile
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
from workloads import profiler  # noqa: E402

PG = os.environ.get("KEEPROUTER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BODY = {"model": "gpt-test", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # a backend that exited: its CPU is lost to the figure (rare: pools keep them)
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


async def load(url: str, keys: list[str], seconds: float, concurrency: int) -> tuple[int, int, float]:
    """(ok, failed, seconds): `concurrency` loops, each on its own connection, loop i with key i % len(keys)."""
    ok = failed = 0
    deadline = time.monotonic() + seconds

    async def loop(i: int) -> None:
        nonlocal ok, failed
        headers = {"Authorization": f"Bearer {keys[i % len(keys)]}"}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s:
            while time.monotonic() < deadline:
                try:
                    async with s.post(url + "/v1/chat/completions", json=BODY, headers=headers) as r:
                        await r.read()
                        ok, failed = (ok + 1, failed) if r.status == 200 else (ok, failed + 1)
                except aiohttp.ClientError:
                    failed += 1

    t0 = time.monotonic()
    await asyncio.gather(*(loop(i) for i in range(concurrency)))
    return ok, failed, time.monotonic() - t0


class PgProbe:
    """CPU of the PostgreSQL processes serving one application_name, and the database's commits."""

    def __init__(self, admin: asyncpg.Connection, app: str) -> None:
        self.admin, self.app = admin, app
        self.cpu0: dict[int, float] = {}
        self.commits0 = 0

    async def _pids(self) -> list[int]:
        rows = await self.admin.fetch("SELECT pid FROM pg_stat_activity WHERE application_name = $1", self.app)
        return [r[0] for r in rows]

    async def _walwriter(self) -> list[int]:
        rows = await self.admin.fetch("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'")
        return [r[0] for r in rows]

    async def _commits(self) -> int:
        sql = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        return int(await self.admin.fetchval(sql))

    async def start(self) -> None:
        self.cpu0 = {pid: cpu_seconds(pid) for pid in await self._pids() + await self._walwriter()}
        self.commits0 = await self._commits()

    async def stop(self) -> tuple[float, float, int]:
        """(backends' CPU seconds, walwriter's CPU seconds, commits) since start()."""
        commits = await self._commits() - self.commits0 - 2  # our own two reads of the counter
        backends = sum(cpu_seconds(pid) - self.cpu0.get(pid, 0.0) for pid in await self._pids())
        wal = sum(cpu_seconds(pid) - self.cpu0.get(pid, 0.0) for pid in await self._walwriter())
        return backends, wal, commits


async def one_backend(backend: str, up: OpenAIUpstream, tmp: Path, a: argparse.Namespace) -> dict[str, Any]:
    tag = secrets.token_hex(4)
    admin: asyncpg.Connection | None = None
    schema = f"kr_benchpg_{tag}"
    if backend == "postgres":
        admin = await asyncpg.connect(PG)
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        db = f"{PG}?search_path={schema}&application_name={schema}{a.pg_params}"
    else:
        db = f"sqlite:///{tmp / f'{tag}.db'}"
    cfg = tmp / f"{backend}-{tag}.yaml"
    cfg.write_text(yaml.safe_dump(two_format_config(up.url, up.url, db)))
    proc = ServerProcess(cfg, tmp / f"{backend}-{tag}.log")
    try:
        await proc.start(60)
        assert proc.proc is not None
        keys = []
        async with aiohttp.ClientSession() as s:
            for i in range(max(1, min(a.keys, 1000))):
                async with s.post(proc.url + "/api/v1/keys", json={"name": f"bench-{i}", "limit": 1_000_000.0},
                                  headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as r:  # fmt: skip
                    keys.append((await r.json())["key"])
        await load(proc.url, keys, 1.0, a.concurrency)  # warm-up: every pooled connection opened
        probe = PgProbe(admin, schema) if admin is not None else None
        if probe is not None:
            await probe.start()
        spy = await profiler(proc.proc.pid, a.profile) if a.profile and backend == "postgres" else None
        cpu0 = cpu_seconds(proc.proc.pid)
        ok, failed, took = await load(proc.url, keys, a.seconds, a.concurrency)
        gw = cpu_seconds(proc.proc.pid) - cpu0
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            await spy.wait()
        out: dict[str, Any] = {"backend": backend, "rps": round(ok / took), "failed": failed,
                               "gateway_ms_per_req": round(1000 * gw / max(ok, 1), 3)}  # fmt: skip
        if probe is not None:
            pg, wal, commits = await probe.stop()
            out["pg_backends_ms_per_req"] = round(1000 * pg / max(ok, 1), 3)
            out["pg_walwriter_ms_per_req"] = round(1000 * wal / max(ok, 1), 3)
            out["db_commits_per_req"] = round(commits / max(ok, 1), 2)
        return out
    finally:
        await proc.stop()
        if admin is not None:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
            await admin.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--keys", type=int, default=1, help="spread the connections over this many keys")
    ap.add_argument("--profile", type=Path, help="py-spy's collapsed stacks of the PostgreSQL gateway, to FILE")
    ap.add_argument("--pg-params", default="", help="appended to the URL, e.g. '&plan_cache_mode=force_generic_plan'")
    a = ap.parse_args()
    up = OpenAIUpstream(expected_key=None)
    up.default = Reply(text="Hello!", input_tokens=10, output_tokens=20)
    await up.start()
    results: dict[str, list[dict[str, Any]]] = {"sqlite": [], "postgres": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(max(1, min(a.rounds, 10))):
                for backend in ("sqlite", "postgres"):
                    r = await one_backend(backend, up, Path(tmp), a)
                    results[backend].append(r)
                    print(r, flush=True)
                    up.requests.clear()  # the emulator keeps every request; a bench must not grow
    finally:
        await up.close()
    # each round's two backends ran back to back: their ratio is the figure that survives a noisy machine
    pairs = list(zip(results["sqlite"], results["postgres"], strict=True))
    ratios = sorted(round(p["rps"] / max(q["rps"], 1), 2) for q, p in pairs)
    pg_cpu = sorted(p["pg_backends_ms_per_req"] for _, p in pairs)
    gw = sorted(round(p["gateway_ms_per_req"] / max(q["gateway_ms_per_req"], 1e-9), 2) for q, p in pairs)
    mid = len(pairs) // 2
    print(f"median of {len(pairs)} rounds: postgres/sqlite requests/s {ratios[mid]:.2f} (all: {ratios}),"
          f" gateway CPU per request postgres/sqlite {gw[mid]:.2f},"
          f" PostgreSQL backends' CPU {pg_cpu[mid]} ms per request")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())

"""Gateway CPU per streamed chunk on a long stream, and per small request.

A local upstream (aiohttp, OpenAI's chat-completion chunk format) answers every streamed request
with `--chunks` content chunks, written in bursts of `--burst` events per socket write (a fast
upstream's reads carry several events; `--burst 1` is one event per read). The gateway runs as its
own process on SQLite; the CPU it used is read from /proc before and after, so the figures are the
gateway's own work, whatever the load generator costs.

    python bench/stream_chunks.py [--chunks 2000] [--streams 20] [--burst 8] [--small 2000]

Prints, for the OpenAI Chat client (same format as the upstream) and the Anthropic Messages client
(translated): microseconds of gateway CPU per chunk, and for small non-streamed requests
microseconds of gateway CPU per request. Bounded in count; every socket is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
import yaml
from aiohttp import web

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the test helpers: a server process, free ports

from support.gateway import ADMIN_KEY  # noqa: E402
from support.process import ServerProcess, free_port  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sse_body(chunks: int) -> list[bytes]:
    """The upstream's stream as events (role, `chunks` one-word deltas, finish with usage, [DONE])."""

    def ev(delta: dict[str, object], finish: str | None = None, usage: object = None) -> bytes:
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "bench-up",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage is not None:
            chunk["usage"] = usage
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    out = [ev({"role": "assistant", "content": ""})]
    out += [ev({"content": f" word{i}"}) for i in range(chunks)]
    usage = {"prompt_tokens": 9, "completion_tokens": chunks, "total_tokens": chunks + 9}
    out.append(ev({}, "stop", usage))
    out.append(b"data: [DONE]\n\n")
    return out


def upstream(events: list[bytes], burst: int) -> web.Application:
    bursts = [b"".join(events[i : i + burst]) for i in range(0, len(events), burst)]
    small = orjson.dumps(
        {
            "id": "chatcmpl-small",
            "object": "chat.completion",
            "created": 1,
            "model": "bench-up",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
        }
    )

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not body.get("stream"):
            return web.Response(body=small, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for b in bursts:
            await resp.write(b)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


def config(up: str, db: str) -> dict[str, object]:
    ep = {"provider": "up", "model": "bench-up", "pricing": {"input": 1.0, "output": 2.0},
          "capabilities": ["streaming", "tools"]}  # fmt: skip
    return {
        "database": db,
        "admin_key": ADMIN_KEY,
        "providers": {"up": {"api": "openai", "base_url": up, "api_key": "sk-up"}},
        "models": {"bench": {"name": "Bench", "maker": "Bench", "context_length": 100000, "endpoints": [ep]}},
    }


CLIENTS: dict[str, tuple[str, dict[str, object]]] = {
    "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
    "messages": ("/v1/messages", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4096}),
}


async def measure(gw: ServerProcess, key: str, args: argparse.Namespace) -> None:
    assert gw.proc is not None
    pid = gw.proc.pid
    headers = {"Authorization": f"Bearer {key}", "x-api-key": key, "anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession(headers=headers) as s:
        for name, (path, base) in CLIENTS.items():
            body = {**base, "model": "bench", "stream": True}
            for _ in range(2):  # warm-up
                async with s.post(gw.url + path, json=body) as r:
                    await r.read()
            c0, t0 = cpu_seconds(pid), time.monotonic()
            total = 0
            for _ in range(args.streams):
                async with s.post(gw.url + path, json=body) as r:
                    assert r.status == 200, await r.text()
                    total += len(await r.read())
            cpu = cpu_seconds(pid) - c0
            us = cpu / (args.streams * args.chunks) * 1e6
            print(f"{name:9s} stream: {us:6.2f} us CPU/chunk  ({args.streams} x {args.chunks} chunks, burst "
                  f"{args.burst}, {time.monotonic() - t0:.2f} s, {total // args.streams} B/stream)")  # fmt: skip
        for name, (path, base) in CLIENTS.items():
            body = {**base, "model": "bench", "max_tokens": 50}
            sem = asyncio.Semaphore(8)

            async def one(body: dict[str, object] = body, path: str = path, sem: asyncio.Semaphore = sem) -> None:
                async with sem, s.post(gw.url + path, json=body) as r:
                    assert r.status == 200, await r.text()
                    await r.read()

            await asyncio.gather(*(one() for _ in range(50)))  # warm-up
            c0 = cpu_seconds(pid)
            await asyncio.gather(*(one() for _ in range(args.small)))
            us = (cpu_seconds(pid) - c0) / args.small * 1e6
            print(f"{name:9s} small : {us:6.1f} us CPU/request ({args.small} requests, 8 in flight)")


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--chunks", type=int, default=2000)
    p.add_argument("--streams", type=int, default=20)
    p.add_argument("--burst", type=int, default=8)
    p.add_argument("--small", type=int, default=2000)
    args = p.parse_args()
    runner = web.AppRunner(upstream(sse_body(args.chunks), args.burst), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "kr.yaml"
        cfg.write_text(yaml.safe_dump(config(f"http://127.0.0.1:{port}/v1", f"sqlite:///{tmp}/kr.db")))
        gw = ServerProcess(cfg, Path(tmp) / "kr.log")
        await gw.start()
        try:
            async with aiohttp.ClientSession() as s:
                async with s.post(
                    gw.url + "/api/v1/keys",
                    json={"name": "bench", "limit": 1000000},
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                ) as r:
                    key = (await r.json())["key"]
            await measure(gw, key, args)
        finally:
            await gw.stop()
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())

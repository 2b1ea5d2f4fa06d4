"""The gateway's own CPU on four workloads, beside the thin pass-through floor, in one run.

A local upstream (aiohttp, OpenAI's chat-completion format) answers every request at once; the
gateway runs as its own process on SQLite with a customer key (auth, routing, credit hold and
ledger on), and the CPU it used is read from /proc before and after each measurement, so the
figures are the gateway's own work whatever the load generator costs. The floor is the shared
bench's `thin_proxy.py` (aiohttp + uvloop, forwards bytes untranslated, no auth or ledger), run
against the same upstream when it is found (`../shared/bench/`, or `--thin PATH`).

    python bench/workloads.py [--mode long small cc ttft] [--chunks 2000] [--streams 20] ...
    python bench/workloads.py --mode small --profile /tmp/small.raw   # then ../shared/bench/pyspy_top.py

Modes (each prints CPU per unit, and ours / floor where the floor applies):
- long:  a 2,000-chunk stream (events written in bursts of `--burst` per upstream write), through
         the OpenAI Chat client (untranslated) and the Anthropic client (translated); us per chunk.
- small: a small non-streamed chat request, 8 in flight; us per request.
- cc:    a Claude-Code-sized request (~74 KB: system prompt, tools, history) from the Anthropic
         client to the OpenAI-format upstream, whole and streamed, 8 in flight; us per request.
- ttft:  time to the first streamed token, sequential, minus the upstream's own; median in us.
- features: the small request again with one feature on at a time (a key of a user in a team, so
         three budgets reserved; a model allowlist; a named conversation for affinity; reasoning
         on; all of them), each one's extra CPU per request in us, and each case's ratio to the
         thin pass-through measured in the same interleaved rounds (`--rounds`, medians).

On a machine of 2 cores or more the gateway and the floor run on core 0 and this process (load and
upstream) on core 1, as in the shared bench (`--no-pin` to leave them free).

Bounded in count; every socket is on 127.0.0.1. Compare figures of one run only (the machine is
shared): the ratios are what to quote.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml
from aiohttp import web

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the test helpers: a server process, free ports

from support.gateway import ADMIN_KEY  # noqa: E402
from support.process import ServerProcess, free_port  # noqa: E402

THIN = HERE.parent.parent / "shared" / "bench" / "thin_proxy.py"
ANTHROPIC = {"anthropic-version": "2023-06-01"}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
    chunk: dict[str, Any] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "bench-up",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def sse_events(chunks: int) -> list[bytes]:
    """The upstream's stream as events (role, `chunks` one-word deltas, finish with usage, [DONE])."""
    out = [_chunk({"role": "assistant", "content": ""})]
    out += [_chunk({"content": f" word{i}"}) for i in range(chunks)]
    out.append(_chunk({}, "stop", {"prompt_tokens": 9, "completion_tokens": chunks, "total_tokens": chunks + 9}))
    out.append(b"data: [DONE]\n\n")
    return out


SMALL_ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-small",
        "object": "chat.completion",
        "created": 1,
        "model": "bench-up",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    }
)


def upstream(long_stream: list[bytes], burst: int) -> web.Application:
    """Streams: the long one for requests asking more than 100 tokens, else a 20-chunk one."""
    bursts = [b"".join(long_stream[i : i + burst]) for i in range(0, len(long_stream), burst)]
    short = [b"".join(sse_events(20))]

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not body.get("stream"):
            return web.Response(body=SMALL_ANSWER, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        wanted = body.get("max_tokens") or body.get("max_completion_tokens") or 0
        for b in bursts if wanted > 100 else short:
            await resp.write(b)
        await resp.write_eof()
        return resp

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    return app


def config(up: str, db: str) -> dict[str, Any]:
    ep = {"provider": "up", "model": "bench-up", "pricing": {"input": 1.0, "output": 2.0},
          "capabilities": ["streaming", "tools"]}  # fmt: skip
    return {
        "database": db,
        "admin_key": ADMIN_KEY,
        "providers": {"up": {"api": "openai", "base_url": up, "api_key": "sk-up"}},
        # The thin pass-through routes every model to the same upstream; `mock-chat` is its name.
        "models": {"mock-chat": {"name": "Bench", "maker": "Bench", "context_length": 200000, "endpoints": [ep]}},
    }


def claude_code_body(stream: bool) -> dict[str, Any]:
    """A Claude-Code-sized Messages request (~74 KB): a long system prompt, 20 tools, 30 turns."""
    tools = [
        {
            "name": f"tool_{i}",
            "description": "Runs one step of the agent's work. " * 20,
            "input_schema": {
                "type": "object",
                "properties": {f"arg{j}": {"type": "string", "description": "an argument " * 5} for j in range(6)},
                "required": ["arg0"],
            },
        }
        for i in range(20)
    ]
    turns: list[dict[str, Any]] = []
    for i in range(15):
        turns.append({"role": "user", "content": f"Step {i}: " + "please look at the repository and report. " * 30})
        turns.append({"role": "assistant", "content": f"Done step {i}. " + "The files look fine and tests pass. " * 30})
    turns.append({"role": "user", "content": "Now summarise."})
    return {
        "model": "mock-chat",
        "max_tokens": 64,
        "stream": stream,
        "system": "You are Claude Code, an interactive CLI tool. " * 300,
        "tools": tools,
        "messages": turns,
    }


class Target:
    def __init__(self, name: str, url: str, pid: int, headers: dict[str, str]) -> None:
        self.name, self.url, self.pid, self.headers = name, url, pid, headers


def post(path: str, body: dict[str, Any]) -> Callable[[aiohttp.ClientSession], Awaitable[None]]:
    raw = orjson.dumps(body)

    async def one(s: aiohttp.ClientSession) -> None:
        async with s.post(path, data=raw, headers={"Content-Type": "application/json"}) as r:
            if r.status != 200:
                raise RuntimeError(f"{path}: HTTP {r.status}: {(await r.text())[:300]}")
            await r.read()

    return one


def session_for(t: Target) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(base_url=t.url, headers=t.headers)


def line(label: str, ours: float, floor: float | None, unit: str) -> None:
    ratio = f"   ours/floor {ours / floor:4.1f}x (floor {floor:7.2f})" if floor else ""
    print(f"{label:34s} {ours:8.2f} {unit}{ratio}")


async def measure(gw: Target, thin: Target | None, args: argparse.Namespace) -> None:
    async def per(t: Target | None, n: int, path: str, body: dict[str, Any], inflight: int) -> float | None:
        if t is None:
            return None
        call = post(path, body)
        async with session_for(t) as s:
            sem = asyncio.Semaphore(inflight)

            async def guarded() -> None:
                async with sem:
                    await call(s)

            await asyncio.gather(*(guarded() for _ in range(min(n // 10 + 2, 50))))
            c0 = cpu_seconds(t.pid)
            await asyncio.gather(*(guarded() for _ in range(n)))
            return (cpu_seconds(t.pid) - c0) / n

    chat = {"model": "mock-chat", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 50}
    long_chat = {**chat, "stream": True, "max_tokens": 4096}
    long_msgs = {**long_chat, "messages": [{"role": "user", "content": "hello there"}]}
    for mode in args.mode:
        if mode == "long":
            n, k = args.streams, args.chunks
            ours = await per(gw, n, "/v1/chat/completions", long_chat, 1)
            floor = await per(thin, n, "/v1/chat/completions", long_chat, 1)
            assert ours is not None
            line(f"long stream, chat (burst {args.burst})", ours / k * 1e6, floor and floor / k * 1e6, "us/chunk")
            ours = await per(gw, n, "/v1/messages", long_msgs, 1)
            assert ours is not None
            line(f"long stream, messages (burst {args.burst})", ours / k * 1e6, floor and floor / k * 1e6, "us/chunk")
        elif mode == "small":
            ours = await per(gw, args.small, "/v1/chat/completions", chat, 8)
            floor = await per(thin, args.small, "/v1/chat/completions", chat, 8)
            assert ours is not None
            line("small chat request, c=8", ours * 1e6, floor and floor * 1e6, "us/req")
        elif mode == "cc":
            for stream in (False, True):
                body = claude_code_body(stream)
                ours = await per(gw, args.cc, "/v1/messages", body, 8)
                assert ours is not None
                line(f"claude-code-sized, {'streamed' if stream else 'whole'}, c=8", ours * 1e6, None, "us/req")
        elif mode == "ttft":
            await ttft(gw, thin, args.ttft, args.upstream)
        elif mode == "features":
            await features(gw, thin, args.small, args.rounds)


async def admin_post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(url + path, json=body, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as r,
    ):
        got: dict[str, Any] = await r.json()
        if r.status >= 300:
            raise RuntimeError(f"{path}: HTTP {r.status}: {got}")
        return got


async def features(gw: Target, thin: Target | None, n: int, rounds: int) -> None:
    """Each feature's cost on the small request (its CPU per request minus the plain key's), and
    each case's ratio to the thin pass-through measured in the same rounds."""
    team = (await admin_post(gw.url, "/api/v1/teams", {"name": "bench", "limit": 100000}))["data"]["id"]
    user = await admin_post(gw.url, "/api/v1/users", {"email": "b@example.com", "team_id": team, "limit": 100000})
    uid = user["data"]["id"]
    owned = await admin_post(gw.url, "/api/v1/keys", {"name": "owned", "limit": 100000, "user_id": uid})
    listed = await admin_post(gw.url, "/api/v1/keys", {"name": "listed", "limit": 100000, "models": ["mock-chat"]})
    everything = await admin_post(
        gw.url, "/api/v1/keys", {"name": "all", "limit": 100000, "user_id": uid, "models": ["mock-chat"]}
    )
    chat = {"model": "mock-chat", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 50}

    def keyed(created: dict[str, Any]) -> Target:  # the gateway, called with another key
        return Target("", gw.url, gw.pid, {"Authorization": f"Bearer {created['key']}"})

    cases: list[tuple[str, Target, dict[str, Any]]] = [
        ("plain key", gw, chat),
        ("user + team budgets", keyed(owned), chat),
        ("model allowlist", keyed(listed), chat),
        ("named conversation (affinity)", gw, {**chat, "session_id": "s-1"}),
        ("reasoning on", gw, {**chat, "reasoning": {"effort": "low"}}),
        ("all of them", keyed(everything), {**chat, "session_id": "s-1", "reasoning": {"effort": "low"}}),
    ]
    if thin is not None:
        cases.append(("thin pass-through", thin, chat))
    per_round: dict[str, list[float]] = {label: [] for label, _, _ in cases}
    for _ in range(rounds):  # rounds interleave the cases, so drift on a shared machine spreads evenly
        for label, target, body in cases:
            call = post("/v1/chat/completions", body)
            async with session_for(target) as s:
                sem = asyncio.Semaphore(8)

                async def guarded(s: aiohttp.ClientSession = s, sem: asyncio.Semaphore = sem, call: Any = call) -> None:
                    async with sem:
                        await call(s)

                await asyncio.gather(*(guarded() for _ in range(50)))
                c0 = cpu_seconds(target.pid)
                await asyncio.gather(*(guarded() for _ in range(n)))
                per_round[label].append((cpu_seconds(target.pid) - c0) / n * 1e6)
    base = statistics.median(per_round["plain key"])
    floor = statistics.median(per_round["thin pass-through"]) if thin is not None else None
    for label, values in per_round.items():
        us = statistics.median(values)
        shown = f"{us:8.1f}" if label in ("plain key", "thin pass-through") else f"{us - base:+8.1f}"
        ratio = f"   {us / floor:4.2f}x the floor" if floor and label != "thin pass-through" else ""
        print(f"{'feature cost: ' + label:42s} {shown} us/req (median of {rounds} rounds){ratio}")


def pin(gateway: int, floor: int | None) -> None:
    """The shared bench's layout on a machine of 2 cores or more: the gateway (every thread) and the
    floor on core 0, this process (load and upstream) on core 1. Less noise from migrations, and
    the gateway's threads share one core as they do there."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return
    for pid in (gateway, floor):
        if pid is not None:
            for task in os.listdir(f"/proc/{pid}/task"):
                os.sched_setaffinity(int(task), {0})
    os.sched_setaffinity(0, {1})


async def first_token(s: aiohttp.ClientSession, url: str, body: bytes) -> float:
    t0 = time.perf_counter()
    async with s.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
        async for raw in r.content:
            if raw.startswith(b"data:") and b'"content":"' in raw and b'"content":""' not in raw:
                t = time.perf_counter() - t0
                await r.read()
                return t
    raise RuntimeError("no token in the stream")


async def ttft(gw: Target, thin: Target | None, n: int, direct: str) -> None:
    body = orjson.dumps({"model": "mock-chat", "stream": True, "max_tokens": 50,
                         "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    res: dict[str, float] = {}
    targets = [("direct", Target("direct", direct, 0, {})), ("ours", gw)]
    if thin is not None:
        targets.append(("floor", thin))
    for name, t in targets:
        async with aiohttp.ClientSession(headers=t.headers) as s:
            for _ in range(20):
                await first_token(s, t.url + "/v1/chat/completions", body)
            times = [await first_token(s, t.url + "/v1/chat/completions", body) for _ in range(n)]
        res[name] = statistics.median(times) * 1e6
    ours = res["ours"] - res["direct"]
    floor = res["floor"] - res["direct"] if "floor" in res else None
    line("time to first token, overhead", ours, floor, "us")


async def profiler(pid: int, out: Path) -> asyncio.subprocess.Process:
    """py-spy sampling the gateway (its samples include the floor's turn too: profile one mode)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    proc = await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(pid), "--rate", "400", "--gil", "--format", "raw", "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(1.0)  # attached before the first measured request
    return proc


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", nargs="+", default=["long", "small", "cc", "ttft", "features"])
    p.add_argument("--chunks", type=int, default=2000)
    p.add_argument("--streams", type=int, default=20)
    p.add_argument("--burst", type=int, default=8)
    p.add_argument("--small", type=int, default=2000)
    p.add_argument("--cc", type=int, default=300)
    p.add_argument("--ttft", type=int, default=200)
    p.add_argument("--rounds", type=int, default=5, help="features: interleaved rounds, medians reported")
    p.add_argument("--no-pin", action="store_true", help="leave the processes on every core")
    p.add_argument("--thin", type=Path, default=THIN)
    p.add_argument("--profile", type=Path, help="py-spy's collapsed stacks of the gateway over the run, to FILE")
    args = p.parse_args()
    runner = web.AppRunner(upstream(sse_events(args.chunks), args.burst), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    args.upstream = f"http://127.0.0.1:{port}"
    thin_proc: asyncio.subprocess.Process | None = None
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "kr.yaml"
        cfg.write_text(yaml.safe_dump(config(f"{args.upstream}/v1", f"sqlite:///{tmp}/kr.db")))
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
            thin: Target | None = None
            if args.thin.exists():
                tport = free_port()
                thin_proc = await asyncio.create_subprocess_exec(
                    sys.executable, str(args.thin), "--port", str(tport), "--upstream", args.upstream
                )
                await asyncio.sleep(1.5)
                thin = Target("floor", f"http://127.0.0.1:{tport}", thin_proc.pid, {})
            else:
                print(f"# no thin pass-through at {args.thin}: figures without the floor")
            assert gw.proc is not None
            if not args.no_pin:
                pin(gw.proc.pid, thin.pid if thin is not None else None)
            ours = Target("ours", gw.url, gw.proc.pid, {"Authorization": f"Bearer {key}", **ANTHROPIC})
            spy = await profiler(gw.proc.pid, args.profile) if args.profile else None
            await measure(ours, thin, args)
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                await spy.wait()
        finally:
            if thin_proc is not None:
                thin_proc.terminate()
                await thin_proc.wait()
            await gw.stop()
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())

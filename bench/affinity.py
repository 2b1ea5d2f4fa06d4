"""Benchmark (not a timed test): what conversation affinity costs on the request path, and what it
saves on a Claude-Code-sized session.

    python bench/affinity.py [--iterations 2000] [--sessions 4] [--turns 20]   (--sessions 0: lookups only)

1. Lookup cost, medians over `--iterations` on a Claude-Code-sized request (a ~20k-token system
   prompt, 17 tools, 40 messages): naming the conversation (by its opening messages, and by a
   session id), the in-process table's get + put, the selection rule, and Redis GET + SET (the local
   server, a private key prefix) when it answers.
2. Session cost: `--sessions` sessions of `--turns` turns through an in-process gateway to a model
   with two equal-price Anthropic endpoints (Sonnet prices) that emulate provider-side caching
   (tests/upstreams/prompt_cache.py), with affinity, without it, and to one endpoint alone: the
   cache-read share of prompt tokens and the cost per session (from /api/v1/generation).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the upstream emulators and test helpers

from support.gateway import ADMIN_KEY, run_gateway  # noqa: E402
from upstreams.anthropic_server import AnthropicUpstream  # noqa: E402
from upstreams.prompt_cache import AnthropicCache, read_share  # noqa: E402
from upstreams.script import Reply  # noqa: E402

from keeprouter.api.http import STATE  # noqa: E402
from keeprouter.config import EndpointConfig, ModelConfig, Pricing, Timeouts  # noqa: E402
from keeprouter.formats.canonical import ChatRequest, Message, TextPart, Tool  # noqa: E402
from keeprouter.gateway import Route  # noqa: E402
from keeprouter.gateway.response_cache import request_key  # noqa: E402
from keeprouter.routing.affinity import MemoryAffinity, conversation, prefer  # noqa: E402
from keeprouter.routing.affinity.redis_table import RedisAffinity  # noqa: E402
from keeprouter.routing.select import Candidate, ProviderPrefs  # noqa: E402
from keeprouter.store.base import KeyRecord  # noqa: E402

PRICES = {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75, "cache_write_1h": 6}
SYSTEM = "You are an interactive agent that helps users with software engineering tasks. " * 1000
TOOL_SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}}}
EPH = {"type": "ephemeral"}


def claude_code_request() -> ChatRequest:
    tools = [
        Tool(name=f"tool_{i}", description="Does one thing well. " * 40, parameters=TOOL_SCHEMA) for i in range(17)
    ]
    msgs = [
        Message(role="user" if i % 2 == 0 else "assistant", content=[TextPart(text=f"turn {i}: " + "code " * 300)])
        for i in range(40)
    ]
    return ChatRequest(model="duo", messages=msgs, system=[TextPart(text=SYSTEM)], tools=tools, source="anthropic")


def median_us(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


async def amedian_us(fn: Callable[[], Any], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


async def lookup_cost(n: int) -> None:
    req = claude_code_request()
    table = MemoryAffinity()
    p = Decimal(1)
    model = ModelConfig(
        "duo", "Duo", "T", 200_000,
        tuple(EndpointConfig(x, f"up-{x}", Pricing(p, p), frozenset(), 200_000, None, Timeouts()) for x in "ab"),
    )  # fmt: skip
    cands = [Candidate(model, ep) for ep in model.endpoints]
    conv = conversation(req, {}, None, "key")
    assert conv is not None
    await table.put(conv.key, cands[1].key, 300)
    print(f"request: {len(SYSTEM) // 1024} KiB system prompt, {len(req.tools)} tools, {len(req.messages)} messages")
    print(f"  name by opening messages   {median_us(lambda: conversation(req, {}, None, 'key'), n):8.1f} us")
    hdr = {"x-session-id": "5b3f0c"}
    print(f"  name by session id         {median_us(lambda: conversation(req, hdr, None, 'key'), n):8.1f} us")
    print(f"  memory table get + put     {await amedian_us(lambda: _get_put(table, conv.key, cands), n):8.1f} us")
    print(f"  selection rule             {median_us(lambda: prefer(cands, cands[1].key, lambda k: True), n):8.1f} us")
    # the response cache's key of the same request (only when the cache is on; off, nothing runs)
    owner, route = KeyRecord(hash="h", name="k", label="l", created_at=0.0), Route([model], ProviderPrefs())
    print(f"  response cache key (on)    {median_us(lambda: request_key(owner, req, route), n):8.1f} us")
    try:
        from redis.asyncio import Redis

        client = Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1)
        await client.ping()
    except Exception as e:  # a benchmark without Redis still reports the rest
        print(f"  redis GET + SET            (skipped: {type(e).__name__})")
        return
    prefix = f"kr_bench_{time.time_ns()}:"
    shared = RedisAffinity(client, prefix=prefix)
    try:
        us = await amedian_us(lambda: _get_put(shared, conv.key, cands), max(n // 10, 50))
        print(f"  redis GET + SET (loopback) {us:8.1f} us")
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def _get_put(table: Any, key: str, cands: list[Candidate]) -> None:
    await table.get(key)
    await table.put(key, cands[1].key, 300)


def config(urls: dict[str, str], db: str) -> dict[str, Any]:
    providers = {p: {"api": "anthropic", "base_url": u, "api_key": "sk-up-anthropic"} for p, u in urls.items()}
    eps = [{"provider": p, "model": f"up-{p}", "pricing": PRICES, "capabilities": ["streaming", "tools"]} for p in urls]
    return {
        "database": db,
        "admin_key": ADMIN_KEY,
        "providers": providers,
        "models": {"duo": {"name": "Duo", "context_length": 200000, "endpoints": eps}},
    }


async def one_session(s: aiohttp.ClientSession, url: str, key: str, sid: str, turns: int) -> Decimal:
    """A Claude-Code-shaped session: the system prompt and the last message marked, the history
    growing by ~600 tokens a turn. Returns what it cost."""
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01", "x-session-id": sid}
    system = [{"type": "text", "text": SYSTEM, "cache_control": EPH}]
    history: list[dict[str, Any]] = []
    total = Decimal(0)
    for n in range(turns):
        old = [
            {**m, "content": [{k: v for k, v in b.items() if k != "cache_control"} for b in m["content"]]}
            for m in history
        ]
        ask = {"type": "text", "text": f"[{sid}] step {n}: " + "read this file and fix it. " * 80, "cache_control": EPH}
        history = [*old, {"role": "user", "content": [ask]}]
        body = {"model": "duo", "max_tokens": 256, "system": system, "messages": history}
        async with s.post(url + "/v1/messages", json=body, headers=headers) as r:
            answer = await r.json()
            assert r.status == 200, answer
        history.append({"role": "assistant", "content": answer["content"]})
        for _ in range(100):
            async with s.get(
                url + f"/api/v1/generation?id={answer['id']}", headers={"Authorization": f"Bearer {key}"}
            ) as r:
                if r.status == 200:
                    total += Decimal(str((await r.json())["data"]["total_cost"]))
                    break
            await asyncio.sleep(0.02)
    return total


async def session_cost(sessions: int, turns: int) -> None:
    print(
        f"\n{sessions} sessions x {turns} turns, two equal-price endpoints (Sonnet prices), provider caching emulated"
    )
    for setting in ("affinity", "no affinity", "one endpoint"):
        async with AnthropicUpstream() as a, AnthropicUpstream() as b:
            ups = {"p1": a} if setting == "one endpoint" else {"p1": a, "p2": b}
            for up in ups.values():
                up.prompt_cache = AnthropicCache()
                up.default = Reply(text="Done. " * 40, output_tokens=200)
            with tempfile.TemporaryDirectory() as tmp:
                cfg = config({p: u.base_url for p, u in ups.items()}, f"sqlite:///{tmp}/bench.db")
                async with run_gateway(cfg) as gw, aiohttp.ClientSession() as s:
                    if setting == "no affinity":  # balanced by price on every turn, as before
                        gw.server.app[STATE].gateway.sticky.conversation = lambda *a, **k: None
                    key = (await gw.create_key("bench"))["key"]
                    costs = [await one_session(s, gw.url, key, f"s{i}", turns) for i in range(sessions)]
            history = [c for up in ups.values() if up.prompt_cache for c in up.prompt_cache.history]
            print(
                f"  {setting:13s} cache-read share {read_share(history):6.1%}   "
                f"cost per session ${statistics.mean(costs):.4f}"
            )


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--turns", type=int, default=20)
    args = ap.parse_args()
    await lookup_cost(args.iterations)
    if args.sessions:
        await session_cost(args.sessions, args.turns)


if __name__ == "__main__":
    asyncio.run(main())

"""Prompt caching through the real gateway, against upstreams that emulate provider-side caching
(upstreams.prompt_cache): conversation affinity over two equal-price endpoints, a failure moving a
conversation for good, two instances sharing Redis, breakpoints at the wire, and 1-hour writes
billed at `cache_write_1h` with the saving recorded as `cache_discount`.

Which endpoint served is the `X-KeepRouter-Provider` header; what the provider cached is the
emulator's account of each request it served.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url
from support.redis_server import SHARED_URL, drop_prefix, shared_client, unique_prefix
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.prompt_cache import AnthropicCache, PrefixCache, read_share
from upstreams.script import Fault, Reply

# Anthropic's Sonnet prices per 1M tokens: 5-minute writes 1.25x input, 1-hour writes 2x, reads 0.1x.
PRICES = {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75, "cache_write_1h": 6}
SYSTEM = "You are a careful coding agent. " * 700  # ~5,000 tokens, a Claude-Code-sized system prompt
EPH = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}


def duo_config(urls: dict[str, str], api: str, db: str, **extra: Any) -> dict[str, Any]:
    key = "sk-up-anthropic" if api == "anthropic" else "sk-up-openai"
    providers = {
        p: {"api": api, "base_url": url, "api_key": key, "timeout": {"first_byte": 5}} for p, url in urls.items()
    }
    eps = [{"provider": p, "model": f"up-{p}", "pricing": PRICES, "capabilities": ["streaming", "tools"]} for p in urls]
    return {
        "database": db,
        "admin_key": ADMIN_KEY,
        "providers": providers,
        "models": {"duo": {"name": "Duo", "context_length": 200000, "endpoints": eps}, **extra.pop("models", {})},
        **extra,
    }


@dataclass
class Duo:
    gw: RunningGateway
    ups: dict[str, AnthropicUpstream]
    key: str
    session: aiohttp.ClientSession

    async def turn(
        self, history: list[dict[str, Any]], headers: dict[str, str] | None = None, **body: Any
    ) -> tuple[str, dict[str, Any]]:
        """One Anthropic Messages turn; returns who served it and the answer."""
        payload = {"model": "duo", "max_tokens": 64, "system": SYSTEM, "messages": history, **body}
        h = {"x-api-key": self.key, "anthropic-version": "2023-06-01", **(headers or {})}
        async with self.session.post(self.gw.url + "/v1/messages", json=payload, headers=h) as r:
            if body.get("stream"):
                assert r.status == 200, await r.text()
                return r.headers["X-KeepRouter-Provider"], _from_stream(await r.text())
            data: dict[str, Any] = await r.json()
            assert r.status == 200, data
            return r.headers["X-KeepRouter-Provider"], data

    async def generation(self, gen_id: str) -> dict[str, Any]:
        h = {"Authorization": f"Bearer {self.key}"}
        for _ in range(50):  # the settle may land just after the answer
            async with self.session.get(self.gw.url + f"/api/v1/generation?id={gen_id}", headers=h) as r:
                if r.status == 200:
                    data: dict[str, Any] = (await r.json())["data"]
                    return data
            await asyncio.sleep(0.05)
        raise AssertionError(f"generation {gen_id} never recorded")


def _from_stream(text: str) -> dict[str, Any]:
    """The id, text and usage of a streamed Messages answer."""
    out: dict[str, Any] = {"content": [{"type": "text", "text": ""}], "usage": {}}
    for line in text.splitlines():
        if not line.startswith("data: "):
            continue
        ev = json.loads(line[6:])
        if ev["type"] == "message_start":
            out["id"] = ev["message"]["id"]
            out["usage"].update(ev["message"]["usage"])
        elif ev["type"] == "content_block_delta" and ev["delta"]["type"] == "text_delta":
            out["content"][0]["text"] += ev["delta"]["text"]
        elif ev["type"] == "message_delta":
            out["usage"].update(ev["usage"])
    return out


@pytest_asyncio.fixture(name="duo")
async def duo_fixture(tmp_path: Path) -> AsyncIterator[Duo]:
    async with AnthropicUpstream() as p1, AnthropicUpstream() as p2:
        ups = {"p1": p1, "p2": p2}
        for up in ups.values():
            up.prompt_cache = AnthropicCache()
            up.default = Reply(text="Done.", output_tokens=20)
        async with run_gateway(
            duo_config({p: u.base_url for p, u in ups.items()}, "anthropic", sqlite_url(tmp_path))
        ) as gw:
            key = (await gw.create_key("caching"))["key"]
            async with aiohttp.ClientSession() as session:
                yield Duo(gw, ups, key, session)


def grow(history: list[dict[str, Any]], answer: dict[str, Any], n: int, mark: bool = True) -> list[dict[str, Any]]:
    """The next turn's history: the answer, then a new user message (marked as Claude Code marks
    its last message when `mark`)."""
    old = [
        {**m, "content": [{k: v for k, v in b.items() if k != "cache_control"} for b in m["content"]]} for m in history
    ]
    block: dict[str, Any] = {"type": "text", "text": f"Step {n}: now do the next part. " * 30}
    if mark:
        block["cache_control"] = EPH
    return [*old, {"role": "assistant", "content": answer["content"]}, {"role": "user", "content": [block]}]


def first_turn(mark: bool = True) -> list[dict[str, Any]]:
    return grow([], {"content": [{"type": "text", "text": "Ready."}]}, 0, mark)[1:]


async def session(duo: Duo, turns: int, headers: dict[str, str] | None = None, **body: Any) -> list[str]:
    history = first_turn()
    served = []
    for n in range(turns):
        who, answer = await duo.turn(history, headers, **body)
        served.append(who)
        history = grow(history, answer, n + 1)
    return served


# ---- affinity ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "naming",
    [
        {"headers": {"x-session-id": "sess-1"}},
        {"session_id": "sess-1"},
        {"metadata": {"user_id": "user_abc_account__session_5b3f"}},
        {},  # unnamed: recognised by its system prompt and first user message
    ],
    ids=["x-session-id", "session_id", "metadata.user_id", "unnamed"],
)
async def test_thirty_turns_of_one_session_land_on_one_endpoint(duo: Duo, naming: dict[str, Any]) -> None:
    served = await session(duo, 30, **naming)
    assert len(set(served)) == 1, Counter(served)
    up = duo.ups[served[0]]
    assert up.prompt_cache is not None and read_share(up.prompt_cache.history) > 0.8


@pytest.mark.parametrize(
    "naming",
    [{"prompt_cache_key": "pck-1"}, {"session_id": "s-1"}, {}],
    ids=["prompt_cache_key", "session_id", "unnamed"],
)
async def test_an_openai_client_session_lands_on_one_endpoint(duo: Duo, naming: dict[str, Any]) -> None:
    h = {"Authorization": f"Bearer {duo.key}"}
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM, "cache_control": EPH}]},
    ]
    served = []
    for n in range(12):
        messages.append({"role": "user", "content": f"Step {n}: now do the next part. " * 30})
        body = {"model": "duo", "max_tokens": 64, "messages": messages, **naming}
        async with duo.session.post(duo.gw.url + "/v1/chat/completions", json=body, headers=h) as r:
            data = await r.json()
            assert r.status == 200, data
            served.append(r.headers["X-KeepRouter-Provider"])
        messages.append({"role": "assistant", "content": data["choices"][0]["message"]["content"]})
    assert len(set(served)) == 1, Counter(served)
    cache = duo.ups[served[0]].prompt_cache
    assert cache is not None and cache.history[-1].read > 4000  # the system prompt, read back


async def test_conversations_still_spread_over_both_endpoints(duo: Duo) -> None:
    first: list[str] = []
    for i in range(16):
        who, _ = await duo.turn(first_turn(), {"x-session-id": f"conv-{i}"})
        first.append(who)
    assert set(first) == {"p1", "p2"}, Counter(first)


async def test_a_failed_endpoint_moves_the_conversation_once_and_it_stays(duo: Duo) -> None:
    headers = {"x-session-id": "moving"}
    history = first_turn()
    who, answer = await duo.turn(history, headers)
    other = "p2" if who == "p1" else "p1"
    duo.ups[who].script(Fault(status=500))
    history = grow(history, answer, 1)
    moved, answer = await duo.turn(history, headers)
    assert moved == other
    for n in range(2, 12):  # the first endpoint is healthy again; the conversation stays moved
        history = grow(history, answer, n)
        now, answer = await duo.turn(history, headers)
        assert now == other


async def test_two_instances_sharing_redis_keep_one_conversation_on_one_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await shared_client()
    prefix = unique_prefix()
    monkeypatch.setenv("KEEPROUTER_REDIS_PREFIX", prefix)
    try:
        async with AnthropicUpstream() as p1, AnthropicUpstream() as p2:
            ups = {"p1": p1, "p2": p2}
            urls = {p: u.base_url for p, u in ups.items()}
            db = sqlite_url(tmp_path)
            cfg = duo_config(urls, "anthropic", db, redis=SHARED_URL)
            async with run_gateway(cfg) as a, run_gateway(cfg) as b, aiohttp.ClientSession() as s:
                key = (await a.create_key("shared"))["key"]
                served = []
                history = first_turn()
                for n in range(12):
                    gw = (a, b)[n % 2]  # alternate instances, as a load balancer would
                    duo = Duo(gw, ups, key, s)
                    who, answer = await duo.turn(history, {"x-session-id": "shared-conv"})
                    served.append(who)
                    history = grow(history, answer, n + 1)
                assert len(set(served)) == 1, served
                shared = [k async for k in client.scan_iter(match=prefix + "af:*")]
                assert len(shared) == 1  # the one conversation, in Redis
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()


# ---- breakpoints at the wire ---------------------------------------------------------------------


def marks(body: dict[str, Any]) -> list[tuple[str, Any]]:
    """(where, cache_control) of every breakpoint in a wire body, in prompt order."""
    out: list[tuple[str, Any]] = []
    for t in body.get("tools") or []:
        if "cache_control" in t:
            out.append((f"tool:{t['name']}", t["cache_control"]))
    system = body.get("system")
    for i, b in enumerate(system if isinstance(system, list) else []):
        if "cache_control" in b:
            out.append((f"system[{i}]", b["cache_control"]))
    for i, m in enumerate(body["messages"]):
        for j, b in enumerate(m["content"] if isinstance(m["content"], list) else []):
            if "cache_control" in b:
                out.append((f"messages[{i}][{j}]", b["cache_control"]))
    return out


async def test_top_level_cache_control_becomes_one_breakpoint_on_the_last_block(duo: Duo) -> None:
    history = first_turn(mark=False)
    await duo.turn(history, {"x-session-id": "bp"}, cache_control=HOUR)
    sent = [r for up in duo.ups.values() for r in up.requests if r.path == "/v1/messages"][-1].body
    assert "cache_control" not in sent
    assert marks(sent) == [(f"messages[{len(history) - 1}][0]", HOUR)]


async def test_never_more_than_four_breakpoints_reach_the_provider(duo: Duo) -> None:
    blocks = [{"type": "text", "text": f"part {i} " * 50, "cache_control": EPH} for i in range(6)]
    who, _ = await duo.turn([{"role": "user", "content": blocks}], {"x-session-id": "many"}, cache_control=EPH)
    sent = duo.ups[who].requests[-1].body
    assert len(marks(sent)) == 4  # the emulator, like the provider, answers 400 beyond 4


async def test_model_auto_breakpoint_marks_requests_without_their_own(tmp_path: Path) -> None:
    async with AnthropicUpstream() as up:
        up.prompt_cache = AnthropicCache()
        cfg = duo_config({"p1": up.base_url}, "anthropic", sqlite_url(tmp_path))
        cfg["models"]["duo"]["cache"] = {"auto_breakpoint": True}
        async with run_gateway(cfg) as gw, aiohttp.ClientSession() as s:
            duo = Duo(gw, {"p1": up}, (await gw.create_key("auto"))["key"], s)
            history = first_turn(mark=False)
            _, answer = await duo.turn(history)
            assert marks(up.requests[-1].body) == [("messages[0][0]", EPH)]
            await duo.turn(grow(history, answer, 1, mark=False))
            assert up.prompt_cache.history[-1].read > 0  # the second turn reads the first one's prefix


async def test_openai_format_upstreams_get_no_breakpoints(tmp_path: Path) -> None:
    async with OpenAIUpstream() as up:
        up.prompt_cache = PrefixCache()
        cfg = duo_config({"p1": up.url}, "openai", sqlite_url(tmp_path))
        async with run_gateway(cfg) as gw, aiohttp.ClientSession() as s:
            duo = Duo(gw, {}, (await gw.create_key("oa"))["key"], s)
            history = first_turn(mark=False)
            for n in range(3):
                _, answer = await duo.turn(history, cache_control=EPH)
                history = grow(history, answer, n + 1, mark=False)
            sent = up.requests[-1].body
            assert "cache_control" not in str(sent)
            assert up.prompt_cache.history[-1].read >= 1024  # cached by prefix on its own


# ---- exact cache prices --------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_a_1h_write_is_billed_at_cache_write_1h_and_the_discount_is_exact(duo: Duo, stream: bool) -> None:
    system = [{"type": "text", "text": SYSTEM, "cache_control": HOUR}]
    history = first_turn()  # its last block is a 5-minute breakpoint, after the 1-hour one
    who, first = await duo.turn(history, {"x-session-id": "hour"}, system=system, stream=stream)
    cache = duo.ups[who].prompt_cache
    assert cache is not None
    c = cache.history[-1]  # what the provider wrote, as it reports it
    assert c.write_1h > 4000 and c.write_5m > 0 and c.read == 0
    gen = await duo.generation(first["id"])
    d = Decimal
    out = first["usage"]["output_tokens"]
    expected = (c.uncached * d(3) + c.write_5m * d("3.75") + c.write_1h * d(6) + out * d(15)) / 10**6
    assert d(str(gen["total_cost"])) == expected
    assert d(str(gen["cache_discount"])) == (c.write_5m * d("-0.75") + c.write_1h * d(-3)) / 10**6
    assert gen["native_tokens_cache_write"] == c.write_5m + c.write_1h
    _, second = await duo.turn(grow(history, first, 1), {"x-session-id": "hour"}, system=system, stream=stream)
    c2 = cache.history[-1]
    assert c2.read > 4000 and c2.write_1h == 0
    gen2 = await duo.generation(second["id"])
    assert d(str(gen2["cache_discount"])) == (c2.read * d("2.7") + c2.write_5m * d("-0.75")) / 10**6

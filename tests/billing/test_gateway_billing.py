"""Billing through the real HTTP gateway, on SQLite and on PostgreSQL (the `store_url` fixture).

- 500 concurrent requests on a key whose limit covers about 50 worst cases: never overspent, every
  admitted request recorded exactly once at tokens x price, every refused one 402 in its API's shape,
  the records sum to the key's usage exactly.
- Streams cut by the client and by the upstream are billed for what was produced; a generation that
  produced nothing costs nothing; the credit hold is released in every case.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import pytest_asyncio
from support.gateway import RunningGateway, run_gateway, two_format_config
from support.raw import Outcome, auth, chat, chat_body, get_json, path, price_of, sse_events, wait_until
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.base import Received
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply

from keeprouter.api.http import STATE
from keeprouter.billing import pricing
from keeprouter.clients.anthropic_messages import request as anthropic_fmt
from keeprouter.clients.openai_chat import request as openai_fmt
from keeprouter.config import Pricing
from keeprouter.formats import tokens
from keeprouter.store.base import KeyUsage

MAX_TOKENS = 100
MODELS = {"openai": "gpt-test", "anthropic": "claude-test"}  # upstream format -> model served by it
N_REQUESTS = 500
COVERED = 50  # the key's limit covers about this many worst-case reservations
WORD = " tok"  # one token for the offline counter; streamed one piece per event (chunk_size=4)


@dataclass
class Env:
    gw: RunningGateway
    oa: OpenAIUpstream
    an: AnthropicUpstream
    url: str

    def pricing(self, model: str) -> Pricing:
        return self.gw.config.models[model].endpoints[0].pricing

    async def usage(self, key_hash: str) -> KeyUsage:
        got = await self.gw.server.app[STATE].store.key_usage(key_hash)
        assert got is not None
        return got

    async def settled(self, key_hash: str) -> KeyUsage:
        """The key's ledger once no request is in flight and every settle has run (bounded)."""

        async def idle() -> KeyUsage | None:
            u = await self.usage(key_hash)
            return u if u.open_holds == 0 and not self.gw.server.app[STATE].gateway.settler.tasks else None

        got: KeyUsage = await wait_until(idle, 15.0)
        return got


@pytest_asyncio.fixture
async def env(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, store_url: str
) -> AsyncIterator[Env]:
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, store_url)
    async with run_gateway(cfg) as gw:
        yield Env(gw, openai_upstream, anthropic_upstream, store_url)


def worst_case(env: Env, api: str, model: str) -> Decimal:
    """The reservation the gateway takes: prompt estimate + max_tokens at the endpoint's prices."""
    body = chat_body(api, model, stream=False, max_tokens=MAX_TOKENS)
    req = openai_fmt.parse_request(body) if api == "openai" else anthropic_fmt.parse_request(body)
    return pricing.worst_case(tokens.count_request(req), MAX_TOKENS, env.pricing(model))


async def check_record(s: aiohttp.ClientSession, env: Env, key: str, gen_id: str) -> dict[str, Any]:
    """The generation's record, its cost checked against tokens x price to the nano-dollar."""
    status, body = await get_json(s, f"{env.gw.url}/api/v1/generation?id={gen_id}", key)
    assert status == 200, body
    g = body["data"]
    assert g["id"] == gen_id
    p = env.pricing(g["model"])
    exact = price_of(
        g["tokens_prompt"], g["tokens_completion"], g["native_tokens_cached"], g["native_tokens_cache_write"], p
    )
    want = pricing.quantize(exact) if g["tokens_completion"] else Decimal(0)
    assert Decimal(g["total_cost"]) == want, (g, exact)
    return dict(g)


def assert_402(o: Outcome) -> None:
    assert o.status == 402, o
    if o.api == "openai":
        assert o.error["error"]["code"] == 402, o.error
        assert o.error["error"]["message"]
    else:
        assert o.error["type"] == "error", o.error
        assert o.error["error"]["type"] == "billing_error", o.error


# ---- 500 concurrent requests on a key that covers about 50 ---------------------------------------


async def test_concurrent_requests_never_overspend(env: Env) -> None:
    # Every answer uses max_tokens, so a request costs nearly its reservation and the limit binds.
    for up in (env.oa, env.an):
        up.default = Reply(text="ok", input_tokens=5, output_tokens=MAX_TOKENS, stop="max_tokens")
    kinds = [(api, stream, model) for api in ("openai", "anthropic") for stream in (False, True)
             for model in MODELS.values()]  # fmt: skip
    worst = {(api, model): worst_case(env, api, model) for api, _, model in kinds}
    limit = (sum(worst.values(), Decimal(0)) / len(worst) * COVERED).quantize(Decimal("0.000001"))
    created = await env.gw.create_key("load", float(limit))
    key, key_hash = created["key"], created["data"]["hash"]
    assert Decimal(str(created["data"]["limit"])) == limit

    t0 = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=250)) as s:
        calls = [
            chat(s, env.gw.url, key, api, model, stream=stream, max_tokens=MAX_TOKENS)
            for api, stream, model in (kinds[i % len(kinds)] for i in range(N_REQUESTS))
        ]
        outcomes = await asyncio.gather(*calls)
        elapsed = time.monotonic() - t0

        admitted = [o for o in outcomes if o.status == 200]
        refused = [o for o in outcomes if o.status != 200]
        for o in refused:
            assert_402(o)
        assert 0 < len(admitted) < N_REQUESTS
        assert {(o.api, o.stream) for o in refused} == {(a, st) for a, st, _ in kinds}, "402 in every shape"
        for o in admitted:
            assert o.completed and o.error is None, o
            assert o.body_id and o.body_id == o.header_id, o
            if o.api == "openai":
                assert o.cost is not None, "OpenAI answers carry usage.cost"

        ledger = await env.settled(key_hash)
        ids = [o.body_id for o in admitted]
        assert len(set(ids)) == len(ids), "generation ids are unique"
        records = await asyncio.gather(*(check_record(s, env, key, i) for i in ids if i))
        for o, g in zip(admitted, records, strict=True):
            if o.cost is not None:
                assert o.cost == Decimal(g["total_cost"]), "usage.cost is what the key was charged"
            assert g["streamed"] == o.stream and g["status"] == "ok"
        total = sum((Decimal(g["total_cost"]) for g in records), Decimal(0))

        # exactly one record per admitted request, and nothing else billed to the key
        assert ledger.generations == len(admitted)
        assert ledger.settled == total == ledger.usage
        assert ledger.reserved == ledger.held == 0
        assert total <= limit

        status, me = await get_json(s, env.gw.url + "/api/v1/key", key)
        assert status == 200
        assert Decimal(me["data"]["usage"]) == total
        assert Decimal(me["data"]["limit_remaining"]) == limit - total
        status, cr = await get_json(s, env.gw.url + "/api/v1/credits", key)
        assert status == 200 and Decimal(cr["data"]["total_usage"]) == total
    print(
        f"\n[{env.url.split(':')[0]}] {N_REQUESTS} requests in {elapsed:.2f} s: {len(admitted)} admitted,"
        f" {len(refused)} refused (402); charged ${total} of ${limit} (worst cases {sorted(worst.values())})"
    )


# ---- streams cut by the client / by the upstream -------------------------------------------------


def words(n: int) -> Reply:
    return Reply(text=WORD * n, chunk_size=len(WORD), input_tokens=9, output_tokens=n)


TEXT_EVENTS_BEFORE = {"openai": 1, "anthropic": 3}  # role chunk | message_start, content_block_start, ping


def produced_tokens(up: str, rec: Received) -> int:
    """Text events the upstream wrote (each one token), from its own count of events sent."""
    return max(rec.chunks_sent - TEXT_EVENTS_BEFORE[up], 0)


def upstream_of(env: Env, up: str) -> OpenAIUpstream | AnthropicUpstream:
    return env.oa if up == "openai" else env.an


async def open_key(env: Env, limit: float = 1.0) -> tuple[str, str]:
    created = await env.gw.create_key("cuts", limit)
    return created["key"], created["data"]["hash"]


def expect_prompt(env: Env, up: str, api: str, model: str, upstream_input: int) -> int:
    """What a cut stream bills as prompt: the upstream's own count when it sent one before the cut
    (Anthropic's message_start), else the gateway's offline estimate."""
    if up == "anthropic":
        return upstream_input
    body = chat_body(api, model, stream=True, max_tokens=MAX_TOKENS)
    req = openai_fmt.parse_request(body) if api == "openai" else anthropic_fmt.parse_request(body)
    return tokens.count_request(req)


async def assert_released(env: Env, key: str, key_hash: str, s: aiohttp.ClientSession) -> KeyUsage:
    ledger = await env.settled(key_hash)
    assert ledger.reserved == ledger.held == 0 and ledger.open_holds == 0
    assert ledger.usage == ledger.settled
    status, me = await get_json(s, env.gw.url + "/api/v1/key", key)
    assert status == 200
    d = me["data"]
    assert Decimal(d["usage"]) == ledger.usage
    assert Decimal(d["limit_remaining"]) == Decimal(d["limit"]) - Decimal(d["usage"])
    return ledger


CUT_CASES = [(api, up) for api in ("openai", "anthropic") for up in ("openai", "anthropic")]


async def test_stream_cut_by_client_is_billed_for_what_was_produced(env: Env) -> None:
    key, key_hash = await open_key(env)
    async with aiohttp.ClientSession() as s:
        for api, up in CUT_CASES:
            model = MODELS[up]
            upstream = upstream_of(env, up)
            upstream.script(Fault(drip_interval=0.15, reply=words(200)))  # 30 s if nobody hangs up
            n_before = len(upstream.requests)
            body = chat_body(api, model, stream=True, max_tokens=MAX_TOKENS)
            got_text = 0
            async with asyncio.timeout(10):
                r = await s.post(env.gw.url + path(api), json=body, headers=auth(api, key))
                assert r.status == 200
                gen_id = r.headers["X-Generation-Id"]
                async for data in sse_events(r):
                    if isinstance(data, dict) and _text_of(data):
                        got_text += 1
                        if got_text == 3:
                            break
                r.close()  # hang up mid-stream
            rec = upstream.requests[n_before]
            await rec.wait_done(5)
            assert rec.disconnected and not rec.completed, "the upstream request was cancelled"
            ledger = await assert_released(env, key, key_hash, s)
            g = await check_record(s, env, key, gen_id)
            n = produced_tokens(up, rec)
            assert n >= got_text
            assert (g["status"], g["cancelled"], g["streamed"]) == ("cancelled", True, True), g
            assert g["tokens_completion"] == n, (g, rec.chunks_sent)
            assert g["tokens_prompt"] == expect_prompt(env, up, api, model, 9), g
            assert Decimal(g["total_cost"]) > 0
            assert ledger.usage > 0


async def test_stream_cut_by_upstream_is_billed_for_what_was_produced(env: Env) -> None:
    key, key_hash = await open_key(env)
    async with aiohttp.ClientSession() as s:
        for api, up in CUT_CASES:
            model = MODELS[up]
            upstream = upstream_of(env, up)
            cut = TEXT_EVENTS_BEFORE[up] + 5  # five text events, then the connection drops
            upstream.script(Fault(cut_after_chunks=cut, reply=words(50)))
            n_before = len(upstream.requests)
            before = (await env.usage(key_hash)).usage
            o = await chat(s, env.gw.url, key, api, model, stream=True, max_tokens=MAX_TOKENS)
            assert o.status == 200 and o.error is not None, "an in-band error tells the caller"
            assert o.header_id == o.body_id
            rec = upstream.requests[n_before]
            assert rec.aborted and rec.chunks_sent == cut
            ledger = await assert_released(env, key, key_hash, s)
            assert o.body_id
            g = await check_record(s, env, key, o.body_id)
            assert (g["status"], g["streamed"]) == ("error", True), g
            assert g["tokens_completion"] == 5, g
            assert g["tokens_prompt"] == expect_prompt(env, up, api, model, 9), g
            assert ledger.usage - before == Decimal(g["total_cost"]) > 0


async def test_generation_that_produced_nothing_costs_nothing(env: Env) -> None:
    key, key_hash = await open_key(env)
    async with aiohttp.ClientSession() as s:
        for api in ("openai", "anthropic"):
            for up in ("openai", "anthropic"):
                model = MODELS[up]
                upstream = upstream_of(env, up)
                for stream in (False, True):
                    # fails before any byte: an HTTP error, nothing recorded, nothing billed
                    upstream.script(Fault(status=500))
                    records = (await env.usage(key_hash)).generations
                    o = await chat(s, env.gw.url, key, api, model, stream=stream, max_tokens=MAX_TOKENS)
                    assert o.status == 502 and o.header_id is None, o
                    ledger = await assert_released(env, key, key_hash, s)
                    assert ledger.usage == 0 and ledger.generations == records
                # a stream that fails after its opening events but before any text: 0, if recorded
                upstream.script(Fault(stream_error_after=TEXT_EVENTS_BEFORE[up], reply=words(20)))
                o = await chat(s, env.gw.url, key, api, model, stream=True, max_tokens=MAX_TOKENS)
                assert o.status != 200 or o.error is not None, o
                ledger = await assert_released(env, key, key_hash, s)
                assert ledger.usage == 0, "nothing produced, nothing billed"
                if o.status == 200:
                    assert o.body_id
                    g = await check_record(s, env, key, o.body_id)
                    assert (g["status"], Decimal(g["total_cost"]), g["tokens_completion"]) == ("error", Decimal(0), 0)


def _text_of(data: dict[str, Any]) -> str:
    if data.get("type") == "content_block_delta":
        return str(data["delta"].get("text") or "")
    for c in data.get("choices") or []:
        if (c.get("delta") or {}).get("content"):
            return str(c["delta"]["content"])
    return ""

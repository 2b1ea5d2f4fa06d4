"""Per-key rate limits end to end, through the official SDKs, with the limits in process memory and
in Redis: 429s in each caller's own format with retry-after and OpenRouter's X-RateLimit-* headers,
a message naming the key's limit, nothing billed or held for a refused request, token reservations
settled to the real counts, and a key without limits never touching Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from support.clients import anthropic_client, call_anthropic, call_openai, openai_client
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from support.raw import get_json, wait_until
from support.redis_server import SHARED_URL, drop_prefix, free_port, private_redis, shared_client, unique_prefix
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply

from keeprouter.api.http import STATE
from keeprouter.store.base import KeyUsage

MODEL = "gpt-test"  # served by the OpenAI-format upstream
MSG = [{"role": "user", "content": "hi"}]


@pytest_asyncio.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def gw(
    request: pytest.FixtureRequest,
    openai_upstream: OpenAIUpstream,
    anthropic_upstream: AnthropicUpstream,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[RunningGateway]:
    extra: dict[str, Any] = {}
    prefix = unique_prefix()
    if request.param == "redis":
        await (await shared_client()).aclose()  # skipped without Redis
        extra["redis"] = SHARED_URL
        monkeypatch.setenv("KEEPROUTER_REDIS_PREFIX", prefix)
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path), **extra)
    async with run_gateway(cfg) as g:
        yield g
    if request.param == "redis":
        client = await shared_client()
        await drop_prefix(client, prefix)
        await client.aclose()


async def make_key(gw: RunningGateway, **fields: Any) -> tuple[str, str]:
    async with aiohttp.ClientSession() as s:
        async with s.post(
            gw.url + "/api/v1/keys", json={"name": "rl", **fields}, headers={"Authorization": f"Bearer {gw.admin_key}"}
        ) as r:
            assert r.status == 201, await r.text()
            data = await r.json()
    return data["key"], data["data"]["hash"]


async def usage(gw: RunningGateway, key_hash: str) -> KeyUsage:
    found = await gw.server.app[STATE].store.key_usage(key_hash)
    assert found is not None
    return found


def assert_our_429(headers: Any, limit: int, remaining: int, max_wait: float) -> None:
    assert headers["X-RateLimit-Limit"] == str(limit)
    assert headers["X-RateLimit-Remaining"] == str(remaining)
    wait = int(headers["retry-after"])
    assert 1 <= wait <= max_wait
    reset_ms = int(headers["X-RateLimit-Reset"])  # epoch milliseconds, as OpenRouter's
    assert time.time() * 1000 < reset_ms <= (time.time() + max_wait + 1) * 1000


async def test_rpm_limit_429_in_each_callers_format(gw: RunningGateway, openai_upstream: OpenAIUpstream) -> None:
    key, h = await make_key(gw, rpm_limit=3, limit=1)
    oa, an = openai_client(gw.url, key), anthropic_client(gw.url, key)
    await call_openai(oa, False, model=MODEL, messages=MSG, max_tokens=16)
    await call_openai(oa, True, model=MODEL, messages=MSG, max_tokens=16)
    await call_anthropic(an, False, model=MODEL, messages=MSG, max_tokens=16)
    served = len(openai_upstream.requests)
    assert served == 3

    with pytest.raises(openai.RateLimitError) as oe:
        await call_openai(oa, False, model=MODEL, messages=MSG, max_tokens=16)
    r = oe.value.response
    assert r.status_code == 429
    body = r.json()["error"]
    assert body["code"] == 429, body
    assert body["message"] == "rate limit exceeded: rpm_limit of 3 requests per minute for this key"
    assert_our_429(r.headers, 3, 0, 60)

    with pytest.raises(anthropic.RateLimitError) as ae:
        await call_anthropic(an, False, model=MODEL, messages=MSG, max_tokens=16)
    r = ae.value.response
    assert r.status_code == 429 and r.json()["type"] == "error"
    assert r.json()["error"] == {
        "type": "rate_limit_error",
        "message": "rate limit exceeded: rpm_limit of 3 requests per minute for this key",
    }
    assert_our_429(r.headers, 3, 0, 60)
    with pytest.raises(anthropic.RateLimitError):  # a stream is refused before it starts
        await call_anthropic(an, True, model=MODEL, messages=MSG, max_tokens=16)
    with pytest.raises(openai.RateLimitError):
        await call_openai(oa, True, model=MODEL, messages=MSG, max_tokens=16)

    assert len(openai_upstream.requests) == served, "a refused request reaches no upstream"
    await wait_until(lambda: _settled(gw, h, 3), 5.0)
    u = await usage(gw, h)
    assert (u.generations, u.open_holds, u.reserved) == (3, 0, Decimal(0)), "refusals are neither billed nor held"
    assert u.usage == u.settled
    await oa.close()
    await an.close()


async def _settled(gw: RunningGateway, h: str, n: int) -> bool:
    return (await usage(gw, h)).generations == n


async def test_tpm_reserves_the_worst_case_and_settles_to_the_real_count(
    gw: RunningGateway, openai_upstream: OpenAIUpstream
) -> None:
    key, h = await make_key(gw, tpm_limit=1000)
    oa = openai_client(gw.url, key)
    # A is in flight with 600 output tokens reserved (its real use: 12 + 7 tokens)
    openai_upstream.script(Fault(delay_first_byte=0.8, reply=Reply(input_tokens=12, output_tokens=7)))
    first = asyncio.ensure_future(call_openai(oa, False, model=MODEL, messages=MSG, max_tokens=600))
    await openai_upstream.wait_for_requests(1)
    with pytest.raises(openai.RateLimitError) as e:  # B's 600 more would overshoot while A is out
        await call_openai(oa, False, model=MODEL, messages=MSG, max_tokens=600)
    message = e.value.response.json()["error"]["message"]
    assert message.startswith("rate limit exceeded: tpm_limit of 1000 tokens per minute for this key")
    reserved = int(message.split("reserves ")[1].split(" ")[0])
    assert 600 < reserved < 650, "prompt estimate + max_tokens"
    h429 = e.value.response.headers
    assert h429["X-RateLimit-Limit"] == "1000" and 0 < int(h429["X-RateLimit-Remaining"]) < 400
    await first
    await wait_until(lambda: _settled(gw, h, 1), 5.0)

    # A settled to 19 real tokens: 19 + ~610 fits now, and then 38 + ~910 too
    await call_openai(oa, False, model=MODEL, messages=MSG, max_tokens=600)
    await wait_until(lambda: _settled(gw, h, 2), 5.0)
    await call_openai(oa, True, model=MODEL, messages=MSG, max_tokens=900)
    await wait_until(lambda: _settled(gw, h, 3), 5.0)
    assert len(openai_upstream.requests) == 3

    # bigger than the limit alone: refused for good, and the SDKs are told not to retry
    retrying = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=2, timeout=20)
    with pytest.raises(openai.RateLimitError) as e:
        await retrying.chat.completions.create(model=MODEL, messages=MSG, max_tokens=2000)  # type: ignore[arg-type]
    r = e.value.response
    assert "more than the tpm_limit of 1000 tokens per minute" in r.json()["error"]["message"]
    assert r.headers["x-should-retry"] == "false" and "retry-after" not in r.headers
    assert len(openai_upstream.requests) == 3
    u = await usage(gw, h)
    assert (u.generations, u.open_holds) == (3, 0)
    await oa.close()
    await retrying.close()


async def test_an_upstream_429_is_not_ours(gw: RunningGateway, openai_upstream: OpenAIUpstream) -> None:
    key, _ = await make_key(gw, rpm_limit=100)
    openai_upstream.script(Fault(status=429, headers={"retry-after": "7"}))
    async with aiohttp.ClientSession() as s:
        body = {"model": MODEL, "messages": MSG, "max_tokens": 8}
        async with s.post(gw.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}) as r:
            assert r.status == 429
            assert "X-RateLimit-Limit" not in r.headers
            assert "rpm_limit" not in (await r.json())["error"]["message"]


async def test_a_key_without_limits_never_touches_redis(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Any
) -> None:
    async with private_redis() as server:
        cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path), redis=server.url)
        probe = Redis.from_url(server.url)
        try:
            async with run_gateway(cfg) as g:
                plain, _ = await make_key(g)
                limited, _ = await make_key(g, rpm_limit=50)
                oa = openai_client(g.url, plain)
                before = (await probe.info("stats"))["total_commands_processed"]
                for stream in (False, True) * 5:
                    await call_openai(oa, stream, model=MODEL, messages=MSG, max_tokens=8)
                after = (await probe.info("stats"))["total_commands_processed"]
                assert after - before == 1, "only our own INFO: no round trip for an unlimited key"
                await oa.close()
                oa = openai_client(g.url, limited)
                evalsha = (await probe.info("commandstats")).get("cmdstat_evalsha", {}).get("calls", 0)
                await call_openai(oa, False, model=MODEL, messages=MSG, max_tokens=8)
                await asyncio.sleep(0.2)  # its settle runs after the answer
                calls = (await probe.info("commandstats"))["cmdstat_evalsha"]["calls"] - evalsha
                assert calls == 2, "a limited key: one EVALSHA to admit, one to settle"
                await oa.close()
        finally:
            await probe.aclose()


async def test_unreachable_redis_keeps_serving_with_local_limits(
    openai_upstream: OpenAIUpstream,
    anthropic_upstream: AnthropicUpstream,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path), redis=redis_url)
    async with run_gateway(cfg) as g:
        key, _ = await make_key(g, rpm_limit=2)
        plain, _ = await make_key(g)
        oa = openai_client(g.url, key)
        await call_openai(oa, False, model=MODEL, messages=MSG, max_tokens=8)
        await call_openai(oa, True, model=MODEL, messages=MSG, max_tokens=8)
        with pytest.raises(openai.RateLimitError):
            await call_openai(oa, False, model=MODEL, messages=MSG, max_tokens=8)
        async with aiohttp.ClientSession() as s:
            status, _ = await get_json(s, g.url + "/api/v1/key", plain)
            assert status == 200
        await oa.close()
    warned = [r for r in caplog.records if r.name == "keeprouter.limits" and r.levelno == logging.WARNING]
    assert len(warned) == 1

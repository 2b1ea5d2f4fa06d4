"""Reasoning state issuers shared through Redis (the real server, a private key prefix): what one
instance records another learns before fitting; Redis away, each instance keeps its own."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from redis.asyncio import Redis
from support.clock import Clock
from support.redis_server import unique_prefix

from keeprouter.config import EndpointConfig, Pricing, Timeouts
from keeprouter.formats.canonical import ChatRequest, Message, TextPart, ThinkingPart, ToolCallPart
from keeprouter.routing.fit import fit, issuer_of
from keeprouter.routing.shared_issuers import TTL, SharedIssuers, digest, unknown_states

pytestmark = pytest.mark.redis


def endpoint(provider: str) -> EndpointConfig:
    price = Pricing(Decimal(1), Decimal(1))
    return EndpointConfig(provider, "m", price, frozenset({"reasoning"}), 1000, None, Timeouts())


def loop(*thinking: ThinkingPart) -> ChatRequest:
    assistant = Message(role="assistant", content=[*thinking, ToolCallPart(id="c", name="f", arguments="{}")])
    return ChatRequest(model="x", messages=[Message(role="user", content=[TextPart(text="q")]), assistant])


async def test_what_one_instance_records_another_learns_before_fitting(shared: tuple[Redis, str]) -> None:
    client, prefix = shared
    one, two = SharedIssuers(client, prefix=prefix), SharedIssuers(client, prefix=prefix)
    an1, an2 = endpoint("an1"), endpoint("an2")
    one.record("SIG-1", an1)
    await one.flushed()
    signed = ThinkingPart(text="t", signature="SIG-1", origin="anthropic")
    req = loop(signed, ThinkingPart(text="never recorded"))
    assert unknown_states(two, req) == ["SIG-1", "never recorded"]
    await two.learn(req)
    assert two.issuer("SIG-1") == issuer_of(an1) and two.issuer("never recorded") is None
    assert fit(req, an2, two).messages[1].content[0] == ThinkingPart(text="never recorded")  # an1's withheld
    assert fit(req, an1, two).messages[1].content[0] == signed
    ttl = await client.ttl(prefix + digest("SIG-1"))
    assert TTL - 5 < ttl <= TTL  # Redis forgets it on its own
    assert len([k async for k in client.scan_iter(match=prefix + "*")]) == 1  # learning writes nothing back


async def test_records_made_together_go_in_one_pipeline_and_all_arrive(shared: tuple[Redis, str]) -> None:
    client, prefix = shared
    one, two = SharedIssuers(client, prefix=prefix), SharedIssuers(client, prefix=prefix)
    for i in range(50):
        one.record(f"S{i}", endpoint(f"p{i % 3}"))
    await one.flushed()
    req = loop(*(ThinkingPart(text="", signature=f"S{i}", origin="anthropic") for i in range(50)))
    await two.learn(req)
    assert [two.issuer(f"S{i}") for i in range(50)] == [f"p{i % 3}|m" for i in range(50)]


async def test_a_request_without_reasoning_state_asks_redis_nothing() -> None:
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)  # any call would fail and warn
    issuers = SharedIssuers(dead, prefix=unique_prefix())
    try:
        await issuers.learn(ChatRequest(model="x", messages=[Message(role="user", content=[TextPart(text="q")])]))
        assert issuers.up
    finally:
        await dead.aclose()


async def test_redis_gone_keeps_each_instance_own_memory_then_shares_again(caplog: pytest.LogCaptureFixture) -> None:
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)  # nothing listens on port 1
    clock = Clock()
    issuers = SharedIssuers(dead, prefix=unique_prefix(), clock=clock)
    try:
        with caplog.at_level(logging.WARNING, "keeprouter.routing"):
            issuers.record("SIG", endpoint("an1"))
            await issuers.flushed()
            await issuers.learn(loop(ThinkingPart(text="", signature="OTHER", origin="anthropic")))
            issuers.record("SIG-2", endpoint("an1"))  # while down: not even tried
            await issuers.flushed()
        assert issuers.issuer("SIG") == "an1|m" and issuers.issuer("SIG-2") == "an1|m"
        assert [r.message.count("redis does not answer") for r in caplog.records] == [1]  # one warning
        assert not issuers.up
        clock.now += 10
        assert issuers.up  # asked again after RETRY_AFTER
    finally:
        await dead.aclose()

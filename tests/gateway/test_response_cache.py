"""The response cache's key and its choice of requests (gateway.response_cache), and its two
backends (gateway.cache_backends): Redis bounded by its write script against the real server, a
Redis that does not answer being a miss, and the database's sweep."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from multidict import CIMultiDict
from redis.asyncio import Redis
from support.redis_server import drop_prefix, shared_client, unique_prefix

from keeprouter.config import ModelConfig, parse_config
from keeprouter.formats.canonical import ChatRequest, Message, TextPart, Tool
from keeprouter.gateway.cache_backends import DatabaseCache, RedisCache
from keeprouter.gateway.metering import Caller, Metering
from keeprouter.gateway.response_cache import ResponseCache, owner_of, request_key
from keeprouter.store.base import KeyRecord

RAW: dict[str, Any] = {
    "providers": {"p": {"api": "openai", "base_url": "http://127.0.0.1:1", "api_key": "k"}},
    "models": {
        "m": {"endpoints": [{"provider": "p", "model": "up", "pricing": {"input": 1, "output": 1}}]},
        "out": {
            "endpoints": [{"provider": "p", "model": "up2", "pricing": {"input": 1, "output": 1}}],
            "response_cache": {"ttl": 0},
        },
    },
    "response_cache": {"ttl": 120},
}
CONFIG = parse_config(RAW, env={})


@dataclass
class Route:
    models: list[ModelConfig]
    body: Mapping[str, Any] = field(default_factory=dict)


def key(**owner: str) -> KeyRecord:
    return KeyRecord(hash="h" + "".join(owner.values()), name="k", label="sk-kr-...", created_at=0.0, **owner)  # type: ignore[arg-type]


def request(**changes: Any) -> ChatRequest:
    req = ChatRequest(
        model="m",
        messages=[Message(role="user", content=[TextPart(text="Hi")])],
        tools=[Tool(name="f", parameters={"type": "object", "properties": {"a": {"type": "string"}, "b": {}}})],
        temperature=0.5,
    )
    for k, v in changes.items():
        setattr(req, k, v)
    return req


ROUTE = Route([CONFIG.models["m"]])
NO_OWNER = SimpleNamespace(health=None, issuers=None, counting=None)  # what `note` never touches


def test_the_key_ignores_dict_order_and_streaming_but_not_sampling_or_tools() -> None:
    k = key()
    base = request_key(k, request(), ROUTE)
    reordered = [Tool(name="f", parameters={"properties": {"b": {}, "a": {"type": "string"}}, "type": "object"})]
    assert request_key(k, request(tools=reordered), ROUTE) == base
    assert request_key(k, request(stream=True, include_usage=True), ROUTE) == base
    assert request_key(k, request(source="anthropic"), ROUTE) == base  # nothing kept verbatim
    assert request_key(k, request(source="anthropic", extra={"x": 1}), ROUTE) != request_key(
        k, request(source="openai", extra={"x": 1}), ROUTE
    )
    assert request_key(k, request(temperature=0.6), ROUTE) != base
    assert request_key(k, request(tools=[]), ROUTE) != base
    assert request_key(k, request(max_tokens=10), ROUTE) != base
    assert request_key(k, request(), Route(ROUTE.models, {"provider": {"only": ["p"]}})) != base


def test_owners_are_the_user_else_the_team_else_the_key() -> None:
    assert owner_of(key(user_id="u1", team_id="t1")) == "u:u1"
    assert owner_of(key(team_id="t1")) == "t:t1"
    assert owner_of(key()) == "k:h"
    assert request_key(key(user_id="u1"), request(), ROUTE) != request_key(key(user_id="u2"), request(), ROUTE)


def meter(headers: Mapping[str, str], model: str = "m") -> Metering:
    caller = Caller("openai", key(), headers)
    return Metering("gen-1", caller, request(model=model), 10, None, 0.0)


@pytest.mark.parametrize(
    ("headers", "model", "ttl"),
    [
        ({}, "m", 120.0),  # the global TTL
        ({"Cache-Control": "no-store"}, "m", None),
        ({"cache-control": "private, NO-STORE"}, "m", None),
        ({"X-KeepRouter-Cache": "false"}, "m", None),
        ({}, "out", None),  # the model keeps out
        ({"X-KeepRouter-Cache": "true"}, "out", None),  # even when asked
    ],
)
def test_which_requests_use_the_cache(headers: dict[str, str], model: str, ttl: float | None) -> None:
    cache = ResponseCache(CONFIG, DatabaseCache(None, 10), NO_OWNER)  # type: ignore[arg-type]
    note = cache.note(meter(CIMultiDict(headers)), Route([CONFIG.models[model]]))  # as aiohttp's
    assert (note.ttl if note is not None else None) == ttl


def test_a_request_opts_in_on_a_model_the_cache_does_not_cover() -> None:
    raw = {**RAW, "response_cache": None}
    raw["models"] = {**RAW["models"], "m2": {**RAW["models"]["m"], "response_cache": {"ttl": 5}}}
    config = parse_config(raw, env={})
    cache = ResponseCache(config, DatabaseCache(None, 10), NO_OWNER)  # type: ignore[arg-type]
    route = Route([config.models["m"]])
    assert cache.note(meter({}), route) is None
    asked = cache.note(meter({"X-KeepRouter-Cache": "true"}), route)
    assert asked is not None and asked.ttl == 300.0


# ---- backends -----------------------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_keeps_at_most_max_entries_evicting_the_soonest_to_expire() -> None:
    client = await shared_client()
    prefix = unique_prefix()
    try:
        cache = RedisCache(client, 2, prefix=prefix)
        await cache.put("a", b"A", 10)
        await cache.put("b", b"B", 30)
        await cache.put("c", b"C", 20)
        assert (await cache.get("a"), await cache.get("b"), await cache.get("c")) == (None, b"B", b"C")
        ttl = await client.pttl(prefix + "b")
        assert 25_000 < ttl <= 30_000
        assert await client.zcard(prefix + "index") == 2
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()


async def test_a_redis_that_does_not_answer_is_a_miss() -> None:
    client = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    now = [0.0]
    cache = RedisCache(client, 10, clock=lambda: now[0])
    try:
        await cache.put("a", b"A", 10)  # lost, no error
        assert await cache.get("a") is None
        now[0] = 1.0  # within RETRY_AFTER: Redis is not asked at all
        assert await cache.get("a") is None
    finally:
        await client.aclose()


class Rows:
    """The database side, as a dict (the real stores are tested in tests/store)."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, float]] = {}

    async def get_cached_answer(self, key: str, now: float) -> str | None:
        row = self.rows.get(key)
        return row[0] if row is not None and row[1] > now else None

    async def put_cached_answer(self, key: str, answer: str, expires_at: float) -> None:
        self.rows[key] = (answer, expires_at)

    async def sweep_cached_answers(self, now: float, keep: int) -> int:
        live = sorted((r for r in self.rows.items() if r[1][1] > now), key=lambda r: -r[1][1])[:keep]
        gone = len(self.rows) - len(live)
        self.rows = dict(live)
        return gone


async def test_the_database_backend_expires_and_sweeps_to_its_bound() -> None:
    rows, now = Rows(), [time.time()]
    cache = DatabaseCache(rows, 1, clock=lambda: now[0])
    await cache.put("a", b"A", 10)
    await cache.put("b", b"B", 20)
    assert await cache.get("a") == "A"
    assert await cache.sweep() == 1 and await cache.get("a") is None and await cache.get("b") == "B"
    now[0] += 21
    assert await cache.get("b") is None

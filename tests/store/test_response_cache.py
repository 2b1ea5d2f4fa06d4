"""The response cache's table on both backends: an answer read back until it expires, replaced by a
newer one, and swept: the expired rows, then the soonest to expire beyond the bound; a generation
answered from the cache is recorded as cached."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from keeprouter.store.base import GenerationRecord, KeyRecord, Store
from store.backends import T0


async def test_an_answer_is_read_back_until_it_expires(store: Store) -> None:
    await store.put_cached_answer("k:1:abc", '{"a":1}', 100.0)
    assert await store.get_cached_answer("k:1:abc", 99.0) == '{"a":1}'
    assert await store.get_cached_answer("k:1:abc", 100.0) is None
    assert await store.get_cached_answer("k:2:abc", 50.0) is None
    await store.put_cached_answer("k:1:abc", '{"a":2}', 200.0)  # the same request answered again
    assert await store.get_cached_answer("k:1:abc", 150.0) == '{"a":2}'


async def test_a_sweep_drops_the_expired_then_the_soonest_to_expire_beyond_the_bound(store: Store) -> None:
    for i, expires in enumerate([50.0, 300.0, 200.0, 400.0, 250.0]):
        await store.put_cached_answer(f"k{i}", f'"{i}"', expires)
    assert await store.sweep_cached_answers(100.0, 3) == 2  # k0 expired, k2 the soonest of the rest
    kept = [k for k in ("k0", "k1", "k2", "k3", "k4") if await store.get_cached_answer(k, 100.0) is not None]
    assert kept == ["k1", "k3", "k4"]
    assert await store.sweep_cached_answers(100.0, 3) == 0


async def test_a_cached_generation_is_recorded_as_cached(store: Store) -> None:
    await store.insert_key(KeyRecord(hash="hash-k", name="k", label="sk-kr-v1-k", created_at=T0))
    assert await store.reserve("hash-k", "hold-1", Decimal(0), T0 + 60, T0)
    gen = GenerationRecord(id="gen-1", key_hash="hash-k", model="m", provider="p", upstream_model="up", api="openai",
                           created_at=T0, cached=True, tokens_prompt=10)  # fmt: skip
    assert await store.settle("hold-1", gen, T0)
    got = await store.get_generation("gen-1")
    assert got is not None and got.cached is True and got.tokens_prompt == 10


async def test_cache_usage_per_model_and_key_leaves_out_response_cache_hits(store: Store) -> None:
    for k in ("hash-a", "hash-b"):
        await store.insert_key(KeyRecord(hash=k, name=k, label="sk-kr-v1-" + k, created_at=T0))
    day = T0
    gens = [  # (id, key, model, prompt, cached, discount, cached generation, when)
        ("g1", "hash-a", "m1", 1000, 900, "0.0027", False, day),
        ("g2", "hash-a", "m1", 1000, 0, "-0.00075", False, day),
        ("g3", "hash-b", "m1", 500, 400, "0.0012", False, day),
        ("g4", "hash-a", "m2", 100, 0, "0", False, day),
        ("g5", "hash-a", "m1", 1000, 900, "0", True, day),  # a response-cache hit: left out
        ("g6", "hash-a", "m1", 1000, 900, "0.0027", False, day - 40 * 86_400),  # before the window
    ]
    for i, (gid, k, model, prompt, cached, discount, hit, at) in enumerate(gens):
        assert await store.reserve(k, f"h{i}", Decimal(0), at + 60, at)
        gen = GenerationRecord(id=gid, key_hash=k, model=model, provider="p", upstream_model="up", api="openai",
                               created_at=at, tokens_prompt=prompt, tokens_cached=cached,
                               cache_discount=Decimal(discount), cached=hit)  # fmt: skip
        assert await store.settle(f"h{i}", gen, at)
    today = dt.datetime.fromtimestamp(T0, dt.UTC).date()
    start = today - dt.timedelta(days=29)
    rows = {(r.model, r.key_hash): r for r in await store.cache_usage(start, today)}
    assert set(rows) == {("m1", "hash-a"), ("m1", "hash-b"), ("m2", "hash-a")}
    a1 = rows["m1", "hash-a"]
    assert (a1.requests, a1.prompt_tokens, a1.cached_tokens, a1.cache_discount) == (2, 2000, 900, Decimal("0.00195"))
    only_b = await store.cache_usage(start, today, key_hash="hash-b")
    assert [(r.model, r.cached_tokens) for r in only_b] == [("m1", 400)]
    only_m2 = await store.cache_usage(start, today, model="m2")
    assert [(r.key_hash, r.prompt_tokens) for r in only_m2] == [("hash-a", 100)]

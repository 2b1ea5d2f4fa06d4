"""The response cache's table on both backends: an answer read back until it expires, replaced by a
newer one, and swept: the expired rows, then the soonest to expire beyond the bound; a generation
answered from the cache is recorded as cached."""

from __future__ import annotations

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

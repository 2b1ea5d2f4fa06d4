"""The rate-limit semantics of keeprouter.limits.base, run against both implementations (process
memory and Redis) with an injected clock: exact sliding windows, token reservations settled to the
real count, refusals that say when to come back, and no overshoot under concurrency."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from store.backends import Clock
from support.redis_server import drop_prefix, shared_client, unique_prefix

from keeprouter.limits.base import WINDOW, Limits, RateLimiter, Refusal, Ticket
from keeprouter.limits.redis_limiter import POOL_SIZE, RedisLimiter

KEY = "k" * 64
_ids = itertools.count()


async def admit(lim: RateLimiter, limits: Limits, tokens: int = 1, key: str = KEY) -> Ticket | Refusal:
    return await lim.admit(f"gen-{next(_ids)}", key, limits, tokens)


def refused(r: Ticket | Refusal) -> Refusal:
    assert isinstance(r, Refusal), r
    return r


async def test_rpm_admits_n_per_sliding_window_and_says_when_a_slot_frees(limiter: RateLimiter, clock: Clock) -> None:
    rpm = Limits(rpm=3, tpm=None)
    for _ in range(3):
        assert isinstance(await admit(limiter, rpm), Ticket)
        clock.advance(10)  # admitted at 0, 10, 20
    r = refused(await admit(limiter, rpm))
    assert (r.limit, r.value, r.remaining) == ("rpm_limit", 3, 0)
    assert r.retry_after == pytest.approx(30, abs=0.002)  # the first entry leaves at 60; now is 30
    assert r.reset_ms == pytest.approx((clock.now + 30) * 1000, abs=2)
    clock.advance(29.9)
    assert refused(await admit(limiter, rpm)).retry_after == pytest.approx(0.1, abs=0.002)
    clock.advance(0.1)  # exactly 60 s after the first: it no longer counts
    assert isinstance(await admit(limiter, rpm), Ticket)
    r = refused(await admit(limiter, rpm))
    assert r.retry_after == pytest.approx(10, abs=0.002), "next to leave: the one admitted at 10"


async def test_no_60s_window_ever_holds_more_than_rpm(limiter: RateLimiter, clock: Clock) -> None:
    """A request every 0.7 s for 3 minutes of clock: every 60 s window holds at most 5 admissions."""
    admitted: list[float] = []
    for _ in range(260):
        if isinstance(await admit(limiter, Limits(rpm=5, tpm=None)), Ticket):
            admitted.append(clock.now)
        clock.advance(0.7)
    assert len(admitted) >= 15
    for i, t in enumerate(admitted):
        assert sum(1 for u in admitted[i:] if u < t + WINDOW) <= 5


async def test_tpm_reserves_then_settles_to_the_real_count(limiter: RateLimiter, clock: Clock) -> None:
    tpm = Limits(rpm=None, tpm=100)
    first = await admit(limiter, tpm, 60)
    assert isinstance(first, Ticket)
    r = refused(await admit(limiter, tpm, 50))  # 60 reserved + 50 > 100
    assert (r.limit, r.value, r.remaining, r.tokens) == ("tpm_limit", 100, 40, 50)
    assert r.retry_after == pytest.approx(WINDOW, abs=0.002)
    await limiter.settle(first, 20)  # it really used 20: the rest comes back at once
    assert isinstance(await admit(limiter, tpm, 50), Ticket)  # 20 + 50
    r = refused(await admit(limiter, tpm, 40))  # 70 + 40 > 100
    assert r.remaining == 30
    clock.advance(WINDOW)
    assert isinstance(await admit(limiter, tpm, 100), Ticket), "the window emptied"


async def test_settled_tokens_above_the_reservation_count_too(limiter: RateLimiter, clock: Clock) -> None:
    tpm = Limits(rpm=None, tpm=100)
    t = await admit(limiter, tpm, 10)
    assert isinstance(t, Ticket)
    await limiter.settle(t, 95)  # the upstream counted more than the estimate
    r = refused(await admit(limiter, tpm, 10))
    assert r.remaining == 5
    await limiter.settle(t, 95)  # settling again changes nothing
    assert refused(await admit(limiter, tpm, 10)).remaining == 5


async def test_tpm_wait_is_until_enough_old_tokens_leave(limiter: RateLimiter, clock: Clock) -> None:
    tpm = Limits(rpm=None, tpm=100)
    for tokens in (30, 30, 30):  # at 0, 5, 10
        assert isinstance(await admit(limiter, tpm, tokens), Ticket)
        clock.advance(5)
    r = refused(await admit(limiter, tpm, 50))  # 90 + 50: two entries (60 tokens) must leave
    assert r.retry_after == pytest.approx(5 + WINDOW - 15, abs=0.002)
    clock.advance(r.retry_after or 0)
    assert isinstance(await admit(limiter, tpm, 50), Ticket)


async def test_a_reservation_bigger_than_tpm_is_refused_for_good(limiter: RateLimiter) -> None:
    r = refused(await admit(limiter, Limits(rpm=10, tpm=100), 101))
    assert (r.limit, r.retry_after, r.tokens) == ("tpm_limit", None, 101)
    assert isinstance(await admit(limiter, Limits(rpm=10, tpm=100), 100), Ticket), "it left nothing behind"


async def test_over_both_limits_waits_for_both(limiter: RateLimiter, clock: Clock) -> None:
    both = Limits(rpm=2, tpm=100)
    assert isinstance(await admit(limiter, both, 90), Ticket)  # at 0
    clock.advance(20)
    assert isinstance(await admit(limiter, both, 5), Ticket)  # at 20
    clock.advance(20)
    r = refused(await admit(limiter, both, 50))  # rpm frees at 60, the 90 tokens too: 20 s
    assert r.limit == "rpm_limit" and r.retry_after == pytest.approx(20, abs=0.002)
    clock.advance(20)
    assert isinstance(await admit(limiter, both, 50), Ticket)


async def test_release_gives_the_slot_and_tokens_back(limiter: RateLimiter) -> None:
    one = Limits(rpm=1, tpm=10)
    t = await admit(limiter, one, 10)
    assert isinstance(t, Ticket)
    assert isinstance(await admit(limiter, one, 1), Refusal)
    await limiter.release(t)
    await limiter.release(t)  # twice is harmless
    assert isinstance(await admit(limiter, one, 10), Ticket)


async def test_admitting_the_same_ticket_twice_counts_once(limiter: RateLimiter) -> None:
    """A step retried after a lost reply (redis-py retries once on a dead connection)."""
    two = Limits(rpm=2, tpm=None)
    assert isinstance(await limiter.admit("gen-same", KEY, two, 1), Ticket)
    assert isinstance(await limiter.admit("gen-same", KEY, two, 1), Ticket)
    assert isinstance(await admit(limiter, two), Ticket)
    assert isinstance(await admit(limiter, two), Refusal)


async def test_keys_are_counted_apart(limiter: RateLimiter) -> None:
    one = Limits(rpm=1, tpm=None)
    assert isinstance(await admit(limiter, one, key="a" * 64), Ticket)
    assert isinstance(await admit(limiter, one, key="b" * 64), Ticket)
    assert isinstance(await admit(limiter, one, key="a" * 64), Refusal)


async def test_a_settle_after_the_window_changes_nothing(limiter: RateLimiter, clock: Clock) -> None:
    tpm = Limits(rpm=None, tpm=100)
    t = await admit(limiter, tpm, 10)
    assert isinstance(t, Ticket)
    clock.advance(WINDOW + 1)
    assert isinstance(await admit(limiter, tpm, 100), Ticket)
    await limiter.settle(t, 80)  # a long stream ends after its entry left the window
    assert refused(await admit(limiter, tpm, 1)).remaining == 0, "still exactly the 100 of the second"


async def warm(limiter: RateLimiter) -> None:
    """Open the Redis pool's connections one after another, as a gateway that has served traffic
    has them. The property under test is the scripts' atomicity; 64 connects begun at once on a
    coverage-slowed loop on a loaded CI machine once outlasted the 0.5 s connect timeout."""
    if isinstance(limiter, RedisLimiter):
        pool = limiter.client.connection_pool
        held = [await pool.get_connection() for _ in range(POOL_SIZE)]  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        for conn in held:
            await pool.release(conn)


async def test_many_concurrent_admissions_never_exceed_the_limits(limiter: RateLimiter) -> None:
    # Bursts about twice the Redis pool (64): they queue for connections, each within the pool's 1 s
    # wait even on a loaded CI machine (bursts of 300 and 400 once outwaited it there).
    await warm(limiter)
    results = await asyncio.gather(*(admit(limiter, Limits(rpm=50, tpm=None)) for _ in range(120)))
    assert sum(isinstance(r, Ticket) for r in results) == 50
    results = await asyncio.gather(*(admit(limiter, Limits(rpm=None, tpm=400), 7, "t" * 64) for _ in range(130)))
    assert sum(isinstance(r, Ticket) for r in results) == 400 // 7


@pytest.mark.redis
async def test_redis_uses_its_own_clock_when_none_is_injected() -> None:
    client = await shared_client()
    prefix = unique_prefix()
    try:
        lim = RedisLimiter(client, prefix=prefix)
        await lim.start()
        assert isinstance(await admit(lim, Limits(rpm=1, tpm=None)), Ticket)
        r = refused(await admit(lim, Limits(rpm=1, tpm=None)))
        assert 59 < (r.retry_after or 0) <= 60
        t_redis, _ = await client.time()
        assert abs(r.now - t_redis) < 2
        assert abs(r.reset_ms / 1000 - (t_redis + 60)) < 2
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()


async def test_long_logs_expire_and_are_walked_page_by_page(limiter: RateLimiter, clock: Clock) -> None:
    """More entries than one page of the Redis script (500) in one window."""
    tpm = Limits(rpm=None, tpm=1200)
    for _ in range(1200):
        assert isinstance(await admit(limiter, tpm, 1), Ticket)
        clock.advance(0.01)  # admitted over 12 s
    r = refused(await admit(limiter, tpm, 700))  # the 700 oldest must leave: the 700th left at 6.99 s
    assert r.retry_after == pytest.approx(6.99 + WINDOW - 12, abs=0.01)
    clock.advance(WINDOW)
    assert isinstance(await admit(limiter, tpm, 1200), Ticket), "every old entry expired with its tokens"

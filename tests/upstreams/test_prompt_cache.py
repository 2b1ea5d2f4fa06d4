"""The provider-side prompt-cache emulator: explicit breakpoints (Anthropic), automatic prefix
caching (OpenAI format), TTLs, minimum length, the breakpoint rules, and the usage it reports."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from upstreams.anthropic_server import AnthropicUpstream
from upstreams.prompt_cache import LONG, SHORT, AnthropicCache, CacheRejected, PrefixCache, read_share

EPH = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}
BIG = "x" * 8000  # ~2,000 tokens


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def body(*turns: str, system_cc: dict[str, Any] | None = EPH, last_cc: dict[str, Any] | None = EPH) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = []
    for i, t in enumerate(turns):
        block: dict[str, Any] = {"type": "text", "text": t}
        if i == len(turns) - 1 and last_cc:
            block["cache_control"] = last_cc
        msgs.append({"role": "user" if i % 2 == 0 else "assistant", "content": [block]})
    system: dict[str, Any] = {"type": "text", "text": BIG}
    if system_cc:
        system["cache_control"] = system_cc
    return {"system": [system], "messages": msgs}


def test_anthropic_writes_then_reads_the_growing_conversation() -> None:
    clock = Clock()
    c = AnthropicCache(clock=clock)
    first = c.account(body("q1"))
    assert first.read == 0 and first.write_5m == first.total - first.uncached and first.uncached == 0
    second = c.account(body("q1", "a1", "q2"))
    assert second.read == first.total  # the whole previous prompt
    assert second.write_5m == second.total - first.total and second.uncached == 0
    assert read_share(c.history) > 0.45


def test_anthropic_entries_expire_after_their_ttl_and_a_read_refreshes_them() -> None:
    clock = Clock()
    c = AnthropicCache(clock=clock)
    c.account(body("q1", last_cc=None))
    clock.now += SHORT - 1
    assert c.account(body("q1", last_cc=None)).read > 0  # read at 299 s: alive again for 300 s
    clock.now += SHORT - 1
    assert c.account(body("q1", last_cc=None)).read > 0
    clock.now += SHORT + 1
    assert c.account(body("q1", last_cc=None)).read == 0
    hour = AnthropicCache(clock=clock)
    w = hour.account(body("q1", system_cc=HOUR, last_cc=None))
    assert w.write_1h > 0 and w.write_5m == 0
    clock.now += LONG - 1
    assert hour.account(body("q1", system_cc=HOUR, last_cc=None)).read == w.write_1h


def test_anthropic_split_by_ttl_and_minimum_length() -> None:
    c = AnthropicCache()
    counts = c.account(body("q" * 8000, system_cc=HOUR, last_cc=EPH))
    assert counts.write_1h > 0 and counts.write_5m > 0 and counts.uncached == 0
    tiny = AnthropicCache().account(
        {"system": [{"type": "text", "text": "short", "cache_control": EPH}], "messages": []}
    )
    assert tiny.read == tiny.write_5m == 0 and tiny.uncached == tiny.total
    none = AnthropicCache().account(body("q", system_cc=None, last_cc=None))
    assert none.uncached == none.total  # no breakpoint, no caching


def test_anthropic_rules_are_a_400() -> None:
    five = {"system": [{"type": "text", "text": str(i), "cache_control": EPH} for i in range(5)], "messages": []}
    with pytest.raises(CacheRejected, match="maximum of 4"):
        AnthropicCache().account(five)
    with pytest.raises(CacheRejected, match="1h"):
        AnthropicCache().account(body("q", system_cc=EPH, last_cc=HOUR))


def test_prefix_cache_reads_in_128_token_steps_over_1024_scoped_by_cache_key() -> None:
    c = PrefixCache()
    msgs = [{"role": "system", "content": BIG}, {"role": "user", "content": "q1"}]
    assert c.account({"messages": msgs}).read == 0
    again = c.account({"messages": [*msgs, {"role": "assistant", "content": "a"}, {"role": "user", "content": "q2"}]})
    assert again.read >= 1024 and again.read % 128 == 0 and again.write_5m == 0
    assert c.account({"messages": msgs, "prompt_cache_key": "other"}).read == 0
    assert PrefixCache().account({"messages": [{"role": "user", "content": "short"}]}).read == 0


async def test_the_upstream_reports_the_emulated_usage() -> None:
    async with AnthropicUpstream() as up:
        up.prompt_cache = AnthropicCache()
        headers = {"x-api-key": up.DEFAULT_KEY, "anthropic-version": "2023-06-01"}
        async with aiohttp.ClientSession() as s:
            for expect_read in (False, True):
                b = {"model": "m", "max_tokens": 5, **body("q1", system_cc=HOUR, last_cc=None)}
                async with s.post(up.url + "/v1/messages", json=b, headers=headers) as r:
                    usage = (await r.json())["usage"]
                assert (usage["cache_read_input_tokens"] > 0) is expect_read
                assert (usage["cache_creation"]["ephemeral_1h_input_tokens"] > 2000) is not expect_read
            five = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
                {"type": "text", "text": str(i), "cache_control": EPH} for i in range(5)]}]}  # fmt: skip
            async with s.post(up.url + "/v1/messages", json=five, headers=headers) as r:
                assert r.status == 400 and "maximum of 4" in (await r.json())["error"]["message"]

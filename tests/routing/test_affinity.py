"""Conversation affinity, the pure parts: naming a conversation, its TTL, and the selection rule
over plan()'s candidates (one conversation stays; new ones are still balanced; a failure moves it)."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal
from typing import Any

from keeprouter.config import EndpointConfig, ModelConfig, Pricing, Timeouts
from keeprouter.formats.canonical import ChatRequest, ImagePart, Message, TextPart, ToolCallPart, ToolResultPart
from keeprouter.routing.affinity import (
    LONG_TTL,
    SHORT_TTL,
    MemoryAffinity,
    Sticky,
    affinity_ttl,
    conversation,
    prefer,
)
from keeprouter.routing.select import Candidate, parse_prefs, plan


def chat(
    *turns: str, system: str = "You are terse.", model: str = "m", source: Any = "openai", **kw: Any
) -> ChatRequest:
    msgs = [
        Message(role="user" if i % 2 == 0 else "assistant", content=[TextPart(text=t)]) for i, t in enumerate(turns)
    ]
    return ChatRequest(
        model=model, messages=msgs, system=[TextPart(text=system)] if system else [], source=source, **kw
    )


def key(r: ChatRequest, headers: dict[str, str] | None = None, session_id: Any = None, scope: str = "") -> str:
    c = conversation(r, headers or {}, session_id, scope)
    assert c is not None
    return c.key


# ---- naming --------------------------------------------------------------------------------------


def test_later_turns_of_an_unnamed_conversation_share_its_name() -> None:
    first = chat("Write a parser.")
    tenth = chat("Write a parser.", "Here.", "Add tests.", "Done.", "Now docs.")
    c = conversation(first, {})
    assert c is not None and not c.named
    assert key(first) == key(tenth)
    assert key(chat("Write a lexer.")) != key(first)  # another opening, another conversation
    assert key(chat("Write a parser.", system="You are verbose.")) != key(first)


def test_the_model_and_the_scope_are_part_of_the_name() -> None:
    r = chat("hi")
    assert key(r) != key(chat("hi", model="small"))
    assert key(r, scope="owner-a") != key(r, scope="owner-b")
    assert key(r, session_id="s1") != key(chat("hi", model="small"), session_id="s1")


def test_names_in_order_session_id_header_cache_key_metadata_user_id() -> None:
    r = chat("hi")
    named = conversation(r, {"x-session-id": "hdr"}, "body", cache_key="pck")
    assert named is not None and named.named
    assert conversation(r, {"x-session-id": "hdr"}, "body", cache_key="pck") == conversation(chat("other"), {}, "body")
    assert key(r, {"x-session-id": "hdr"}) == key(chat("other"), {"x-session-id": "hdr"})
    assert key(r, {"x-session-id": "same"}) == key(chat("x"), {}, "same")  # the body's and the header's are one
    by_cache_key = conversation(r, {}, cache_key="pck")
    assert by_cache_key is not None and by_cache_key == conversation(chat("other"), {}, cache_key="pck")
    assert by_cache_key.key != key(r)
    claude = chat("hi", source="anthropic", user='{"session_id":"abc"}')
    assert key(claude) == key(chat("other", source="anthropic", user='{"session_id":"abc"}'))
    # OpenAI's `user` names a person (all their conversations), not a conversation
    assert key(chat("a", user="alice")) != key(chat("b", user="alice"))
    assert key(chat("hi"), {}, 42) == key(chat("x"), {}, "42")  # a numeric session id is its text


def test_empty_or_odd_names_fall_back_to_the_opening_messages() -> None:
    r = chat("hi")
    assert key(r, {"x-session-id": ""}, "") == key(r) == key(r, {}, True) == key(r, {}, {"x": 1})
    assert conversation(ChatRequest(model="m", messages=[]), {}) is None


def test_every_kind_of_part_in_the_first_user_message_counts() -> None:
    def opening(*parts: Any) -> ChatRequest:
        return ChatRequest(model="m", messages=[Message(role="user", content=list(parts))])

    base = [TextPart(text="see"), ImagePart(url="https://x.example/a.png")]
    assert key(opening(*base)) != key(opening(TextPart(text="see"), ImagePart(url="https://x.example/b.png")))
    tr = ToolResultPart(tool_call_id="t", content=[TextPart(text="1"), ImagePart(data="AAAA", media_type="image/png")])
    tr2 = ToolResultPart(tool_call_id="t", content=[TextPart(text="2"), ImagePart(data="AAAA", media_type="image/png")])
    assert key(opening(tr)) != key(opening(tr2))
    call = ToolCallPart(id="c", name="f", arguments="{}")
    assert key(opening(call)) != key(opening(ToolCallPart(id="c", name="g", arguments="{}")))
    # part boundaries count: "ab" + "c" is not "a" + "bc"
    assert key(opening(TextPart(text="ab"), TextPart(text="c"))) != key(
        opening(TextPart(text="a"), TextPart(text="bc"))
    )


def test_ttl_outlives_the_providers_cache() -> None:
    assert affinity_ttl(chat("hi")) == SHORT_TTL == 300
    hour = ChatRequest(
        model="m", messages=[], system=[TextPart(text="s", cache_control={"type": "ephemeral", "ttl": "1h"})]
    )
    assert affinity_ttl(hour) == LONG_TTL == 3600


# ---- the selection rule --------------------------------------------------------------------------


def ep(provider: str, price: str = "1") -> EndpointConfig:
    p = Decimal(price)
    return EndpointConfig(provider, f"up-{provider}", Pricing(p, p), frozenset({"streaming"}), 10_000, None, Timeouts())


def cands(m: ModelConfig, seed: int) -> list[Candidate]:
    class Healthy:
        def is_open(self, key: str) -> bool:
            return False

        def recently_failed(self, key: str) -> bool:
            return False

        def throughput(self, key: str) -> float | None:
            return None

        def latency(self, key: str) -> float | None:
            return None

    return plan([m], chat("hi"), parse_prefs(None), 10, Healthy(), random.Random(seed))


TWO = ModelConfig("m", "M", "T", 10_000, (ep("a"), ep("b")))


def test_one_conversation_stays_on_its_endpoint_while_new_ones_are_balanced() -> None:
    remembered = "m|b|up-b"
    served = Counter(prefer(cands(TWO, seed), remembered, lambda k: True)[0].endpoint.provider for seed in range(30))
    assert served == {"b": 30}
    fresh = Counter(prefer(cands(TWO, seed), None, lambda k: True)[0].endpoint.provider for seed in range(200))
    assert 60 < fresh["a"] < 140 and 60 < fresh["b"] < 140


def test_an_unhealthy_or_excluded_endpoint_is_not_preferred() -> None:
    c = cands(TWO, 0)
    assert prefer(c, "m|b|up-b", lambda k: k != "m|b|up-b") is c
    assert prefer(c, "m|gone|up-gone", lambda k: True) is c  # not a candidate (provider.ignore, removed...)
    assert prefer(c, c[0].key, lambda k: True) is c  # already first: no copy


def test_a_failed_over_conversation_stays_on_its_new_endpoint() -> None:
    # turn 1 served by a; a fails on turn 2 and b serves; the table now says b: turn 3 goes to b
    # first even when the balance would put a first.
    for seed in range(20):
        assert prefer(cands(TWO, seed), "m|b|up-b", lambda k: True)[0].endpoint.provider == "b"


def test_the_callers_model_order_is_kept() -> None:
    first = ModelConfig("m", "M", "T", 10_000, (ep("a"), ep("b")))
    second = ModelConfig("n", "N", "T", 10_000, (ep("c"), ep("d")))
    both = [Candidate(first, first.endpoints[0]), Candidate(first, first.endpoints[1]),
            Candidate(second, second.endpoints[0]), Candidate(second, second.endpoints[1])]  # fmt: skip
    order = [c.endpoint.provider for c in prefer(both, "n|d|up-d", lambda k: True)]
    assert order == ["a", "b", "d", "c"]  # the fallback model's remembered endpoint leads only its model
    assert [c.endpoint.provider for c in prefer(both, "m|b|up-b", lambda k: True)] == ["b", "a", "c", "d"]


# ---- the gateway's calls (Sticky) ----------------------------------------------------------------


def big_chat(text: str = "Write a parser.") -> ChatRequest:
    return chat(text, system="rules " * 2000)


async def test_sticky_remembers_the_served_endpoint_and_orders_by_it() -> None:
    sticky = Sticky(MemoryAffinity(), is_open=lambda k: False)
    r = big_chat()
    conv = sticky.conversation(r, [TWO], parse_prefs(None), {}, {}, "owner", 5_000)
    assert conv is not None and not conv.named
    first = await sticky.order(cands(TWO, 0), conv)
    await sticky.served(conv, first[1], r)  # say the second one served (the first failed)
    for seed in range(10):
        assert (await sticky.order(cands(TWO, seed), conv))[0].key == first[1].key


async def test_sticky_skips_what_affinity_cannot_help() -> None:
    table = MemoryAffinity()
    sticky = Sticky(table, is_open=lambda k: False)
    one = ModelConfig("m", "M", "T", 10_000, (ep("a"),))
    r = big_chat()
    assert sticky.conversation(r, [one], parse_prefs(None), {}, {}, "", 5_000) is None  # nothing to choose
    assert sticky.conversation(r, [TWO], parse_prefs({"order": ["a"]}), {}, {}, "", 5_000) is None
    assert sticky.conversation(chat("hi"), [TWO], parse_prefs(None), {}, {}, "", 20) is None  # too short
    named = sticky.conversation(chat("hi"), [TWO], parse_prefs(None), {"x-session-id": "s"}, {}, "", 20)
    assert named is not None and named.named  # a named conversation is kept whatever its length
    assert await sticky.order(cands(TWO, 0), None) == cands(TWO, 0)
    await sticky.served(None, cands(TWO, 0)[0], r)
    assert len(table) == 0


async def test_sticky_moves_off_an_open_circuit_and_remembers_the_new_endpoint() -> None:
    broken: set[str] = set()
    table = MemoryAffinity()
    sticky = Sticky(table, is_open=lambda k: k in broken)
    r = big_chat()
    conv = sticky.conversation(r, [TWO], parse_prefs(None), {}, {"session_id": 7}, "", 5_000)
    assert conv is not None and conv.named
    await sticky.served(conv, Candidate(TWO, TWO.endpoints[0]), r)
    broken.add("m|a|up-a")
    moved = [(await sticky.order(cands(TWO, s), conv))[0].endpoint.provider for s in range(20)]
    assert "b" in moved  # no longer pinned to a
    await sticky.served(conv, Candidate(TWO, TWO.endpoints[1]), r)
    broken.clear()  # a recovered: the conversation stays where its cache now is
    assert {(await sticky.order(cands(TWO, s), conv))[0].endpoint.provider for s in range(20)} == {"b"}
    assert await table.get(conv.key) == "m|b|up-b"


async def test_the_ttl_written_follows_the_requests_breakpoints() -> None:
    clock_now = [0.0]
    table = MemoryAffinity(clock=lambda: clock_now[0])
    sticky = Sticky(table, is_open=lambda k: False)
    hour = ChatRequest(
        model="m",
        messages=[Message(role="user", content=[TextPart(text="q")])],
        system=[TextPart(text="rules " * 2000, cache_control={"type": "ephemeral", "ttl": "1h"})],
    )
    conv = sticky.conversation(hour, [TWO], parse_prefs(None), {}, {}, "", 5_000)
    assert conv is not None
    await sticky.served(conv, Candidate(TWO, TWO.endpoints[1]), hour)
    clock_now[0] = 30 * 60.0  # half an hour idle: past a 5-minute TTL, within the hour
    assert await table.get(conv.key) == "m|b|up-b"

"""Answers: plain text, system prompt, multi-turn, stop sequence, max_tokens cut, usage and cost,
image input; each asserting what the client got and what reached the upstream."""

from __future__ import annotations

from decimal import Decimal

import pytest
from support.raw import price_of
from upstreams.script import Reply

from keeprouter.billing import pricing
from scenarios.conftest import World
from scenarios.neutral import Ask, Finish, Image, Msg
from scenarios.rows import Case, cases

pytestmark = pytest.mark.asyncio(loop_scope="module")

HI = Ask(messages=(Msg("user", "Hi"),))
# a 1x1 transparent PNG
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


@cases("text")
async def test_plain_text(world: World, case: Case) -> None:
    lane = world.lane(case)
    lane.script(Reply(text="Hello there, world!", input_tokens=21, output_tokens=6))
    r = await world.send(case, HI)
    assert r.error is None
    assert r.text == "Hello there, world!" and r.calls == []
    assert r.finish == case.api.finish_words["end"]
    assert (r.input_tokens, r.output_tokens) == (21, 6)
    assert r.id and r.id.startswith(case.api.id_prefix)
    sent = lane.sent()
    assert sent.model == case.kind.upstream_model
    assert sent.stream is case.stream
    assert sent.system is None
    assert sent.messages == [Msg("user", "Hi")]
    for member, value in case.kind.stream_extras.items():
        assert (sent.body.get(member) == value) is case.stream, member


@cases("system")
async def test_system_prompt_reaches_upstream(world: World, case: Case) -> None:
    lane = world.lane(case)
    lane.script(Reply(text="ok"))
    r = await world.send(case, Ask(system="Be terse.", messages=(Msg("user", "Hi"),)))
    assert r.text == "ok"
    sent = lane.sent()
    assert sent.system == "Be terse."
    assert sent.messages == [Msg("user", "Hi")]


@cases("multi-turn")
async def test_multi_turn_keeps_order(world: World, case: Case) -> None:
    lane = world.lane(case)
    lane.script(Reply(text="Rome."))
    turns = (Msg("user", "Capital of France?"), Msg("assistant", "Paris."), Msg("user", "And of Italy?"))
    r = await world.send(case, Ask(messages=turns))
    assert r.text == "Rome."
    assert lane.sent().messages == list(turns)


@cases("stop-sequence", needs={"stop"})
async def test_stop_sequence(world: World, case: Case) -> None:
    lane = world.lane(case)
    lane.script(Reply(text="one two", stop="stop_sequence", stop_sequence="END"))
    r = await world.send(case, Ask(messages=(Msg("user", "count"),), max_tokens=5, stop=("END",)))
    assert r.text == "one two"
    # an upstream that cannot say a stop sequence ended it reads as the plain end
    said: Finish = "stop_sequence" if case.kind.reports_stop_sequence else "end"
    assert r.finish == case.api.finish_words[said]
    sent = lane.sent()
    assert sent.stop == ["END"]
    assert sent.max_tokens == 5


@cases("max-tokens")
async def test_max_tokens_cut(world: World, case: Case) -> None:
    lane = world.lane(case)
    lane.script(Reply(text="one two", stop="max_tokens", output_tokens=5))
    r = await world.send(case, Ask(messages=(Msg("user", "count"),), max_tokens=5))
    assert r.text == "one two"
    assert r.finish == case.api.finish_words["max_tokens"]
    assert r.output_tokens == 5
    assert lane.sent().max_tokens == 5


@cases("usage")
async def test_usage_and_cost_count_cached_tokens_once(world: World, case: Case) -> None:
    lane = world.lane(case)
    lane.script(Reply(text="cached", input_tokens=10, cache_read=1000, cache_write=50, output_tokens=3))
    r = await world.send(case, HI)
    assert r.error is None and r.text == "cached"
    assert (r.input_tokens, r.output_tokens) == (1060, 3)
    written = 50 if case.kind.reports_cache_writes else 0  # else billed as plain input
    want = pricing.quantize(price_of(1060, 3, 1000, written, world.pricing(case)))
    if case.api.reports_cost:
        assert r.cost is not None and Decimal(str(r.cost)) == want
    else:
        assert r.cost is None
    assert r.generation_id
    g = await world.generation(r.generation_id)
    assert (g["tokens_prompt"], g["tokens_completion"], g["native_tokens_cached"]) == (1060, 3, 1000)
    assert g["streamed"] is case.stream and g["status"] == "ok"
    assert Decimal(str(g["total_cost"])) == want
    assert lane.sent().stream is case.stream


@cases("image", needs={"image"})
async def test_image_input_base64(world: World, case: Case) -> None:
    lane = world.lane(case)
    lane.script(Reply(text="A dot."))
    image = Image("image/png", PNG)
    r = await world.send(case, Ask(messages=(Msg("user", "What is this?", images=(image,)),)))
    assert r.text == "A dot."
    assert lane.sent().messages == [Msg("user", "What is this?", images=(image,))]

"""Tools: one call and its result turn back (ids kept consistent), parallel calls, a turn answering
two calls, tool_choice forced / none / required; each asserting what the client got and what
reached the upstream."""

from __future__ import annotations

import pytest
from upstreams.script import Reply, ToolCall

from scenarios.conftest import World
from scenarios.neutral import Ask, Call, Msg, Tool
from scenarios.rows import Case, cases

pytestmark = pytest.mark.asyncio(loop_scope="module")

WEATHER = Tool(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@cases("tools")
async def test_tool_call_and_result_turn_keep_the_id(world: World, case: Case) -> None:
    lane = world.lane(case)
    args = {"city": "Paris", "unit": "celsius"}
    lane.script(Reply(text=None, tool_calls=[ToolCall(None, "get_weather", args)], args_chunk=4))
    question = Msg("user", "Weather in Paris?")
    first = await world.send(case, Ask(messages=(question,), tools=(WEATHER,)))
    assert first.error is None and first.text == ""
    [call] = first.calls
    assert call.id and (call.name, call.args) == ("get_weather", args)
    assert first.finish == case.api.finish_words["tool_use"]
    sent = lane.sent()
    assert sent.tools == [WEATHER]
    assert sent.messages == [question]

    lane.script(Reply(text="Sunny in Paris."))
    turns = (question, Msg("assistant", calls=(call,)), Msg("tool", results=((call.id, "sunny, 24C"),)))
    second = await world.send(case, Ask(messages=turns, tools=(WEATHER,)))
    assert second.text == "Sunny in Paris." and second.calls == []
    assert second.finish == case.api.finish_words["end"]
    sent = lane.sent()
    assert sent.roles == ["user", "assistant", "tool"]
    # the id the client got is the id the upstream sees (where its wire carries ids)
    assert sent.messages == case.kind.as_sent(turns)


@cases("parallel-tools")
async def test_text_then_parallel_tool_calls(world: World, case: Case) -> None:
    lane = world.lane(case)
    rome = {"city": "Rome", "detail": {"days": [1, 2, 3]}}
    calls = [ToolCall(None, "get_weather", {"city": "Paris"}), ToolCall(None, "get_weather", rome)]
    lane.script(Reply(text="Checking both.", tool_calls=calls))
    r = await world.send(case, Ask(messages=(Msg("user", "Paris and Rome?"),), tools=(WEATHER,)))
    assert r.text == "Checking both."
    assert [(c.name, c.args) for c in r.calls] == [("get_weather", {"city": "Paris"}), ("get_weather", rome)]
    assert len({c.id for c in r.calls}) == 2 and all(c.id for c in r.calls)
    assert r.finish == case.api.finish_words["tool_use"]
    assert lane.sent().tools == [WEATHER]


@cases("tool-results")
async def test_a_turn_answering_two_calls(world: World, case: Case) -> None:
    lane = world.lane(case)
    lane.script(Reply(text="It is sunny in Paris and rainy in Rome."))
    calls = (Call("call_1", "get_weather", {"city": "Paris"}), Call("call_2", "get_weather", {"city": "Rome"}))
    turns = (
        Msg("user", "Paris and Rome?"),
        Msg("assistant", calls=calls),
        Msg("tool", results=(("call_1", "sunny"), ("call_2", "rainy"))),
    )
    r = await world.send(case, Ask(messages=turns, tools=(WEATHER,)))
    assert r.text == "It is sunny in Paris and rainy in Rome."
    assert lane.sent().messages == case.kind.as_sent(turns)


@cases("tool-choice-forced")
async def test_tool_choice_forced(world: World, case: Case) -> None:
    lane = world.lane(case)
    lane.script(Reply(text=None, tool_calls=[ToolCall(None, "get_weather", {"city": "Oslo"})]))
    r = await world.send(case, Ask(messages=(Msg("user", "Oslo?"),), tools=(WEATHER,), tool_choice="get_weather"))
    assert [(c.name, c.args) for c in r.calls] == [("get_weather", {"city": "Oslo"})]
    sent = lane.sent()
    assert sent.tool_choice == "get_weather"
    assert sent.tools == [WEATHER]


@cases("tool-choice-required")
async def test_tool_choice_required(world: World, case: Case) -> None:
    lane = world.lane(case)
    lane.script(Reply(text=None, tool_calls=[ToolCall(None, "get_weather", {"city": "Oslo"})]))
    r = await world.send(case, Ask(messages=(Msg("user", "Oslo?"),), tools=(WEATHER,), tool_choice="required"))
    assert [c.name for c in r.calls] == ["get_weather"]
    assert lane.sent().tool_choice == "required"


@cases("tool-choice-none")
async def test_tool_choice_none(world: World, case: Case) -> None:
    lane = world.lane(case)
    lane.script(Reply(text="No tools needed."))
    r = await world.send(case, Ask(messages=(Msg("user", "Hi"),), tools=(WEATHER,), tool_choice="none"))
    assert r.text == "No tools needed." and r.calls == []
    assert r.finish == case.api.finish_words["end"]
    assert lane.sent().tool_choice == "none"

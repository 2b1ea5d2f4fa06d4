"""Reasoning through every client API to the upstreams that reason, streamed and not: a two-step tool
loop with reasoning on, where each emulator enforces its provider's rule for what must come back
(Anthropic and Claude on Bedrock or Vertex: the exact signed thinking; DeepSeek: the exact
``reasoning_content`` on tool-call turns; Gemini 3: the exact thought signature on each call),
so turn 2 succeeds only if the client's echo reached the upstream byte for byte. Also: reasoning
tokens billed as the upstream counted them, and reasoning asked of a model without it dropped and
named in ``X-KeepRouter-Dropped``."""

from __future__ import annotations

import pytest
from upstreams.script import Fault, Reply, ToolCall

from scenarios.client_api import ClientApi
from scenarios.conftest import NO_REASONING, World, across
from scenarios.neutral import Ask, Call, Msg, Tool
from scenarios.rows import Case, api_cases, cases
from scenarios.upstream_kinds import UPSTREAM_KINDS, UpstreamKind

pytestmark = pytest.mark.asyncio(loop_scope="module")

WEATHER = Tool(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
THOUGHT = "The user wants Paris weather; call the tool."
QUESTION = Msg("user", "Weather in Paris?")


def _as_sent(kind: UpstreamKind, call: Call) -> tuple[Call, ...]:
    """`call` as `kind`'s wire carries it (Gemini's calls have no id)."""
    return kind.as_sent([Msg("assistant", calls=(call,))])[0].calls


@cases("reasoning-tool-loop", reasons=True)
async def test_tool_loop_with_reasoning_sends_back_what_the_upstream_issued(world: World, case: Case) -> None:
    lane = world.lane(case)
    call_reply = Reply(text=None, thinking=THOUGHT, tool_calls=[ToolCall(None, "get_weather", {"city": "Paris"})])
    lane.script(call_reply)
    first = await world.send(case, Ask(messages=(QUESTION,), tools=(WEATHER,), reasoning="low", max_tokens=4096))
    assert first.error is None
    assert first.thinking == THOUGHT
    assert first.reasoning, "no reasoning state came back to send on the next turn"
    [call] = first.calls

    lane.script(Reply(text="Sunny in Paris."))
    turns = (
        QUESTION,
        Msg("assistant", calls=(call,), reasoning=tuple(first.reasoning)),
        Msg("tool", results=((call.id, "sunny, 24C"),)),
    )
    second = await world.send(case, Ask(messages=turns, tools=(WEATHER,), reasoning="low", max_tokens=4096))
    # the emulator refuses turn 2 unless it got back exactly the reasoning it issued with the call
    assert second.error is None, second.error
    assert second.text == "Sunny in Paris."
    assert lane.sent().messages[1].calls == _as_sent(lane.kind, call)
    assert case.kind.replayed_exactly(lane.emulator, lane.generations()[-1]), (
        "the issued signed state did not come back"
    )


@cases("reasoning-tokens", reasons=True)
async def test_reasoning_tokens_billed_as_the_upstream_counted(world: World, case: Case) -> None:
    lane = world.lane(case)
    lane.script(Reply(text="Done.", thinking=THOUGHT, output_tokens=40, reasoning_tokens=25))
    r = await world.send(case, Ask(messages=(QUESTION,), reasoning="low", max_tokens=4096))
    assert r.error is None and r.output_tokens == 40
    assert r.generation_id
    g = await world.generation(r.generation_id)
    assert g["tokens_completion"] == 40  # reasoning is billed as output: it is inside the output count
    assert g["native_tokens_reasoning"] == (25 if case.kind.reports_reasoning_tokens else 0)


@api_cases("reasoning-dropped")
async def test_reasoning_for_a_model_without_it_is_dropped_and_said(world: World, api: ClientApi, stream: bool) -> None:
    lane = world.lanes[UPSTREAM_KINDS[0].name]
    lane.script(Reply(text="Plain answer."))
    ask = Ask(messages=(QUESTION,), reasoning="high", max_tokens=4096)
    r = await world.send_as(api, stream, ask, NO_REASONING)
    assert r.error is None and r.text == "Plain answer."
    assert r.headers.get("x-keeprouter-dropped") == "reasoning"
    body = lane.sent().body
    assert not {"reasoning_effort", "reasoning", "include_reasoning", "thinking"} & set(body)


REASONING_KINDS = [k.name for k in UPSTREAM_KINDS if k.reasons]


@api_cases("reasoning-moved")
@pytest.mark.parametrize(("began", "moved"), [(a, b) for a in REASONING_KINDS for b in REASONING_KINDS if a != b])
async def test_a_tool_loop_moved_to_another_provider_midway_goes_on(
    world: World, api: ClientApi, stream: bool, began: str, moved: str
) -> None:
    """Turn 1 is served by `began` (the other fails), turn 2 by `moved`: the reasoning `began` issued
    is not `moved`'s to verify, so it is left out, and `moved` answers rather than refusing the loop."""
    lanes = world.lanes
    model = across(began, moved)
    lanes[began].script(
        Reply(text=None, thinking=THOUGHT, tool_calls=[ToolCall(None, "get_weather", {"city": "Paris"})])
    )
    lanes[moved].script(Fault(status=500))
    ask = Ask(messages=(QUESTION,), tools=(WEATHER,), reasoning="low", max_tokens=4096)
    first = await world.send_as(api, stream, ask, model)
    assert first.error is None and first.reasoning
    [call] = first.calls
    for lane in lanes.values():  # an unused fault must not meet turn 2
        lane.reset()

    lanes[began].script(Fault(status=500))
    lanes[moved].script(Reply(text="Sunny in Paris."))
    turns = (
        QUESTION,
        Msg("assistant", calls=(call,), reasoning=tuple(first.reasoning)),
        Msg("tool", results=((call.id, "sunny, 24C"),)),
    )
    second = await world.send_as(
        api, stream, Ask(messages=turns, tools=(WEATHER,), reasoning="low", max_tokens=4096), model
    )
    assert second.error is None, second.error
    assert second.text == "Sunny in Paris."
    assert lanes[moved].sent().messages[1].calls == _as_sent(lanes[moved].kind, call)

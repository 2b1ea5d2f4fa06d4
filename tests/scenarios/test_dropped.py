"""X-KeepRouter-Dropped at the wire for the upstream kinds whose body is neither OpenAI's nor
Anthropic's (Bedrock Converse, Gemini, Vertex's two families): an OpenAI Chat request with fields
those bodies cannot carry is answered, the header names each of them, and none reached the upstream
(raw HTTP, streamed and not); `n` > 1 is refused up front, naming `n`, where only one choice comes back."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from support.raw import auth, loads, sse_events
from upstreams.script import Reply

from scenarios.conftest import World

pytestmark = pytest.mark.asyncio(loop_scope="module")

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
ASKED = {
    "seed": 7,
    "logprobs": True,
    "top_logprobs": 2,
    "frequency_penalty": 0.5,
    "presence_penalty": 0.1,
    "user": "user-1",
    "tools": [WEATHER],
    "parallel_tool_calls": False,
}
# What each kind's body cannot carry of ASKED, in the header's order (the body's other fields first)
_CONVERSE = ["frequency_penalty", "presence_penalty", "seed", "logprobs", "top_logprobs", "user", "parallel_tool_calls"]
_GEMINI = ["frequency_penalty", "presence_penalty", "logprobs", "top_logprobs", "user", "parallel_tool_calls"]
DROPPED = {
    "bedrock": _CONVERSE,
    "bedrock-claude": _CONVERSE,
    "gemini": _GEMINI,  # seed is generationConfig.seed
    "vertex": _GEMINI,
    # Claude's Messages body carries user (metadata.user_id) and parallel_tool_calls (disable_parallel_tool_use)
    "vertex-claude": ["frequency_penalty", "presence_penalty", "seed", "logprobs", "top_logprobs"],
}
# Each field's names on each wire, none of which may appear in what the upstream got
WIRE_NAMES = {
    "seed": ("seed",),
    "logprobs": ("logprobs", "responseLogprobs"),
    "top_logprobs": ("top_logprobs", "logprobs"),
    "frequency_penalty": ("frequency_penalty", "frequencyPenalty"),
    "presence_penalty": ("presence_penalty", "presencePenalty"),
    "user": ("user",),
    "parallel_tool_calls": ("parallel_tool_calls",),
}


async def post(world: World, body: dict[str, Any]) -> tuple[int, Any, str | None]:
    """(status, the JSON body or the stream's payloads, X-KeepRouter-Dropped)."""
    url = world.gw.url + "/v1/chat/completions"
    async with (
        aiohttp.ClientSession() as s,
        s.post(url, json=body, headers=auth("openai", world.gw.admin_key)) as r,
    ):
        dropped = r.headers.get("X-KeepRouter-Dropped")
        if body.get("stream") and r.status == 200:
            return r.status, [e async for e in sse_events(r)], dropped
        return r.status, loads(await r.text()), dropped


def _keys(value: Any) -> set[str]:
    """Every key of a JSON value, at any depth."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", list(DROPPED))
async def test_fields_the_upstream_cannot_carry_are_named_in_the_header(world: World, kind: str, stream: bool) -> None:
    lane = world.lanes[kind]
    lane.script(Reply(text="Hi."))
    body = {"model": lane.model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 64, **ASKED}
    if stream:
        body["stream"] = True
    status, got, dropped = await post(world, body)
    assert status == 200, got
    assert (dropped or "").split(",") == DROPPED[kind]
    sent = _keys(lane.sent().body)
    for field in DROPPED[kind]:
        assert not sent & set(WIRE_NAMES[field]), f"{field} reached {kind}"


@pytest.mark.parametrize("kind", ["bedrock", "gemini", "vertex", "vertex-claude"])
async def test_n_is_refused_where_one_choice_comes_back(world: World, kind: str) -> None:
    lane = world.lanes[kind]
    body = {"model": lane.model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 64, "n": 2}
    status, got, _ = await post(world, body)
    assert status == 400, got
    assert got["error"]["param"] == "n"
    assert not lane.generations(), "a refused request reached the upstream"

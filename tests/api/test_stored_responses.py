"""The Responses API's stored state end to end, with the official `openai` SDK, on SQLite and
PostgreSQL: `store` (default true), `previous_response_id` chains, `item_reference` items,
retrieve / input_items / delete, per-key isolation, streamed turns, a tool loop continued from a
stored response, and the retention sweep."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import openai
import pytest
import pytest_asyncio
from openai.types.responses import Response
from store.backends import store_url_fixture  # noqa: F401  (the store_url fixture: SQLite and PostgreSQL)
from support.clients import openai_client
from support.gateway import RunningGateway, run_gateway, two_format_config
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply, ToolCall

from keeprouter.api.http import STATE
from keeprouter.api.responses import STORED
from keeprouter.api.stored_responses import StoredResponses
from keeprouter.store.base import ADMIN_HASH, SECONDS_PER_DAY

MODEL = {"openai": "gpt-test", "anthropic": "claude-test"}
PARIS = '{"city":"Paris"}'
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@dataclass
class Env:
    gw: RunningGateway
    up: dict[str, OpenAIUpstream | AnthropicUpstream]

    def client(self, key: str | None = None) -> openai.AsyncOpenAI:
        return openai_client(self.gw.url, key or self.gw.admin_key)

    def sent(self, upstream: str) -> dict[str, Any]:
        body: dict[str, Any] = [r.body for r in self.up[upstream].requests if isinstance(r.body, dict)][-1]
        return body

    async def other_key(self) -> str:
        key: str = (await self.gw.create_key("other"))["key"]
        return key


@pytest_asyncio.fixture
async def env(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, store_url: str
) -> AsyncIterator[Env]:
    async with run_gateway(two_format_config(openai_upstream.url, anthropic_upstream.url, store_url)) as gw:
        yield Env(gw, {"openai": openai_upstream, "anthropic": anthropic_upstream})


async def ask(env: Env, stream: bool, key: str | None = None, **kw: Any) -> Response:
    async with env.client(key) as c:
        if not stream:
            answer: Response = await c.responses.create(**kw)
            return answer
        events = [ev async for ev in await c.responses.create(stream=True, **kw)]
        assert events[-1].type == "response.completed"
        final: Response = events[-1].response
        return final


def texts(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(role, text) of OpenAI Chat messages as the upstream received them."""
    out = []
    for m in messages:
        c = m["content"]
        out.append((m["role"], c if isinstance(c, str) else "".join(p.get("text", "") for p in c)))
    return out


modes = pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])


@modes
async def test_three_turns_chained_by_previous_response_id(env: Env, stream: bool) -> None:
    up = env.up["openai"]
    up.script(Reply(text="Hi Ada."), Reply(text="Noted."), Reply(text="You are Ada."))
    r1 = await ask(env, stream, model="gpt-test", input="My name is Ada.", store=True, instructions="Be brief.")
    assert r1.model_dump()["store"] is True and r1.previous_response_id is None
    r2 = await ask(env, stream, model="gpt-test", input="I like tea.", previous_response_id=r1.id)
    assert r2.previous_response_id == r1.id and r2.model_dump()["store"] is True  # stored by default, as OpenAI's
    r3 = await ask(env, stream, model="gpt-test", input=[{"role": "user", "content": "Who am I?"}],
                   previous_response_id=r2.id)  # fmt: skip
    assert r3.output_text == "You are Ada."
    # The upstream saw the whole conversation; instructions are not carried over (as OpenAI's).
    assert texts(env.sent("openai")["messages"]) == [
        ("user", "My name is Ada."), ("assistant", "Hi Ada."), ("user", "I like tea."),
        ("assistant", "Noted."), ("user", "Who am I?"),
    ]  # fmt: skip

    async with env.client() as c:
        got = await c.responses.retrieve(r3.id)
        assert got.id == r3.id and got.output_text == "You are Ada." and got.previous_response_id == r2.id
        items = [i async for i in c.responses.input_items.list(r3.id, order="asc", limit=2)]  # pages of 2
        assert [(i.type, i.role) for i in items] == [  # type: ignore[union-attr]
            ("message", "user"), ("message", "assistant"), ("message", "user"), ("message", "assistant"),
            ("message", "user"),
        ]  # fmt: skip
        assert len({i.id for i in items}) == 5
        page = await c.responses.input_items.list(r3.id, limit=2)  # newest first by default
        assert [i.id for i in page.data] == [items[4].id, items[3].id] and page.has_more is True
        assert page.first_id == items[4].id and page.last_id == items[3].id  # type: ignore[attr-defined]
        await c.responses.delete(r3.id)
        with pytest.raises(openai.NotFoundError):
            await c.responses.retrieve(r3.id)
        with pytest.raises(openai.NotFoundError):
            await c.responses.delete(r3.id)
        with pytest.raises(openai.NotFoundError) as e:
            await c.responses.create(model="gpt-test", input="again?", previous_response_id=r3.id)
    body: dict[str, Any] = e.value.body  # type: ignore[assignment]
    assert body["param"] == "previous_response_id" and r3.id in body["message"]
    assert len(up.requests) == 3  # the refused turn never reached the upstream


async def test_another_key_gets_404_everywhere(env: Env) -> None:
    env.up["openai"].script(Reply(text="Mine."))
    mine = await ask(env, False, model="gpt-test", input="secret")
    other = await env.other_key()
    async with env.client(other) as c:
        with pytest.raises(openai.NotFoundError):
            await c.responses.retrieve(mine.id)
        with pytest.raises(openai.NotFoundError):
            await c.responses.input_items.list(mine.id)
        with pytest.raises(openai.NotFoundError):
            await c.responses.delete(mine.id)
        with pytest.raises(openai.NotFoundError):
            await c.responses.create(model="gpt-test", input="and?", previous_response_id=mine.id)
        ref: dict[str, Any] = {"type": "item_reference", "id": mine.output[0].id}
        with pytest.raises(openai.NotFoundError):
            await c.responses.create(model="gpt-test", input=cast(Any, [ref, {"role": "user", "content": "and?"}]))
    async with env.client() as c:  # still there for its owner
        assert (await c.responses.retrieve(mine.id)).output_text == "Mine."


async def test_store_false_keeps_nothing(env: Env) -> None:
    env.up["openai"].script(Reply(text="Gone."))
    r = await ask(env, False, model="gpt-test", input="hi", store=False)
    assert r.model_dump()["store"] is False
    async with env.client() as c:
        with pytest.raises(openai.NotFoundError):
            await c.responses.retrieve(r.id)


@pytest.mark.parametrize("upstream", ["openai", "anthropic"])
@modes
async def test_tool_loop_continues_from_previous_response_id(env: Env, upstream: str, stream: bool) -> None:
    up = env.up[upstream]
    up.script(Reply(text=None, tool_calls=[ToolCall(None, "get_weather", PARIS)]), Reply(text="Sunny in Paris."))
    first = await ask(env, stream, model=MODEL[upstream], input="Weather in Paris?", tools=[WEATHER])
    call = first.output[-1]
    assert call.type == "function_call" and call.arguments == PARIS
    out = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 24C"}
    second = await ask(env, stream, model=MODEL[upstream], input=[out], tools=[WEATHER],
                       previous_response_id=first.id)  # fmt: skip
    assert second.output_text == "Sunny in Paris."
    sent = env.sent(upstream)["messages"]
    if upstream == "openai":
        assert sent[0] == {"role": "user", "content": "Weather in Paris?"}
        assert sent[1]["tool_calls"][0]["id"] == call.call_id
        assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 24C"}
    else:
        assert sent[1]["content"][-1] == {"type": "tool_use", "id": call.call_id, "name": "get_weather",
                                          "input": {"city": "Paris"}}  # fmt: skip
        assert sent[2]["content"][0]["tool_use_id"] == call.call_id


async def test_item_references_as_the_ai_sdk_sends_them_with_store_true(env: Env) -> None:
    # With store: true the AI SDK sends earlier output items back as bare references, without
    # previous_response_id: they are resolved from this key's stored responses.
    up = env.up["openai"]
    up.script(Reply(text="Checking.", tool_calls=[ToolCall(None, "get_weather", PARIS)]), Reply(text="Sunny."))
    first = await ask(env, False, model="gpt-test", input="Weather in Paris?", tools=[WEATHER])
    msg, call = first.output
    assert call.type == "function_call"
    second = await ask(env, False, model="gpt-test", tools=[WEATHER], input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "item_reference", "id": msg.id},
        {"type": "item_reference", "id": call.id},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ])  # fmt: skip
    assert second.output_text == "Sunny."
    sent = env.sent("openai")["messages"]
    assert sent[1]["role"] == "assistant" and sent[1]["content"] == "Checking."
    assert sent[1]["tool_calls"][0]["id"] == call.call_id
    assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}
    async with env.client() as c:
        with pytest.raises(openai.NotFoundError) as e:
            await c.responses.create(model="gpt-test", input=[{"type": "item_reference", "id": "msg_nope"}])
    assert "msg_nope" in e.value.message


async def test_sweep_drops_responses_past_the_retention(env: Env) -> None:
    env.up["openai"].script(Reply(text="Old."))
    r = await ask(env, False, model="gpt-test", input="hi")
    app = env.gw.server.app
    assert app[STORED].retention == 30 * SECONDS_PER_DAY  # the default
    store = app[STATE].store
    now = await store.get_response(ADMIN_HASH, r.id)  # the admin key's requests are its stored row's
    assert now is not None
    early = StoredResponses(store, 30, clock=lambda: now.created_at + 29 * SECONDS_PER_DAY)
    assert await early.sweep_once() == 0
    late = StoredResponses(store, 30, clock=lambda: now.created_at + 31 * SECONDS_PER_DAY)
    assert await late.sweep_once() == 1
    async with env.client() as c:
        with pytest.raises(openai.NotFoundError):
            await c.responses.retrieve(r.id)


@modes
async def test_signed_thinking_survives_previous_response_id(env: Env, stream: bool) -> None:
    up = env.up["anthropic"]
    up.script(Reply(text=None, thinking="Need the weather.", signature="SIG/xyz==",
                    tool_calls=[ToolCall(None, "get_weather", PARIS)]), Reply(text="Sunny."))  # fmt: skip
    first = await ask(env, stream, model="claude-test", input="Weather?", tools=[WEATHER])
    call = first.output[-1]
    assert call.type == "function_call" and first.output[0].type == "reasoning"
    out = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
    await ask(env, stream, model="claude-test", input=[out], tools=[WEATHER], previous_response_id=first.id)
    turn = env.sent("anthropic")["messages"][1]["content"]
    assert turn[0] == {"type": "thinking", "thinking": "Need the weather.", "signature": "SIG/xyz=="}
    assert turn[-1]["type"] == "tool_use" and turn[-1]["id"] == call.call_id


@pytest.mark.parametrize("prefix", ["/v1", "", "/api/v1"])
async def test_routes_under_every_prefix(env: Env, prefix: str) -> None:
    env.up["openai"].script(Reply(text="Hi."))
    r = await ask(env, False, model="gpt-test", input="hi")
    headers = {"Authorization": f"Bearer {env.gw.admin_key}"}
    async with aiohttp.ClientSession(env.gw.url + prefix + "/", headers=headers) as s:
        async with s.get(f"responses/{r.id}") as resp:
            assert resp.status == 200 and (await resp.json())["id"] == r.id
        async with s.get(f"responses/{r.id}/input_items", params={"limit": "0"}) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["param"] == "limit"
        async with s.get(f"responses/{r.id}/input_items") as resp:
            page = await resp.json()
            assert page["object"] == "list" and [i["content"] for i in page["data"]] == [
                [{"type": "input_text", "text": "hi"}]
            ]
        async with s.delete(f"responses/{r.id}") as resp:
            assert await resp.json() == {"id": r.id, "object": "response", "deleted": True}
        async with s.get(f"responses/{r.id}") as resp:
            body = await resp.json()
            assert resp.status == 404 and body["error"]["message"] == f"Response with id '{r.id}' not found."

"""The response cache through the real gateway: an identical request of the same owner answered
from the cache (free, marked, recorded as cached), replayed in each client API, streamed or not;
misses on any change of the canonical request; never shared across owners; `no-store`; the TTL;
off by default; in the database (SQLite, PostgreSQL) or in Redis shared by two instances.

Whether the upstream was asked is the emulator's own count of the requests it served; what a hit
replays is told apart from a fresh answer by the upstream answering differently the second time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from store.backends import PG_URL, pg_schema
from support.gateway import ADMIN_KEY, RunningGateway, run_gateway, sqlite_url, two_format_config
from support.redis_server import SHARED_URL, drop_prefix, shared_client, unique_prefix
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply

from keeprouter.api.http import STATE

QUESTION = "What is the capital of France?"
PATHS = {"chat": "/v1/chat/completions", "messages": "/v1/messages", "responses": "/v1/responses"}


def body_for(api: str, model: str = "gpt-test", **extra: Any) -> dict[str, Any]:
    if api == "responses":
        return {"model": model, "input": QUESTION, "max_output_tokens": 50, **extra}
    return {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": QUESTION}], **extra}


def text_of(api: str, data: dict[str, Any]) -> str:
    if api == "chat":
        return str(data["choices"][0]["message"]["content"])
    if api == "messages":
        return "".join(b["text"] for b in data["content"] if b["type"] == "text")
    return "".join(
        c["text"] for item in data["output"] if item["type"] == "message" for c in item["content"]
    )  # fmt: skip


def streamed_text(api: str, sse: str) -> str:
    """The text of a stream, read as each API's client reads it."""
    out = []
    for line in sse.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        ev = json.loads(line[6:])
        if api == "chat":
            out += [c["delta"].get("content") or "" for c in ev.get("choices", [])]
        elif api == "messages" and ev["type"] == "content_block_delta" and ev["delta"]["type"] == "text_delta":
            out.append(ev["delta"]["text"])
        elif api == "responses" and ev["type"] == "response.output_text.delta":
            out.append(ev["delta"])
    return "".join(out)


@dataclass
class Answer:
    status: int
    text: str
    cache: str | None  # the X-KeepRouter-Cache header
    gen_id: str


@dataclass
class Env:
    gw: RunningGateway
    up: OpenAIUpstream
    session: aiohttp.ClientSession

    async def ask(self, key: str, api: str = "chat", headers: dict[str, str] | None = None, **body: Any) -> Answer:
        payload = body_for(api, **body)
        h = {"Authorization": f"Bearer {key}", **(headers or {})}
        if api == "messages":
            h["anthropic-version"] = "2023-06-01"
        async with self.session.post(self.gw.url + PATHS[api], json=payload, headers=h) as r:
            raw = await r.text()
            assert r.status == 200, raw
            text = streamed_text(api, raw) if payload.get("stream") else text_of(api, json.loads(raw))
            return Answer(r.status, text, r.headers.get("X-KeepRouter-Cache"), r.headers["X-Generation-Id"])

    async def generation(self, key: str, gen_id: str) -> dict[str, Any]:
        h = {"Authorization": f"Bearer {key}"}
        for _ in range(50):  # the settle may land just after the answer
            async with self.session.get(self.gw.url + f"/api/v1/generation?id={gen_id}", headers=h) as r:
                if r.status == 200:
                    data: dict[str, Any] = (await r.json())["data"]
                    return data
            await asyncio.sleep(0.05)
        raise AssertionError(f"generation {gen_id} never recorded")

    async def admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        h = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with self.session.post(self.gw.url + path, json=body, headers=h) as r:
            data: dict[str, Any] = await r.json()
            assert r.status in (200, 201), data
            return data

    async def settled(self) -> None:
        """Wait for the answers being kept (their writes run after the answer)."""
        for _ in range(100):
            if not self.gw.server.app[STATE].gateway.settling:
                return
            await asyncio.sleep(0.02)


def config(db: str, openai_url: str, anthropic_url: str, **extra: Any) -> dict[str, Any]:
    return two_format_config(openai_url, anthropic_url, db, **extra)


@pytest_asyncio.fixture(name="env_for")
async def env_for_fixture(
    tmp_path: Path, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> AsyncIterator[Any]:
    """`async with env_for(**config extra) as env`: a gateway over the emulated upstreams."""

    @asynccontextmanager
    async def make(db: str | None = None, **extra: Any) -> AsyncIterator[Env]:
        cfg = config(db or sqlite_url(tmp_path), openai_upstream.url, anthropic_upstream.url, **extra)
        async with run_gateway(cfg) as gw, aiohttp.ClientSession() as session:
            yield Env(gw, openai_upstream, session)

    yield make


ON: dict[str, Any] = {"response_cache": {"ttl": 300}}


def answers(up: OpenAIUpstream, *texts: str) -> None:
    """The upstream's next answers, one per request, then the last one for good."""
    up.script(*(Reply(text=t) for t in texts[:-1]))
    up.default = Reply(text=texts[-1])


async def test_an_identical_request_is_answered_from_the_cache_for_free(env_for: Any) -> None:
    async with env_for(**ON) as env:
        key = (await env.gw.create_key("k"))["key"]
        answers(env.up, "Paris.", "Fresh.")
        first = await env.ask(key)
        await env.settled()
        again = await env.ask(key)
        assert (first.text, first.cache) == ("Paris.", "MISS")
        assert (again.text, again.cache) == ("Paris.", "HIT")
        assert len(env.up.requests) == 1  # the hit never reached the upstream
        gen, hit = await env.generation(key, first.gen_id), await env.generation(key, again.gen_id)
        assert gen["cached"] is False and gen["total_cost"] > 0
        assert hit["cached"] is True and hit["total_cost"] == 0 and hit["cache_discount"] == 0
        assert hit["tokens_completion"] == gen["tokens_completion"]  # the original answer's counts
        assert hit["provider_name"] == gen["provider_name"] == "oa"


@pytest.mark.parametrize(
    "change",
    [{"temperature": 0.2}, {"tools": [{"type": "function", "function": {"name": "other", "parameters": {}}}]}],
    ids=["temperature", "tool list"],
)
async def test_a_changed_request_misses(env_for: Any, change: dict[str, Any]) -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    async with env_for(**ON) as env:
        key = (await env.gw.create_key("k"))["key"]
        answers(env.up, "Paris.", "Fresh.")
        first = await env.ask(key, temperature=0.7, tools=[tool])
        await env.settled()
        changed = await env.ask(key, **{"temperature": 0.7, "tools": [tool], **change})
        assert (first.cache, changed.cache, changed.text) == ("MISS", "MISS", "Fresh.")
        assert len(env.up.requests) == 2


@pytest.mark.parametrize("api", ["chat", "messages", "responses"])
@pytest.mark.parametrize("kept_from", ["whole", "stream"])
async def test_a_hit_is_replayed_in_the_callers_api_streamed_or_not(env_for: Any, api: str, kept_from: str) -> None:
    """Kept from a whole answer and replayed as a stream, or kept from a stream and replayed whole."""
    async with env_for(**ON) as env:
        key = (await env.gw.create_key("k"))["key"]
        answers(env.up, "The capital is Paris.", "Fresh.")
        first = await env.ask(key, api, stream=kept_from == "stream")
        await env.settled()
        again = await env.ask(key, api, stream=kept_from == "whole")
        streamed_again = await env.ask(key, api, stream=True)
        assert first.text == again.text == streamed_again.text == "The capital is Paris."
        assert (first.cache, again.cache, streamed_again.cache) == ("MISS", "HIT", "HIT")
        assert len(env.up.requests) == 1
        hit = await env.generation(key, streamed_again.gen_id)
        assert hit["cached"] is True and hit["streamed"] is True and hit["total_cost"] == 0


async def test_the_cache_is_never_shared_across_owners(env_for: Any) -> None:
    async with env_for(**ON) as env:
        team = (await env.admin("/api/v1/teams", {"name": "Research"}))["data"]["id"]
        ada = (await env.admin("/api/v1/users", {"email": "ada@example.com", "team_id": team}))["data"]["id"]
        bob = (await env.admin("/api/v1/users", {"email": "bob@example.com", "team_id": team}))["data"]["id"]
        ada1 = (await env.admin("/api/v1/keys", {"name": "a1", "user_id": ada}))["key"]
        ada2 = (await env.admin("/api/v1/keys", {"name": "a2", "user_id": ada}))["key"]
        bob1 = (await env.admin("/api/v1/keys", {"name": "b1", "user_id": bob}))["key"]
        lone = (await env.gw.create_key("lone"))["key"]
        other = (await env.gw.create_key("other"))["key"]
        seen = []
        for key in (ada1, ada2, bob1, lone, other):
            seen.append((await env.ask(key)).cache)
            await env.settled()
        # two keys of one user share; another user (same team), and keys of no one, do not
        assert seen == ["MISS", "HIT", "MISS", "MISS", "MISS"]
        assert len(env.up.requests) == 4


async def test_no_store_bypasses_the_cache(env_for: Any) -> None:
    async with env_for(**ON) as env:
        key = (await env.gw.create_key("k"))["key"]
        answers(env.up, "One.", "Two.", "Three.")
        skipped = await env.ask(key, headers={"Cache-Control": "no-store"})
        await env.settled()
        first = await env.ask(key)
        await env.settled()
        bypass = await env.ask(key, headers={"Cache-Control": "no-store"})
        assert (skipped.cache, skipped.text) == (None, "One.")  # neither read nor kept
        assert (first.cache, first.text) == ("MISS", "Two.")
        assert (bypass.cache, bypass.text) == (None, "Three.")
        assert len(env.up.requests) == 3


async def test_an_answer_expires_after_its_ttl(env_for: Any) -> None:
    async with env_for(response_cache={"ttl": 1}) as env:
        key = (await env.gw.create_key("k"))["key"]
        answers(env.up, "Old.", "New.")
        await env.ask(key)
        await env.settled()
        assert (await env.ask(key)).cache == "HIT"
        await asyncio.sleep(1.1)
        late = await env.ask(key)
        assert (late.cache, late.text) == ("MISS", "New.")


async def test_off_by_default(env_for: Any) -> None:
    async with env_for() as env:
        key = (await env.gw.create_key("k"))["key"]
        answers(env.up, "One.", "Two.")
        first = await env.ask(key, headers={"X-KeepRouter-Cache": "true"})
        again = await env.ask(key, headers={"X-KeepRouter-Cache": "true"})
        assert (first.cache, again.cache, again.text) == (None, None, "Two.")
        assert env.gw.server.app[STATE].gateway.response_cache is None


async def test_one_models_cache_and_a_request_opting_in(env_for: Any) -> None:
    """Only `gpt-test` sets a TTL: `both-test` is cached only for a request that asks."""
    async with env_for(models=_with_ttl()) as env:
        key = (await env.gw.create_key("k"))["key"]
        answers(env.up, "A.", "B.", "C.")
        await env.ask(key)
        await env.settled()
        assert (await env.ask(key)).cache == "HIT"
        other = [(await env.ask(key, model="both-test")).cache]
        await env.settled()
        other.append((await env.ask(key, model="both-test")).cache)
        assert other == [None, None]
        asked = {"X-KeepRouter-Cache": "true"}
        opted = [(await env.ask(key, headers=asked, model="both-test")).cache]
        await env.settled()
        opted.append((await env.ask(key, headers=asked, model="both-test")).cache)
        assert opted == ["MISS", "HIT"]


def _with_ttl() -> dict[str, Any]:
    """two_format_config's models, `gpt-test` with a TTL of its own (the URLs here are unused)."""
    cfg = two_format_config("http://127.0.0.1:1", "http://127.0.0.1:1", "sqlite:///unused")
    models: dict[str, Any] = cfg["models"]
    models["gpt-test"]["response_cache"] = {"ttl": 60}
    return models


@pytest.mark.postgres
async def test_kept_in_postgresql(env_for: Any) -> None:
    async with pg_schema() as schema, env_for(db=f"{PG_URL}?search_path={schema}", **ON) as env:
        key = (await env.gw.create_key("k"))["key"]
        answers(env.up, "Paris.", "Fresh.")
        first = await env.ask(key)
        await env.settled()
        again = await env.ask(key, stream=True)
        assert (first.cache, again.cache, again.text) == ("MISS", "HIT", "Paris.")
        assert (await env.generation(key, again.gen_id))["cached"] is True


@pytest.mark.redis
async def test_kept_in_redis_and_shared_by_two_instances(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, openai_upstream: OpenAIUpstream,
    anthropic_upstream: AnthropicUpstream,
) -> None:  # fmt: skip
    client = await shared_client()
    prefix = unique_prefix()
    monkeypatch.setenv("KEEPROUTER_REDIS_PREFIX", prefix)
    answers(openai_upstream, "Paris.", "Fresh.")
    urls = (openai_upstream.url, anthropic_upstream.url)
    try:
        cfg1 = config(sqlite_url(tmp_path / "a"), *urls, redis=SHARED_URL, **ON)
        cfg2 = config(sqlite_url(tmp_path / "b"), *urls, redis=SHARED_URL, **ON)
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        async with run_gateway(cfg1) as gw1, run_gateway(cfg2) as gw2, aiohttp.ClientSession() as s:
            one, two = Env(gw1, openai_upstream, s), Env(gw2, openai_upstream, s)
            first = await one.ask(ADMIN_KEY)  # the same key on both (each has its own database)
            await one.settled()
            again = await two.ask(ADMIN_KEY, "messages", stream=True)
            assert (first.cache, again.cache, again.text) == ("MISS", "HIT", "Paris.")
            assert len(openai_upstream.requests) == 1
            kept = [k async for k in client.scan_iter(match=prefix + "rc:*")]
            assert len(kept) == 2  # the answer and the index
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()


async def test_a_hit_is_admitted_like_any_request(env_for: Any) -> None:
    """A key of the same user whose allowlist leaves the model out gets no answer, cached or not."""
    async with env_for(**ON) as env:
        ada = (await env.admin("/api/v1/users", {"email": "ada@example.com"}))["data"]["id"]
        full = (await env.admin("/api/v1/keys", {"name": "full", "user_id": ada}))["key"]
        narrow = await env.admin("/api/v1/keys", {"name": "narrow", "user_id": ada, "models": ["claude-test"]})
        assert (await env.ask(full)).cache == "MISS"
        await env.settled()
        h = {"Authorization": f"Bearer {narrow['key']}"}
        async with env.session.post(env.gw.url + PATHS["chat"], json=body_for("chat"), headers=h) as r:
            assert r.status == 403, await r.text()
            assert "X-KeepRouter-Cache" not in r.headers
        assert len(env.up.requests) == 1

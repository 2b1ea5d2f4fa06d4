"""Teams and users through the real HTTP gateway: the admin API, keys that belong to them, and their
budgets refusing requests at the wire (402 naming the budget) in each client API's shape."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio
from api.test_keys_api import MODEL, assert_error, call
from store.backends import store_url_fixture  # noqa: F401  (the store_url fixture: SQLite and PostgreSQL)
from support.gateway import RunningGateway, run_gateway, two_format_config
from support.raw import chat, get_json, wait_until
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, store_url: str
) -> AsyncIterator[RunningGateway]:
    async with run_gateway(two_format_config(openai_upstream.url, anthropic_upstream.url, store_url)) as g:
        yield g


async def test_teams_and_users_lifecycle(gw: RunningGateway) -> None:
    admin = gw.admin_key
    async with aiohttp.ClientSession() as s:
        body = {"name": "Research", "limit": 50, "limit_reset": "monthly", "models": ["gpt-test"], "rpm_limit": 60}
        status, created = await call(s, gw, "POST", "/api/v1/teams", admin, body)
        assert status == 201, created
        team = created["data"]
        assert team["id"].startswith("team_") and team["name"] == "Research" and team["limit"] == 50
        assert team["limit_reset"] == "monthly" and team["models"] == ["gpt-test"] and team["rpm_limit"] == 60
        assert team["limit_reset_at"].endswith("-01T00:00:00.000Z")  # the first of next month, UTC
        tid = team["id"]

        body = {"email": "Ada@Example.com", "team_id": tid, "limit": 5, "limit_reset": "weekly", "team_admin": True}
        status, created = await call(s, gw, "POST", "/api/v1/users", admin, body)
        assert status == 201, created
        user = created["data"]
        assert (user["email"], user["team_id"], user["team_admin"], user["limit"]) == ("Ada@Example.com", tid, True, 5)
        uid = user["id"]
        status, dup = await call(s, gw, "POST", "/api/v1/users", admin, {"email": "ada@example.COM"})
        assert status == 400 and dup["error"]["param"] == "email"

        status, listed = await call(s, gw, "GET", "/api/v1/users", admin)
        assert status == 200 and [(u["email"], u["team_id"]) for u in listed["data"]] == [("Ada@Example.com", tid)]
        status, listed = await call(s, gw, "GET", f"/api/v1/users?team_id={tid}", admin)
        assert [u["id"] for u in listed["data"]] == [uid]
        status, listed = await call(s, gw, "GET", "/api/v1/teams", admin)
        assert [t["id"] for t in listed["data"]] == [tid]

        status, got = await call(s, gw, "PATCH", f"/api/v1/teams/{tid}", admin, {"limit": None, "models": []})
        assert status == 200 and got["data"]["limit"] is None and got["data"]["models"] == []
        status, got = await call(s, gw, "PATCH", f"/api/v1/users/{uid}", admin, {"team_admin": False})
        assert status == 200 and got["data"]["team_admin"] is False
        status, got = await call(s, gw, "GET", f"/api/v1/users/{uid}", admin)
        assert status == 200 and got["data"]["team_admin"] is False

        # a key of the user's is in the user's team; another team_id is refused
        status, k = await call(s, gw, "POST", "/api/v1/keys", admin, {"name": "ada", "user_id": uid})
        assert status == 201, k
        assert (k["data"]["user_id"], k["data"]["team_id"]) == (uid, tid)
        status, err = await call(s, gw, "POST", "/api/v1/keys", admin, {"name": "x", "user_id": uid, "team_id": "t"})
        assert status == 400 and err["error"]["param"] == "team_id"
        status, err = await call(s, gw, "POST", "/api/v1/keys", admin, {"name": "x", "user_id": "user_nope"})
        assert status == 400 and err["error"]["param"] == "user_id"

        status, err = await call(s, gw, "DELETE", f"/api/v1/teams/{tid}", admin)
        assert status == 409, err  # it still has a member and a key
        status, _ = await call(s, gw, "DELETE", f"/api/v1/users/{uid}", admin)
        assert status == 200
        status, _ = await get_json(s, gw.url + "/api/v1/key", k["key"])
        assert status == 401, "deleting a user disables their keys"
        status, _ = await call(s, gw, "GET", f"/api/v1/users/{uid}", admin)
        assert status == 404


async def test_admin_only_and_unknown_fields_named(gw: RunningGateway) -> None:
    admin = gw.admin_key
    async with aiohttp.ClientSession() as s:
        plain = (await gw.create_key("plain"))["key"]
        body: dict[str, Any] | None
        for method, path, body in [
            ("POST", "/api/v1/teams", {"name": "t"}),
            ("GET", "/api/v1/teams", None),
            ("GET", "/api/v1/teams/team_x", None),
            ("PATCH", "/api/v1/teams/team_x", {"limit": 1}),
            ("DELETE", "/api/v1/teams/team_x", None),
            ("POST", "/api/v1/users", {"email": "a@b.c"}),
            ("GET", "/api/v1/users", None),
            ("GET", "/api/v1/users/user_x", None),
            ("PATCH", "/api/v1/users/user_x", {"limit": 1}),
            ("DELETE", "/api/v1/users/user_x", None),
        ]:
            status, err = await call(s, gw, method, path, plain, body)
            assert status == 403 and err["error"]["code"] == 403, (method, path, err)
        for path, body, field in [
            ("/api/v1/teams", {"name": "t", "budget": 5}, "budget"),
            ("/api/v1/users", {"email": "a@b.c", "limitt": 5}, "limitt"),
            ("/api/v1/keys", {"name": "k", "parallel": 2}, "parallel"),
        ]:
            status, err = await call(s, gw, "POST", path, admin, body)
            assert status == 400 and err["error"]["param"] == field and field in err["error"]["message"], err
        status, err = await call(s, gw, "POST", "/api/v1/keys", admin, {"name": "k", "include_byok_in_limit": True})
        assert status == 400 and err["error"]["param"] == "include_byok_in_limit"
        status, ok = await call(s, gw, "POST", "/api/v1/keys", admin, {"name": "k", "include_byok_in_limit": False})
        assert status == 201 and ok["data"]["include_byok_in_limit"] is False
        body = {"name": "k", "models": ["gpt-test"], "max_parallel_requests": 3, "limit": 1, "limit_reset": "daily"}
        status, ok = await call(s, gw, "POST", "/api/v1/keys", admin, body)
        assert status == 201 and ok["data"]["models"] == ["gpt-test"] and ok["data"]["max_parallel_requests"] == 3
        status, me = await get_json(s, gw.url + "/api/v1/key", ok["key"])
        assert status == 200 and me["data"]["limit_reset_at"].endswith("T00:00:00.000Z")
        assert {"usage_daily", "usage_weekly", "usage_monthly"} <= set(me["data"])


async def _owned_key(s: aiohttp.ClientSession, gw: RunningGateway, team: dict[str, Any], user: dict[str, Any]) -> str:
    admin = gw.admin_key
    _, t = await call(s, gw, "POST", "/api/v1/teams", admin, {"name": "t", **team})
    body = {"email": "u@example.com", "team_id": t["data"]["id"], **user}
    _, u = await call(s, gw, "POST", "/api/v1/users", admin, body)
    status, k = await call(s, gw, "POST", "/api/v1/keys", admin, {"name": "k", "user_id": u["data"]["id"]})
    assert status == 201, k
    key: str = k["key"]
    return key


async def test_a_team_or_user_budget_refuses_with_402_naming_it(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession() as s:
        for level, team, user in [("team", {"limit": 0}, {}), ("user", {"limit": 10}, {"limit": 0})]:
            key = await _owned_key(s, gw, team, user)
            for api in ("openai", "anthropic"):
                o = await chat(s, gw.url, key, api, MODEL, stream=api == "anthropic", max_tokens=64)
                assert_error(o, 402, "billing_error")
                assert f"{level.capitalize()} budget exceeded" in o.error["error"]["message"], o.error
            status, _ = await call(s, gw, "DELETE", "/api/v1/keys/" + _hash(key), gw.admin_key)
            assert status == 200
            users = (await call(s, gw, "GET", "/api/v1/users", gw.admin_key))[1]["data"]
            await call(s, gw, "DELETE", f"/api/v1/users/{users[0]['id']}", gw.admin_key)
        ok_key = await _owned_key(s, gw, {"limit": 1}, {"limit": 1})
        o = await chat(s, gw.url, ok_key, "openai", MODEL, stream=False, max_tokens=64)
        assert o.status == 200, o


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def test_model_allowlists_refuse_with_403_naming_the_model(gw: RunningGateway) -> None:
    admin = gw.admin_key
    async with aiohttp.ClientSession() as s:
        status, k = await call(s, gw, "POST", "/api/v1/keys", admin, {"name": "narrow", "models": ["claude-test"]})
        assert status == 201, k
        for api in ("openai", "anthropic"):
            o = await chat(s, gw.url, k["key"], api, MODEL, stream=api == "openai", max_tokens=16)
            assert_error(o, 403, "permission_error")
            assert f"'{MODEL}'" in o.error["error"]["message"] and "key" in o.error["error"]["message"], o.error
        # a team's allowlist binds its members' keys too (the lists intersect)
        key = await _owned_key(s, gw, {"models": ["claude-test"]}, {})
        o = await chat(s, gw.url, key, "openai", MODEL, stream=False, max_tokens=16)
        assert_error(o, 403, "permission_error")
        assert "team" in o.error["error"]["message"], o.error
        status, k = await call(s, gw, "POST", "/api/v1/keys", admin, {"name": "wide", "models": [MODEL]})
        o = await chat(s, gw.url, k["key"], "openai", MODEL, stream=False, max_tokens=16)
        assert o.status == 200, o


async def test_max_parallel_requests_refuses_with_429_and_frees_the_slot(
    gw: RunningGateway, openai_upstream: OpenAIUpstream
) -> None:
    admin = gw.admin_key
    async with aiohttp.ClientSession() as s:
        status, k = await call(s, gw, "POST", "/api/v1/keys", admin, {"name": "one", "max_parallel_requests": 1})
        assert status == 201, k
        key = k["key"]
        openai_upstream.script(Fault(delay_first_byte=1.5))
        slow = asyncio.ensure_future(chat(s, gw.url, key, "openai", MODEL, stream=True, max_tokens=16))
        await asyncio.sleep(0.5)  # the first request is in flight, waiting for its first byte
        for api in ("openai", "anthropic"):
            o = await chat(s, gw.url, key, api, MODEL, stream=False, max_tokens=16)
            assert_error(o, 429, "rate_limit_error")
            assert "parallel" in o.error["error"]["message"], o.error
        assert (await slow).status == 200
        o = await chat(s, gw.url, key, "anthropic", MODEL, stream=True, max_tokens=16)
        assert o.status == 200, o  # the slot was freed when the stream ended

        # a client that goes away frees its slot too
        openai_upstream.script(Fault(hang=True))
        left = asyncio.ensure_future(chat(s, gw.url, key, "openai", MODEL, stream=True, max_tokens=16))
        await asyncio.sleep(0.5)
        left.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await left

        async def admitted() -> bool:
            return (await chat(s, gw.url, key, "openai", MODEL, stream=False, max_tokens=16)).status == 200

        await wait_until(admitted, 10.0)


async def test_a_users_rpm_limit_counts_across_their_keys(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession() as s:
        key = await _owned_key(s, gw, {}, {"rpm_limit": 1})
        users = (await call(s, gw, "GET", "/api/v1/users", gw.admin_key))[1]["data"]
        _, other = await call(s, gw, "POST", "/api/v1/keys", gw.admin_key, {"name": "2nd", "user_id": users[0]["id"]})
        o = await chat(s, gw.url, key, "openai", MODEL, stream=False, max_tokens=16)
        assert o.status == 200, o
        o = await chat(s, gw.url, other["key"], "anthropic", MODEL, stream=False, max_tokens=16)
        assert_error(o, 429, "rate_limit_error")
        assert "rpm_limit of 1 requests per minute for this user" in o.error["error"]["message"], o.error

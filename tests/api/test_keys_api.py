"""The keys API through the real HTTP gateway: create (shown once, stored hashed), list, get, update,
delete; refused keys (401), non-admin callers (403) and keys out of credit (402) in each client API's
own error shape; `usage.cost` and `X-Generation-Id`; `keeprouter keys create` from the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from store.backends import store_url_fixture  # noqa: F401  (the store_url fixture: SQLite and PostgreSQL)
from support.gateway import RunningGateway, run_gateway, two_format_config
from support.raw import Outcome, chat, get_json, loads, wait_until
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream

from keeprouter.keys import KEY_PREFIX

APIS = ("openai", "anthropic")
MODEL = "gpt-test"


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, store_url: str
) -> AsyncIterator[RunningGateway]:
    async with run_gateway(two_format_config(openai_upstream.url, anthropic_upstream.url, store_url)) as g:
        yield g


async def call(
    s: aiohttp.ClientSession, gw: RunningGateway, method: str, path: str, key: str, body: Any = None
) -> tuple[int, Any]:
    async with s.request(method, gw.url + path, json=body, headers={"Authorization": f"Bearer {key}"}) as r:
        return r.status, loads(await r.text())


def assert_error(o: Outcome, status: int, anthropic_type: str) -> None:
    assert o.status == status, o
    if o.api == "openai":
        assert o.error["error"]["code"] == status, o.error
        assert isinstance(o.error["error"]["message"], str) and o.error["error"]["message"]
    else:
        assert o.error["type"] == "error", o.error
        assert o.error["error"]["type"] == anthropic_type, o.error


async def ask_both(s: aiohttp.ClientSession, gw: RunningGateway, key: str) -> list[Outcome]:
    return [
        await chat(s, gw.url, key, api, MODEL, stream=stream, max_tokens=64) for api in APIS for stream in (False, True)
    ]


async def test_key_lifecycle(gw: RunningGateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    admin = gw.admin_key
    async with aiohttp.ClientSession() as s:
        # create: the key is shown once, with its record; only its hash identifies it afterwards
        status, created = await call(s, gw, "POST", "/api/v1/keys", admin, {"name": "alice", "limit": 5})
        assert status == 201, created
        key, data = created["key"], created["data"]
        assert key.startswith("sk-kr-") and key.startswith(KEY_PREFIX) and len(key) > 40
        h = data["hash"]
        assert h == hashlib.sha256(key.encode()).hexdigest()
        assert (data["name"], data["limit"], data["usage"], data["disabled"]) == ("alice", 5, 0, False)
        assert key not in data["label"] and data["label"].startswith(key[:9]) and data["label"].endswith(key[-4:])

        # list and get: never the key
        status, listed = await call(s, gw, "GET", "/api/v1/keys", admin)
        assert status == 200 and [k["hash"] for k in listed["data"]] == [h]
        assert key not in str(listed) and "key" not in listed["data"][0]
        status, got = await call(s, gw, "GET", f"/api/v1/keys/{h}", admin)
        assert status == 200 and got["data"]["hash"] == h and key not in str(got)

        # the key works on both APIs, and knows itself
        for o in await ask_both(s, gw, key):
            assert o.status == 200 and o.completed, o

        async def used() -> Any:
            status, me = await get_json(s, gw.url + "/api/v1/key", key)
            assert status == 200 and me["data"]["hash"] == h and me["data"]["is_management_key"] is False
            return Decimal(me["data"]["usage"]) > 0

        await wait_until(used, 5.0)  # recorded just after each answer was written

        # PATCH name, limit, disabled
        status, upd = await call(s, gw, "PATCH", f"/api/v1/keys/{h}", admin, {"name": "bob", "limit": 7.5})
        assert status == 200 and (upd["data"]["name"], upd["data"]["limit"]) == ("bob", Decimal("7.5"))
        status, upd = await call(s, gw, "PATCH", f"/api/v1/keys/{h}", admin, {"disabled": True})
        assert status == 200 and upd["data"]["disabled"] is True
        for o in await ask_both(s, gw, key):
            assert_error(o, 401, "authentication_error")
        status, body = await get_json(s, gw.url + "/api/v1/key", key)
        assert status == 401 and body["error"]["code"] == 401
        status, upd = await call(s, gw, "PATCH", f"/api/v1/keys/{h}", admin, {"disabled": False})
        assert status == 200 and upd["data"]["disabled"] is False
        for o in await ask_both(s, gw, key):
            assert o.status == 200, o
        status, bad = await call(s, gw, "PATCH", f"/api/v1/keys/{h}", admin, {"limit": -1})
        assert status == 400 and bad["error"]["code"] == 400

        # DELETE: gone for every endpoint and both APIs
        status, deleted = await call(s, gw, "DELETE", f"/api/v1/keys/{h}", admin)
        assert status == 200 and deleted == {"deleted": True}
        for o in await ask_both(s, gw, key):
            assert_error(o, 401, "authentication_error")
        status, _ = await call(s, gw, "GET", f"/api/v1/keys/{h}", admin)
        assert status == 404
        status, _ = await call(s, gw, "DELETE", f"/api/v1/keys/{h}", admin)
        assert status == 404
        status, listed = await call(s, gw, "GET", "/api/v1/keys", admin)
        assert status == 200 and listed["data"] == []

    assert key not in caplog.text, "logs never hold a key"


async def test_unknown_and_missing_keys_get_401_in_each_apis_shape(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession() as s:
        for bad in (KEY_PREFIX + "x" * 43, "nonsense", "x" * 1000):
            for o in await ask_both(s, gw, bad):
                assert_error(o, 401, "authentication_error")
        for api in APIS:  # no key at all
            path = "/v1/chat/completions" if api == "openai" else "/v1/messages"
            body = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
            async with s.post(gw.url + path, json=body) as r:
                o = Outcome(api, False, r.status, error=loads(await r.text()))
            assert_error(o, 401, "authentication_error")


async def test_admin_endpoints_refuse_non_admin_keys(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession() as s:
        other = await gw.create_key("other")
        user = (await gw.create_key("user"))["key"]
        h = other["data"]["hash"]
        for method, path, body in [
            ("POST", "/api/v1/keys", {"name": "sneaky"}),
            ("GET", "/api/v1/keys", None),
            ("GET", f"/api/v1/keys/{h}", None),
            ("PATCH", f"/api/v1/keys/{h}", {"limit": 1000}),
            ("DELETE", f"/api/v1/keys/{h}", None),
        ]:
            status, err = await call(s, gw, method, path, user, body)
            assert status == 403, (method, path, err)
            assert err["error"]["code"] == 403
        status, listed = await call(s, gw, "GET", "/api/v1/keys", gw.admin_key)
        assert {k["name"] for k in listed["data"]} == {"other", "user"}, "nothing was changed"
        assert all(k["limit"] is None for k in listed["data"])


async def test_out_of_credit_is_402_in_each_apis_shape(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession() as s:
        broke = (await gw.create_key("broke", 0))["key"]
        for o in await ask_both(s, gw, broke):
            assert_error(o, 402, "billing_error")
        # a limit that covers one worst case (~130 prompt+output tokens at $1/$2 per 1M), not two at once
        tight = await gw.create_key("tight", 0.000_15)
        o = await chat(s, gw.url, tight["key"], "openai", MODEL, stream=False, max_tokens=64)
        assert o.status == 200, o

        async def settled() -> Any:
            status, me = await get_json(s, gw.url + "/api/v1/key", tight["key"])
            assert status == 200
            return me if me["data"]["usage"] else None

        me = await wait_until(settled, 5.0)  # the answer is written before it is recorded
        spent = Decimal(me["data"]["usage"])
        assert spent > 0 and Decimal(me["data"]["limit_remaining"]) == Decimal("0.00015") - spent
        o = await chat(s, gw.url, tight["key"], "anthropic", MODEL, stream=True, max_tokens=64)
        assert_error(o, 402, "billing_error")


async def test_cost_and_generation_id_on_every_answer(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession() as s:
        key = (await gw.create_key("ids", 1))["key"]
        for api in APIS:
            for model in ("gpt-test", "claude-test"):
                for stream in (False, True):
                    o = await chat(s, gw.url, key, api, model, stream=stream, max_tokens=64)
                    assert o.status == 200 and o.completed, o
                    assert o.header_id and o.header_id.startswith("gen-") and o.header_id == o.body_id, o
                    if api == "openai":
                        assert o.cost is not None and o.cost > 0, o
                    await asyncio.sleep(0.05)  # the record is written after the answer
                    status, gen = await get_json(s, f"{gw.url}/api/v1/generation?id={o.body_id}", key)
                    for _ in range(40):
                        if status == 200:
                            break
                        await asyncio.sleep(0.05)
                        status, gen = await get_json(s, f"{gw.url}/api/v1/generation?id={o.body_id}", key)
                    assert status == 200, gen
                    g = gen["data"]
                    assert (g["id"], g["model"], g["streamed"], g["api_type"]) == (o.body_id, model, stream, api)
                    if o.cost is not None:
                        assert Decimal(g["total_cost"]) == o.cost
        # another key cannot read this key's generations
        other = (await gw.create_key("nosy"))["key"]
        status, _ = await get_json(s, f"{gw.url}/api/v1/generation?id={o.body_id}", other)
        assert status == 404


async def test_raw_key_is_never_stored(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> None:
    db = tmp_path / "keys.db"
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, f"sqlite:///{db}")
    async with run_gateway(cfg) as g, aiohttp.ClientSession() as s:
        created = await g.create_key("secret", 1)
        key = created["key"]
        o = await chat(s, g.url, key, "openai", MODEL, stream=False, max_tokens=16)
        assert o.status == 200
        await asyncio.sleep(0.2)
    blob = _database_bytes(tmp_path, "keys.db")
    assert created["data"]["hash"].encode() in blob, "the hash is what is stored"
    assert key.encode() not in blob
    assert key.removeprefix(KEY_PREFIX).encode() not in blob


def _database_bytes(folder: Path, name: str) -> bytes:
    """The SQLite file and its -wal/-shm companions, concatenated."""
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.name.startswith(name))


async def test_cli_keys_create_prints_a_working_key(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> None:
    cfg = two_format_config(openai_upstream.url, anthropic_upstream.url, f"sqlite:///{tmp_path / 'cli.db'}")
    cfg_file = tmp_path / "keeprouter.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    async with run_gateway(cfg) as g:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "keeprouter", "--config", str(cfg_file), "keys", "create", "--name", "x",
            "--limit", "5", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        key = out.decode().strip()
        assert key.startswith(KEY_PREFIX) and "\n" not in key
        assert hashlib.sha256(key.encode()).hexdigest() in err.decode()
        async with aiohttp.ClientSession() as s:
            for o in await ask_both(s, g, key):
                assert o.status == 200 and o.completed, o
            status, me = await get_json(s, g.url + "/api/v1/key", key)
            assert status == 200
            assert (me["data"]["name"], me["data"]["limit"]) == ("x", 5)
            status, listed = await call(s, g, "GET", "/api/v1/keys", g.admin_key)
            assert [k["name"] for k in listed["data"]] == ["x"]


async def test_nul_bytes_never_reach_the_database(store_url: str) -> None:
    """PostgreSQL refuses NUL in text: such input is a 4xx, never a 500 (on both backends)."""
    from support.gateway import ADMIN_KEY

    async with run_gateway({"database": store_url, "admin_key": ADMIN_KEY}) as gw, aiohttp.ClientSession() as s:
        h = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with s.post(gw.url + "/api/v1/keys", json={"name": "a\x00b"}, headers=h) as r:
            assert r.status == 400
        async with s.get(gw.url + "/api/v1/keys/ab%00cd", headers=h) as r:
            assert r.status == 404
        async with s.get(gw.url + "/api/v1/generation", params={"id": "gen-\x00"}, headers=h) as r:
            assert r.status == 404


async def test_rate_limits_and_limit_reset_are_stored_and_shown(gw: RunningGateway) -> None:
    admin = gw.admin_key
    async with aiohttp.ClientSession() as s:
        body = {"name": "limited", "limit": 2, "limit_reset": "weekly", "rpm_limit": 30, "tpm_limit": 100_000}
        status, created = await call(s, gw, "POST", "/api/v1/keys", admin, body)
        assert status == 201, created
        key, data = created["key"], created["data"]
        assert (data["limit_reset"], data["rpm_limit"], data["tpm_limit"]) == ("weekly", 30, 100_000)
        status, plain = await call(s, gw, "POST", "/api/v1/keys", admin, {"name": "plain"})
        assert status == 201
        assert (plain["data"]["limit_reset"], plain["data"]["rpm_limit"], plain["data"]["tpm_limit"]) == (None,) * 3

        status, me = await get_json(s, gw.url + "/api/v1/key", key)
        assert status == 200 and (me["data"]["rpm_limit"], me["data"]["tpm_limit"]) == (30, 100_000)
        assert me["data"]["limit_reset"] == "weekly"
        status, listed = await call(s, gw, "GET", "/api/v1/keys", admin)
        shown = {k["name"]: (k["limit_reset"], k["rpm_limit"], k["tpm_limit"]) for k in listed["data"]}
        assert shown == {"limited": ("weekly", 30, 100_000), "plain": (None, None, None)}

        h = data["hash"]
        patch = {"rpm_limit": None, "tpm_limit": 5, "limit_reset": "daily"}
        status, upd = await call(s, gw, "PATCH", f"/api/v1/keys/{h}", admin, patch)
        assert status == 200, upd
        assert (upd["data"]["rpm_limit"], upd["data"]["tpm_limit"], upd["data"]["limit_reset"]) == (None, 5, "daily")
        status, upd = await call(s, gw, "PATCH", f"/api/v1/keys/{h}", admin, {"name": "renamed"})
        assert status == 200 and (upd["data"]["tpm_limit"], upd["data"]["limit_reset"]) == (5, "daily"), "omitted stay"
        status, got = await call(s, gw, "GET", f"/api/v1/keys/{h}", admin)
        assert (got["data"]["rpm_limit"], got["data"]["tpm_limit"], got["data"]["limit_reset"]) == (None, 5, "daily")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "rpm_limt": 30}, "rpm_limt"),  # a misspelt limit is never dropped silently
        ({"name": "x", "rate_limit": {"requests": 30}}, "rate_limit"),
        ({"name": "x", "rpm_limit": "30"}, "rpm_limit"),
        ({"name": "x", "rpm_limit": 0}, "rpm_limit"),
        ({"name": "x", "rpm_limit": 2.5}, "rpm_limit"),
        ({"name": "x", "tpm_limit": True}, "tpm_limit"),
        ({"name": "x", "tpm_limit": -1}, "tpm_limit"),
        ({"name": "x", "tpm_limit": 2**40}, "tpm_limit"),
        ({"name": "x", "limit_reset": "hourly"}, "limit_reset"),
        ({"name": "x", "limit": "lots"}, "limit"),
        ({"name": "x", "expires_at": 12}, "expires_at"),
        ({"name": "x", "include_byok_in_limit": "yes"}, "include_byok_in_limit"),
        ({"name": 5}, "name"),
        ({"limit": 5}, "name"),
    ],
)
async def test_create_refuses_unknown_fields_and_wrong_types_naming_the_field(
    gw: RunningGateway, body: dict[str, Any], field: str
) -> None:
    async with aiohttp.ClientSession() as s:
        status, err = await call(s, gw, "POST", "/api/v1/keys", gw.admin_key, body)
        assert status == 400, err
        assert err["error"]["code"] == 400 and err["error"]["type"] == "invalid_request_error"
        assert field in err["error"]["message"] and err["error"]["param"] == field
        status, listed = await call(s, gw, "GET", "/api/v1/keys", gw.admin_key)
        assert listed["data"] == [], "nothing was created"


async def test_update_refuses_unknown_fields_and_wrong_types_and_changes_nothing(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession() as s:
        made = await gw.create_key("keep")
        h = made["data"]["hash"]
        for body, field in [
            ({"rpm_limit": 10, "tpm": 5}, "tpm"),
            ({"usage": 0}, "usage"),  # a read-only field of the record is not writable
            ({"rpm_limit": "ten"}, "rpm_limit"),
            ({"tpm_limit": [1]}, "tpm_limit"),
            ({"disabled": "true"}, "disabled"),
            ({"limit_reset": 7}, "limit_reset"),
        ]:
            status, err = await call(s, gw, "PATCH", f"/api/v1/keys/{h}", gw.admin_key, body)
            assert status == 400, (body, err)
            assert field in err["error"]["message"] and err["error"]["param"] == field, err
        status, got = await call(s, gw, "GET", f"/api/v1/keys/{h}", gw.admin_key)
        assert (got["data"]["rpm_limit"], got["data"]["disabled"], got["data"]["limit_reset"]) == (None, False, None)


async def test_cli_sets_and_clears_rate_limits(tmp_path: Path) -> None:
    cfg_file = tmp_path / "keeprouter.yaml"
    cfg_file.write_text(yaml.safe_dump({"database": f"sqlite:///{tmp_path / 'cli.db'}", "admin_key": "sk-kr-admin-x"}))

    async def cli(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "keeprouter", "--config", str(cfg_file), "keys", *args,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    rc, out, err = await cli("create", "--name", "c", "--rpm-limit", "30", "--tpm-limit", "1000")
    assert rc == 0, err
    h = hashlib.sha256(out.strip().encode()).hexdigest()
    rc, out, err = await cli("list")
    data = json.loads(out)["data"]
    mine = next(k for k in data if k["hash"] == h)
    assert (mine["rpm_limit"], mine["tpm_limit"], mine["limit_reset"]) == (30, 1000, None)
    rc, out, err = await cli("update", h, "--rpm-limit", "none", "--tpm-limit", "50", "--limit-reset", "monthly")
    assert rc == 0, err
    assert (json.loads(out)["data"]["rpm_limit"], json.loads(out)["data"]["tpm_limit"]) == (None, 50)
    assert json.loads(out)["data"]["limit_reset"] == "monthly"
    rc, out, err = await cli("update", h, "--rpm-limit", "0")
    assert rc == 1 and "rpm_limit" in err

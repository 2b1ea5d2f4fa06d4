"""Every route class x every credential form (reliability B3.6), through the real in-process gateway.

The console's routes are checked the same way with sessions instead of keys: see
tests/web/test_console_matrix.py.

Pinned decisions:
- Keys come from `Authorization: Bearer KEY` (scheme case-insensitive, extra spaces ignored) or
  `x-api-key: KEY`; both present with DIFFERENT keys is a 401 ("conflicting"), never one picked.
- A key in the query string (`?key=`, `?api_key=`) is never accepted.
- Admin routes answer 403 to a valid non-admin key; inference and self-service routes accept any
  live key. Only the catalogue, health and the public rankings need no key (route-table test).
- No secret (admin key, user keys, upstream provider keys) reaches a log record, an error body or
  the database file; upstream errors that echo the provider key are redacted.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault

from keeprouter.api.http import STATE
from keeprouter.store.base import KeyPatch
from keeprouter.web.routes import WEB

TIMEOUT = aiohttp.ClientTimeout(total=10)
ANTHROPIC_VERSION = {"anthropic-version": "2023-06-01"}
NO_SUCH_HASH = "0" * 64


@dataclass
class Keys:
    user: str
    user_hash: str
    disabled: str
    deleted: str
    expired: str


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    async with run_gateway(two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))) as g:
        yield g


async def admin(gw: RunningGateway, method: str, path: str, body: Any = None) -> Any:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
        async with s.request(
            method, gw.url + path, json=body, headers={"Authorization": f"Bearer {gw.admin_key}"}
        ) as r:
            assert r.status < 300, await r.text()
            return await r.json()


@pytest_asyncio.fixture
async def keys(gw: RunningGateway) -> Keys:
    made = [await admin(gw, "POST", "/api/v1/keys", {"name": n}) for n in ("user", "disabled", "deleted", "expired")]
    user, disabled, deleted, expired = ((m["key"], m["data"]["hash"]) for m in made)
    await admin(gw, "PATCH", f"/api/v1/keys/{disabled[1]}", {"disabled": True})
    await admin(gw, "DELETE", f"/api/v1/keys/{deleted[1]}")
    # The API refuses an expiry in the past, so this key's expiry is moved there in the store.
    store = gw.server.app[STATE].store
    assert await store.update_key(expired[1], KeyPatch(expires_at=time.time() - 60), time.time()) is not None
    return Keys(user[0], user[1], disabled[0], deleted[0], expired[0])


# ---- the routes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    api: str  # the error format its errors come in
    body: Any = None
    admin_only: bool = False
    ok: int = 200  # the status an authorised caller gets
    text: bool = False  # its success answer is text (Prometheus), its errors still JSON

    def url(self, gw: RunningGateway, user_hash: str) -> str:
        return gw.url + self.path.replace("{hash}", user_hash)


CHAT = {"model": "gpt-test", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
RESPONSE = {"model": "claude-test", "max_output_tokens": 8, "input": "hi"}
ROUTES = [
    Route("chat", "POST", "/v1/chat/completions", "openai", CHAT),
    Route("chat-api", "POST", "/api/v1/chat/completions", "openai", CHAT),
    Route("messages", "POST", "/v1/messages", "anthropic", {**CHAT, "model": "claude-test"}),
    Route("messages-root", "POST", "/messages", "anthropic", {**CHAT, "model": "claude-test"}),
    Route("count_tokens", "POST", "/v1/messages/count_tokens", "anthropic", {**CHAT, "model": "claude-test"}),
    Route("responses", "POST", "/v1/responses", "openai", RESPONSE),
    Route("responses-root", "POST", "/responses", "openai", RESPONSE),
    Route("responses-api", "POST", "/api/v1/responses", "openai", RESPONSE),
    Route("key", "GET", "/api/v1/key", "openai"),
    Route("credits", "GET", "/api/v1/credits", "openai"),
    Route("generation", "GET", "/api/v1/generation?id=gen-none", "openai", ok=404),
    Route("keys-list", "GET", "/api/v1/keys", "openai", admin_only=True),
    Route("keys-create", "POST", "/api/v1/keys", "openai", {"name": "made"}, admin_only=True, ok=201),
    Route("keys-get", "GET", "/api/v1/keys/{hash}", "openai", admin_only=True),
    Route("keys-update", "PATCH", "/api/v1/keys/{hash}", "openai", {"name": "renamed"}, admin_only=True),
    Route("keys-delete", "DELETE", f"/api/v1/keys/{NO_SUCH_HASH}", "openai", admin_only=True, ok=404),
    Route("metrics", "GET", "/metrics", "openai", admin_only=True, text=True),
]


async def call(
    gw: RunningGateway, keys: Keys, route: Route, headers: dict[str, str], query: str = ""
) -> tuple[int, Any]:
    url = route.url(gw, keys.user_hash)
    if query:
        url += ("&" if "?" in url else "?") + query
    h = {**ANTHROPIC_VERSION, **headers} if route.api == "anthropic" else headers
    data = None if route.body is None else orjson.dumps(route.body)
    if data is not None:
        h = {**h, "Content-Type": "application/json"}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
        async with s.request(route.method, url, data=data, headers=h) as r:
            text = await r.text()
            if route.text and r.status == 200:
                assert r.headers["Content-Type"].startswith("text/plain"), r.headers
                return r.status, text
            assert r.headers.get("Content-Type", "").startswith("application/json"), (r.status, text)
            return r.status, orjson.loads(text)


def error_of(api: str, status: int, body: Any) -> tuple[str, str]:
    """(type, message) of an error body, checked to be in `api`'s shape."""
    if api == "openai":
        err = body["error"]
        assert err["code"] == status, body
    else:
        assert body["type"] == "error", body
        err = body["error"]
    assert isinstance(err["message"], str) and err["message"], body
    return err["type"], err["message"]


def assert_refused(route: Route, status: int, body: Any, want: int = 401, says: str = "") -> None:
    assert status == want, (route.name, status, body)
    kind, message = error_of(route.api, status, body)
    assert kind == {401: "authentication_error", 403: "permission_error"}[want], (route.name, body)
    assert says.lower() in message.lower(), (route.name, message)


def bad_credentials(keys: Keys) -> list[tuple[str, dict[str, str], str]]:
    """(name, headers, what the message must say) for every credential form that must be a 401."""
    return [
        ("none", {}, "missing"),
        ("empty bearer", {"Authorization": "Bearer "}, "missing"),
        ("bearer alone", {"Authorization": "Bearer"}, "missing"),
        ("basic", {"Authorization": "Basic dXNlcjpwYXNz"}, "missing"),
        ("other scheme, real key", {"Authorization": f"Token {keys.user}"}, "missing"),
        ("key without scheme", {"Authorization": keys.user}, "missing"),
        ("empty x-api-key", {"x-api-key": ""}, "missing"),
        ("unknown", {"Authorization": "Bearer sk-kr-v1-not-a-key"}, "invalid"),
        ("unknown x-api-key", {"x-api-key": "sk-kr-v1-not-a-key"}, "invalid"),
        ("too long", {"Authorization": "Bearer " + "k" * 5000}, "invalid"),
        ("disabled", {"Authorization": f"Bearer {keys.disabled}"}, "disabled"),
        ("deleted", {"Authorization": f"Bearer {keys.deleted}"}, "invalid"),
        ("expired", {"x-api-key": keys.expired}, "expired"),
        ("conflicting", {"Authorization": f"Bearer {keys.user}", "x-api-key": "sk-kr-v1-other"}, "conflicting"),
        ("conflicting, admin in x-api-key", {"Authorization": f"Bearer {keys.user}", "x-api-key": ADMIN}, "conflict"),
        ("conflicting, admin in bearer", {"Authorization": f"Bearer {ADMIN}", "x-api-key": keys.user}, "conflict"),
    ]


ADMIN = "sk-kr-admin-test"


def good_credentials(key: str) -> list[tuple[str, dict[str, str]]]:
    return [
        ("bearer", {"Authorization": f"Bearer {key}"}),
        ("lowercase scheme, extra spaces", {"authorization": f"bearer   {key}  "}),
        ("uppercase scheme", {"Authorization": f"BEARER {key}"}),
        ("x-api-key", {"x-api-key": key}),
        ("both, the same key", {"Authorization": f"Bearer {key}", "x-api-key": key}),
        ("both, one padded with spaces", {"Authorization": f"Bearer {key}", "x-api-key": f" {key} "}),
    ]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
async def test_auth_matrix(gw: RunningGateway, keys: Keys, route: Route) -> None:
    assert gw.admin_key == ADMIN
    for name, headers, says in bad_credentials(keys):
        status, body = await call(gw, keys, route, headers)
        assert_refused(route, status, body, 401, says)
        assert keys.user not in orjson.dumps(body).decode(), name  # never echoed back

    for q in (f"key={keys.user}", f"api_key={keys.user}", f"key={ADMIN}", f"access_token={ADMIN}"):
        status, body = await call(gw, keys, route, {}, query=q)
        assert_refused(route, status, body, 401, "missing")

    for name, headers in good_credentials(keys.user):
        status, body = await call(gw, keys, route, headers)
        if route.admin_only:
            assert_refused(route, status, body, 403, "admin")
        else:
            assert status == route.ok, (route.name, name, status, body)

    for name, headers in good_credentials(ADMIN):
        status, body = await call(gw, keys, route, headers)
        assert status == route.ok, (route.name, name, status, body)


async def raw(gw: RunningGateway, request: bytes) -> bytes:
    port = gw.server.port
    assert port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(5):
            return await reader.read(65536)
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("path", "api"), [("/v1/chat/completions", "openai"), ("/v1/messages/count_tokens", "anthropic"),
                      ("/api/v1/key", "openai")]
)  # fmt: skip
@pytest.mark.parametrize(
    "header",
    [b"Authorization: Bearer \xff\xfe", b"x-api-key: \xff", b"Authorization: Bearer sk-kr-admin-test\xc3\xa9",
     b"x-api-key: sk-kr-\x01admin"],
)  # fmt: skip
async def test_undecodable_or_control_bytes_in_keys_are_401(
    gw: RunningGateway, path: str, api: str, header: bytes
) -> None:
    body = orjson.dumps({"model": "claude-test", "messages": [{"role": "user", "content": "hi"}]})
    method = b"GET" if path == "/api/v1/key" else b"POST"
    head = [method + b" " + path.encode() + b" HTTP/1.1", b"Host: 127.0.0.1", header,
            b"Content-Type: application/json", b"Content-Length: %d" % len(body), b"Connection: close"]  # fmt: skip
    answer = await raw(gw, b"\r\n".join(head) + b"\r\n\r\n" + body)
    status = int(answer.split(b" ", 2)[1])
    if status == 400 and b"Content-Type: text/plain" in answer:  # aiohttp's parser refused the header line
        return
    assert status == 401, answer[:300]
    error_of(api, 401, orjson.loads(answer.partition(b"\r\n\r\n")[2]))


async def test_over_limit_key_gets_402_in_the_callers_format(gw: RunningGateway) -> None:
    made = await admin(gw, "POST", "/api/v1/keys", {"name": "broke", "limit": 0})
    for route in [*ROUTES[:3], *(r for r in ROUTES if r.name.startswith("responses"))]:
        status, body = await call(gw, Keys(made["key"], "", "", "", ""), route, {"x-api-key": made["key"]})
        assert status == 402, (route.name, body)
        error_of(route.api, 402, body)


# ---- the route table: nothing ships without auth ---------------------------------------------

# Routes that need no key, as (method, path pattern). Anything else must answer 401 without one.
PUBLIC = {
    ("GET", "/"),
    ("GET", "/health"),
    ("GET", "/health/live"),
    ("GET", "/health/liveness"),
    ("GET", "/health/liveliness"),
    ("GET", "/health/ready"),
    ("GET", "/health/readiness"),
    ("GET", "/api/hello"),
    ("GET", "/v1/models"),
    ("GET", "/api/v1/models"),
    ("GET", "/v1/models/{id}"),
    ("GET", "/api/v1/models/{id}"),
    ("GET", "/v1/models/{id}/endpoints"),
    ("GET", "/api/v1/models/{id}/endpoints"),
    ("GET", "/v1/models/{id}/uptime"),
    ("GET", "/api/v1/models/{id}/uptime"),
    ("GET", "/api/v1/datasets/app-rankings"),  # public on OpenRouter too
    ("GET", "/openapi.json"),
    # the pages (keeprouter.web): the public catalogue, each also as Markdown
    *(
        ("GET", path + suffix)
        for path in (
            "/models",
            "/providers",
            "/rankings",
            "/docs/quickstart",
            "/use-cases/openai-sdk",
            "/use-cases/anthropic-sdk",
            "/use-cases/claude-code",
        )
        for suffix in ("", ".md")
    ),
    ("GET", "/index.md"),
    ("GET", "/.md"),
    ("GET", "/models/{id}"),
    ("GET", "/providers/{id}"),
    ("GET", "/llms.txt"),
    ("GET", "/static/{file}"),
}


def _route_table(gw: RunningGateway) -> list[tuple[str, str]]:
    out = []
    for r in gw.server.app.router.routes():
        info = r.resource.get_info() if r.resource is not None else {}
        pattern = info.get("path") or info.get("formatter")
        assert pattern, r
        out.append((r.method, re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", pattern)))
    return out


async def test_every_route_not_on_the_public_list_needs_a_key(gw: RunningGateway) -> None:
    table = _route_table(gw)
    assert ("POST", "/v1/chat/completions") in table and ("GET", "/api/v1/keys") in table
    async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
        for method, pattern in table:
            static = gw.server.app[WEB].renderer.static["site.css"].url.removeprefix("/static/")
            url = gw.url + pattern.replace("/providers/{id}", "/providers/oa").replace("{file}", static)
            url = url.replace("{id}", "gpt-test").replace("{hash}", NO_SUCH_HASH)
            url = re.sub(r"\{\w+\}", "x", url)
            async with s.request(method, url, data=b"{}" if method in ("POST", "PATCH", "PUT") else None) as r:
                public = (method, pattern) in PUBLIC or (method == "HEAD" and ("GET", pattern) in PUBLIC)
                if pattern == "/login":  # the sign-in page: a form; a post without the form's token is refused
                    assert r.status == (200 if method in ("GET", "HEAD") else 403), (method, pattern, r.status)
                elif pattern.startswith("/auth/oidc/"):  # sign-in with a provider: not configured here
                    assert r.status == 404, (method, pattern, r.status)
                elif pattern == "/logout" or pattern.startswith("/console"):  # no session: to the sign-in page
                    assert (r.status, r.url.path) == (200, "/login"), (method, pattern, r.status)
                elif public:
                    assert r.status < 400, (method, pattern, r.status)
                else:
                    assert r.status == 401, f"{method} {pattern} answered {r.status} without a key"
                    assert r.headers.get("Content-Type", "").startswith("application/json")
                    await r.json()


async def test_public_routes_need_no_key(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
        async with s.head(gw.url + "/") as r:
            assert r.status == 200
        for path in ("/health", "/v1/models", "/api/v1/models", "/api/v1/models/gpt-test/endpoints",
                     "/api/v1/models/gpt-test/uptime"):  # fmt: skip
            async with s.get(gw.url + path) as r:
                assert r.status == 200, path


# ---- secrets ---------------------------------------------------------------------------------

UPSTREAM_KEYS = ("sk-up-openai", "sk-up-anthropic")


def database_bytes(directory: Path) -> bytes:
    """The SQLite database with its WAL and shared-memory files, as raw bytes."""
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.name.startswith("kr.db"))


def creds(key: str, kind: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if kind == "bearer" else {"x-api-key": key, **ANTHROPIC_VERSION}


async def test_no_secret_in_logs_error_bodies_or_the_database(
    openai_upstream: OpenAIUpstream,
    anthropic_upstream: AnthropicUpstream,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []  # everything clients saw, except the one answer that hands a new key out
    config = two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))
    async with run_gateway(config) as gw, aiohttp.ClientSession(timeout=TIMEOUT) as s:

        async def send(method: str, path: str, key: str, body: Any = None, *, kind: str = "bearer") -> tuple[int, Any]:
            async with s.request(method, gw.url + path, json=body, headers=creds(key, kind)) as r:
                text = await r.text()
                bodies.append(text)
                return r.status, orjson.loads(text)

        made = await admin(gw, "POST", "/api/v1/keys", {"name": "secret-test"})
        user = made["key"]
        chat = {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
        assert (await send("POST", "/v1/chat/completions", user, {**chat, "model": "gpt-test"}))[0] == 200
        assert (await send("POST", "/v1/messages", user, {**chat, "model": "claude-test"}, kind="x"))[0] == 200
        assert (await send("POST", "/v1/chat/completions", gw.admin_key, {**chat, "model": "claude-test"}))[0] == 200
        assert (await send("GET", "/api/v1/key", user))[0] == 200
        assert (await send("GET", "/api/v1/keys", gw.admin_key))[0] == 200
        assert (await send("GET", "/api/v1/keys", user))[0] == 403
        assert (await send("GET", "/api/v1/key", user + "x"))[0] == 401
        assert (await send("POST", "/v1/messages", gw.admin_key + "x", chat, kind="x"))[0] == 401

        # Upstreams that refuse our key and echo it back, as OpenAI and others do.
        echo_oa = {"error": {"message": "Incorrect API key provided: sk-up-openai.", "type": "invalid_request_error"}}
        echo_an = {"type": "error", "error": {"type": "authentication_error", "message": "bad key sk-up-anthropic"}}
        openai_upstream.script(Fault(status=401, body=echo_oa), Fault(status=403, body=echo_oa))
        anthropic_upstream.script(Fault(status=401, body=echo_an))
        status, body = await send("POST", "/v1/chat/completions", user, {**chat, "model": "gpt-test"})
        assert status == 502 and "[REDACTED]" in body["error"]["message"], body
        status, body = await send("POST", "/v1/messages", user, {**chat, "model": "claude-test"}, kind="x")
        assert status == 502 and "[REDACTED]" in body["error"]["message"], body
        # one endpoint refuses, the other answers: the refusal is recorded with the generation
        ordered = {**chat, "model": "both-test", "provider": {"order": ["oa", "an"]}}  # oa first, always
        status, body = await send("POST", "/v1/chat/completions", user, ordered)
        assert status == 200, body
        gen_id = body["id"]
        # in-stream errors that echo the key
        openai_upstream.script(Fault(stream_error_after=1, body={"code": 500, "message": "oops sk-up-openai"}))
        anthropic_upstream.script(
            Fault(stream_error_after=1, body={"type": "overloaded_error", "message": "sk-up-anthropic busy"})
        )
        for path, model, kind in (("/v1/chat/completions", "gpt-test", "bearer"), ("/v1/messages", "claude-test", "x")):
            body = {**chat, "model": model, "stream": True}
            async with s.post(gw.url + path, json=body, headers=creds(user, kind)) as r:
                assert r.status == 200
                bodies.append(await r.text())
            assert "[REDACTED]" in bodies[-1], bodies[-1]

        async def recorded() -> Any:
            status, body = await send("GET", f"/api/v1/generation?id={gen_id}", user)
            return body if status == 200 else None

        for _ in range(100):  # the settle is written after the answer
            if gen := await recorded():
                break
            await asyncio.sleep(0.05)
        assert gen and gen["data"]["provider_responses"], gen

    secrets = (gw.admin_key, user, *UPSTREAM_KEYS)
    for text in bodies:
        for secret in secrets:
            assert secret not in text, f"{secret} in a response: {text[:300]}"
    for rec in caplog.records:
        line = rec.getMessage() + (rec.exc_text or "") + str(rec.args or "")
        for secret in secrets:
            assert secret not in line, f"{secret} logged: {line[:300]}"
    dumped = database_bytes(tmp_path)
    assert made["data"]["hash"].encode() in dumped  # the key is stored, as its hash only
    for secret in secrets:
        assert secret.encode() not in dumped, f"{secret} stored in the database"

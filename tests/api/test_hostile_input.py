"""Hostile request bodies (reliability B3.5) on both chat APIs, through the real in-process gateway:
every one gets a clear 4xx in the caller's own error format naming the field, never a 5xx, a stack
trace or a hang.

Pinned decisions:
- The body is JSON whatever its Content-Type says (text/plain, form, none), as OpenAI accepts.
- Duplicate keys: the last one wins (RFC 8259 leaves it open; Python's json and OpenAI do the same).
- NUL characters inside JSON strings are valid JSON and are accepted; raw control bytes are not.
- A body over 32 MiB is a 413 without being read in full: at once when its Content-Length says so.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream

from keeprouter.api import http
from keeprouter.app import MAX_BODY

APIS = ("openai", "anthropic")
PATH = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
MODEL = {"openai": "gpt-test", "anthropic": "claude-test"}
TIMEOUT = aiohttp.ClientTimeout(total=10)


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    async with run_gateway(two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))) as g:
        yield g


def headers(gw: RunningGateway, api: str, content_type: str | None = "application/json") -> dict[str, str]:
    h = {"Authorization": f"Bearer {gw.admin_key}"}
    if api == "anthropic":
        h["anthropic-version"] = "2023-06-01"
    if content_type:
        h["Content-Type"] = content_type
    return h


def valid(api: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL[api], "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    body.update(fields)
    return body


async def post(
    gw: RunningGateway, api: str, body: bytes | dict[str, Any], content_type: str | None = "application/json"
) -> tuple[int, str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()  # ints beyond 64 bits too
    data = io.BytesIO(raw) if len(raw) > 1 << 20 else raw  # (aiohttp warns about large bytes bodies)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
        async with s.post(gw.url + PATH[api], data=data, headers=headers(gw, api, content_type)) as r:
            text = await r.text()
            ctype = r.headers.get("Content-Type", "")
            return r.status, ctype, (orjson.loads(text) if ctype.startswith("application/json") else text)


def error_message(api: str, status: int, body: Any) -> str:
    """The message of an error body, after checking it is in `api`'s own shape for `status`."""
    assert isinstance(body, dict), body
    if api == "openai":
        err = body["error"]
        assert err["code"] == status, body
        assert isinstance(err["type"], str) and err["type"], body
    else:
        assert body["type"] == "error", body
        err = body["error"]
        assert isinstance(err["type"], str) and err["type"], body
    message = err["message"]
    assert isinstance(message, str) and message, body
    assert "Traceback" not in message and 'File "' not in message, message
    return message


async def expect_error(gw: RunningGateway, api: str, body: bytes | dict[str, Any], status: int, names: str) -> str:
    got, ctype, data = await post(gw, api, body)
    assert got == status, (got, data)
    assert ctype.startswith("application/json")
    message = error_message(api, status, data)
    assert names.lower() in message.lower(), f"{names!r} not named in {message!r}"
    return message


def raw_body(api: str, messages_json: bytes = b'[{"role":"user","content":"hi"}]', extra: bytes = b"") -> bytes:
    return b'{"model":"' + MODEL[api].encode() + b'","max_tokens":16' + extra + b',"messages":' + messages_json + b"}"


# ---- malformed JSON ---------------------------------------------------------------------------

MALFORMED: list[tuple[str, Any]] = [
    ("deep_array", lambda api: raw_body(api, b"[" * 10_000 + b"]" * 10_000)),
    ("deep_object", lambda api: b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
    ("lone_surrogate_escape", lambda api: raw_body(api, b'[{"role":"user","content":"a\\ud800b"}]')),
    ("lone_low_surrogate_escape", lambda api: raw_body(api, b'[{"role":"user","content":"\\udc00"}]')),
    ("surrogate_as_utf8_bytes", lambda api: raw_body(api, b'[{"role":"user","content":"\xed\xa0\x80"}]')),
    ("invalid_utf8", lambda api: raw_body(api, b'[{"role":"user","content":"\xff\xfe"}]')),
    ("truncated_utf8", lambda api: raw_body(api, b'[{"role":"user","content":"\xc3"}]')),
    ("raw_nul_byte", lambda api: raw_body(api, b'[{"role":"user","content":"a\x00b"}]')),
    ("truncated", lambda api: raw_body(api)[:-5]),
    ("trailing_garbage", lambda api: raw_body(api) + b"}{"),
    ("infinite_float", lambda api: raw_body(api, extra=b',"temperature":1e999')),
    ("nan", lambda api: raw_body(api, extra=b',"temperature":NaN')),
    ("bom", lambda api: b"\xef\xbb\xbf" + raw_body(api)),
]


@pytest.mark.parametrize("api", APIS)
async def test_malformed_json_is_a_400_in_the_callers_format(gw: RunningGateway, api: str) -> None:
    for name, make in MALFORMED:
        got, _, data = await post(gw, api, make(api))
        assert got == 400, (name, got, data)
        assert "json" in error_message(api, 400, data).lower(), (name, data)


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    ("body", "names"),
    [(b"", "empty"), (b"   ", "json"), (b"[]", "object"), (b"[{}]", "object"), (b"1", "object"),
     (b'"x"', "object"), (b"null", "object"), (b"true", "object")],
)  # fmt: skip
async def test_body_must_be_a_json_object(gw: RunningGateway, api: str, body: bytes, names: str) -> None:
    await expect_error(gw, api, body, 400, names)


@pytest.mark.parametrize("api", APIS)
async def test_integers_beyond_64_bits(gw: RunningGateway, api: str) -> None:
    big = str(2**64 + 1).encode()
    await expect_error(gw, api, raw_body(api).replace(b'"max_tokens":16', b'"max_tokens":' + big), 400, "max_tokens")
    await expect_error(gw, api, raw_body(api, extra=b',"top_k":' + big), 400, "top_k")
    await expect_error(gw, api, raw_body(api, extra=b',"temperature":' + b"9" * 400), 400, "json")
    # within 64 bits but beyond any model: a ceiling, served with the budget lowered to what fits
    got, _, data = await post(gw, api, valid(api, max_tokens=2**63 - 1))
    assert got == 200, data
    # in a pass-through field it is just a (large) number: no crash on the way upstream
    got, _, data = await post(gw, api, raw_body(api, extra=b',"metadata":{"n":' + big + b"}"))
    assert got == 200, data


@pytest.mark.parametrize("api", APIS)
async def test_nul_characters_in_strings_are_accepted(gw: RunningGateway, api: str) -> None:
    got, _, data = await post(gw, api, raw_body(api, b'[{"role":"user","content":"a\\u0000b"}]'))
    assert got == 200, data
    await expect_error(gw, api, valid(api, model=MODEL[api] + "\x00"), 404, "does not exist")


@pytest.mark.parametrize("api", APIS)
async def test_duplicate_keys_last_one_wins(gw: RunningGateway, api: str) -> None:
    body = raw_body(api).replace(b"{", b'{"model":"no-such-model",', 1)
    got, _, data = await post(gw, api, body)
    assert got == 200, data
    assert data["model"] == MODEL[api]
    await expect_error(gw, api, raw_body(api)[:-1] + b',"model":5}', 400, "model")


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/octet-stream", None]
)
async def test_json_is_accepted_whatever_the_content_type(gw: RunningGateway, api: str, content_type: str) -> None:
    got, _, data = await post(gw, api, valid(api), content_type=content_type)
    assert got == 200, data
    got, _, data = await post(gw, api, b"not json", content_type=content_type)
    assert got == 400
    error_message(api, 400, data)


# ---- size and time limits --------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_body_over_the_limit_is_413(gw: RunningGateway, api: str) -> None:
    filler = b"a" * (MAX_BODY + 1024)
    body = b'{"model":"' + MODEL[api].encode() + b'","messages":[{"role":"user","content":"' + filler + b'"}]}'
    started = time.monotonic()
    await expect_error(gw, api, body, 413, "too large")  # with a Content-Length

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: read up to the limit, not beyond
        for i in range(0, len(body), 1 << 20):
            yield body[i : i + (1 << 20)]

    async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
        async with s.post(gw.url + PATH[api], data=chunked(), headers=headers(gw, api)) as r:
            assert r.status == 413
            data = await r.json()
    error_message(api, 413, data)
    if api == "anthropic":
        assert data["error"]["type"] == "request_too_large"
    assert time.monotonic() - started < 8


async def raw_request(gw: RunningGateway, head: list[bytes], body: bytes, seconds: float = 5.0) -> bytes:
    """Send a hand-made request (possibly lying about its length) and read what comes back."""
    port = gw.server.port
    assert port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        await writer.drain()
        async with asyncio.timeout(seconds):
            return await reader.read(65536)
    finally:
        writer.close()


@pytest.mark.parametrize("api", APIS)
async def test_declared_oversize_body_is_refused_before_it_is_read(gw: RunningGateway, api: str) -> None:
    """The client declares 100 MiB and sends one byte: the answer must not wait for the rest."""
    head = [
        f"POST {PATH[api]} HTTP/1.1".encode(),
        b"Host: 127.0.0.1",
        f"Authorization: Bearer {gw.admin_key}".encode(),
        b"Content-Type: application/json",
        b"Content-Length: %d" % (100 * 1024 * 1024),
    ]
    started = time.monotonic()
    answer = await raw_request(gw, head, b"{", seconds=3.0)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 2
    error_message(api, 413, orjson.loads(answer.partition(b"\r\n\r\n")[2]))


@pytest.mark.parametrize("api", APIS)
async def test_a_stalled_body_times_out_with_408(gw: RunningGateway, api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "BODY_READ_TIMEOUT", 0.3)
    head = [
        f"POST {PATH[api]} HTTP/1.1".encode(),
        b"Host: 127.0.0.1",
        f"x-api-key: {gw.admin_key}".encode(),
        b"Content-Type: application/json",
        b"Content-Length: 1000",
    ]
    answer = await raw_request(gw, head, b'{"model":', seconds=3.0)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    error_message(api, 408, orjson.loads(answer.partition(b"\r\n\r\n")[2]))


@pytest.mark.parametrize(
    ("method", "path", "api", "status"),
    [("GET", "/v1/chat/completions", "openai", 405), ("PUT", "/v1/messages", "anthropic", 405),
     ("POST", "/v1/chat/complete", "openai", 404), ("POST", "/v1/messages/batches", "anthropic", 404),
     ("GET", "/no/such/path", "openai", 404)],
)  # fmt: skip
async def test_unknown_paths_and_methods_answer_json(
    gw: RunningGateway, method: str, path: str, api: str, status: int
) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
        async with s.request(method, gw.url + path, headers=headers(gw, api)) as r:
            assert r.status == status
            assert r.headers["Content-Type"].startswith("application/json")
            error_message(api, status, await r.json())
            if status == 405:
                assert r.headers["Allow"]


# ---- wrong types, field by field --------------------------------------------------------------

MSG = [{"role": "user", "content": "hi"}]
PNG = "iVBORw0KGgo="
BOTH_BAD: list[tuple[dict[str, Any], str]] = [
    ({"model": 5}, "model"),
    ({"model": ""}, "model"),
    ({"model": ["gpt-test"]}, "model"),
    ({"model": None, "messages": MSG}, "model"),
    ({"messages": "hi"}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": {"role": "user"}}, "messages"),
    ({"messages": ["hi"]}, "messages[0]"),
    ({"messages": [None]}, "messages[0]"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": {"text": "x"}}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [5]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, "messages[0].content[0].text"),
    ({"messages": [{"role": "user", "content": [{"type": "bogus"}]}]}, "messages[0].content[0].type"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": 5, "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"content": "x"}]}, "messages[0].role"),
    ({"tools": "x"}, "tools"),
    ({"tools": {"name": "f"}}, "tools"),
    ({"tools": [5]}, "tools[0]"),
    ({"max_tokens": -1}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 1.5}, "max_tokens"),
    ({"max_tokens": "16"}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"temperature": "hot"}, "temperature"),
    ({"temperature": [1]}, "temperature"),
    ({"top_p": "x"}, "top_p"),
    ({"top_k": 1.5}, "top_k"),
    ({"stream": "yes"}, "stream"),
    ({"stream": 1}, "stream"),
    ({"provider": "fast"}, "provider"),
    ({"provider": [1]}, "provider"),
    ({"provider": {"order": 5}}, "provider.order"),
    ({"provider": {"only": [1]}}, "provider.only"),
    ({"provider": {"sort": "random"}}, "provider.sort"),
    ({"provider": {"allow_fallbacks": "no"}}, "provider.allow_fallbacks"),
    ({"provider": {"max_price": 5}}, "provider.max_price"),
    ({"models": "gpt-test"}, "models"),
    ({"models": [1, 2]}, "models"),
    ({"models": [{"id": "x"}]}, "models"),
]
OPENAI_BAD: list[tuple[dict[str, Any], str]] = [
    ({"messages": [{"role": "user", "content": None}]}, "messages[0].content"),
    ({"messages": [{"role": "system", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "assistant", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "assistant", "tool_calls": "x"}]}, "messages[0].tool_calls"),
    ({"messages": [{"role": "assistant", "tool_calls": [5]}]}, "messages[0].tool_calls[0].function.name"),
    ({"messages": [{"role": "tool", "content": "42"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "tool", "tool_call_id": 5, "content": "42"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "tool", "tool_call_id": "c", "content": 42}]}, "messages[0].content"),
    ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "retrieval"}]}, "tools[0]"),
    ({"tool_choice": "maybe"}, "tool_choice"),
    ({"tool_choice": 5}, "tool_choice"),
    ({"tool_choice": {"type": "function"}}, "tool_choice"),
    ({"max_completion_tokens": -5}, "max_completion_tokens"),
    ({"seed": "x"}, "seed"),
    ({"stop": [1, 2]}, "stop"),
    ({"stop": 5}, "stop"),
    ({"stop": {"a": 1}}, "stop"),
    ({"response_format": "json"}, "response_format"),
    ({"user": 5}, "user"),
    ({"reasoning": "high"}, "reasoning"),
    ({"reasoning_effort": 5}, "reasoning_effort"),
]
ANTHROPIC_BAD: list[tuple[dict[str, Any], str]] = [
    ({"max_tokens": None}, "max_tokens"),
    ({"messages": [{"role": "user", "content": None}]}, "messages[0].content"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [None]}]}, "messages[0].content[0]"),
    (
        {"messages": [{"role": "user", "content": [{"type": "tool_result", "content": "42"}]}]},
        "messages[0].content[0].tool_use_id",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": 7}]}]},
        "messages[0].content[0].tool_use_id",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": 42}]}]},
        "messages[0].content[0].content",
    ),
    ({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "f"}]}]}, "messages[0].content[0]"),
    ({"system": 5}, "system"),
    ({"system": [{"type": "image"}]}, "system[0]"),
    ({"tools": [{"input_schema": {}}]}, "tools[0].name"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"tool_choice": {"type": "sometimes"}}, "tool_choice"),
    ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ({"stop_sequences": "END"}, "stop_sequences"),
    ({"stop_sequences": [1]}, "stop_sequences"),
]


def _cases(api: str) -> list[tuple[dict[str, Any], str]]:
    return BOTH_BAD + (OPENAI_BAD if api == "openai" else ANTHROPIC_BAD)


@pytest.mark.parametrize("api", APIS)
async def test_every_main_field_with_a_wrong_type_is_a_400_naming_it(gw: RunningGateway, api: str) -> None:
    for fields, names in _cases(api):
        body = valid(api, **fields)
        got, ctype, data = await post(gw, api, body)
        assert got == 400, (fields, got, data)
        assert ctype.startswith("application/json")
        message = error_message(api, 400, data)
        assert names in message, f"{fields}: {names!r} not named in {message!r}"


def _image_block(api: str, url: str | None = None, media_type: Any = None, data: Any = None) -> Any:
    if api == "openai":
        return {"type": "image_url", "image_url": {"url": url}}
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


@pytest.mark.parametrize("api", APIS)
async def test_bad_inline_images_are_400(gw: RunningGateway, api: str) -> None:
    if api == "openai":
        bad = [
            _image_block(api, "data:;base64"),
            _image_block(api, "data:image/png,rawbytes"),
            _image_block(api, "data:image/png;base64,"),
            _image_block(api, "data:image/png;base64,@@@ not base64 @@@"),
            _image_block(api, "data:image/png;base64,A"),
            _image_block(api, "data:text/html;base64," + PNG),
            _image_block(api, "data:image/png;base64,é" + PNG),
            {"type": "image_url", "image_url": 5},
            {"type": "image_url", "image_url": {"url": ""}},
        ]
        field = "messages[0].content[1]"
    else:
        bad = [
            _image_block(api, media_type="image/png", data=""),
            _image_block(api, media_type="image/png", data="@@@ not base64"),
            _image_block(api, media_type="image/png", data=5),
            _image_block(api, media_type=5, data=PNG),
            _image_block(api, media_type="text/plain", data=PNG),
            _image_block(api, media_type=None, data=PNG),
            {"type": "image", "source": {"type": "url"}},
            {"type": "image"},
        ]
        field = "messages[0].content[1]"
    for block in bad:
        body = valid(api, messages=[{"role": "user", "content": [{"type": "text", "text": "see"}, block]}])
        await expect_error(gw, api, body, 400, field)
    # the good forms still pass, line breaks and missing padding included
    good = (
        [_image_block(api, "data:image/png;base64," + PNG), _image_block(api, "data:image/png;base64,iVBO\nRw0KGgo")]
        if api == "openai"
        else [_image_block(api, media_type="image/png", data=PNG), _image_block(api, media_type="image/png", data="QQ")]
    )
    for block in good:
        got, _, data = await post(gw, api, valid(api, messages=[{"role": "user", "content": [block]}]))
        assert got == 200, data


async def test_count_tokens_rejects_the_same_bodies_in_anthropic_format(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
        for body in (b"", b"[]", b"{" * 5000, orjson.dumps({"model": 5, "messages": MSG})):
            async with s.post(gw.url + "/v1/messages/count_tokens", data=body, headers=headers(gw, "anthropic")) as r:
                assert r.status == 400
                error_message("anthropic", 400, await r.json())


# ---- random values in the main fields ---------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "stream",
    "stop", "stop_sequences", "tools", "tool_choice", "system", "provider", "models", "response_format",
    "reasoning", "thinking", "metadata", "seed", "user", "stream_options",
    "messages.0", "messages.0.role", "messages.0.content", "messages.0.content.0", "messages.0.tool_call_id",
]  # fmt: skip


def _mutate(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target: Any = body
    for p in parents:
        if isinstance(target, list) and (not p.isdigit() or int(p) >= len(target)):
            return  # an earlier change already replaced this part: nothing left to mutate
        target = target[int(p)] if isinstance(target, list) else target.get(p)
        if not isinstance(target, dict | list):
            return
    if isinstance(target, list):
        if target:
            target[0] = value
    else:
        target[last] = value


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    api=st.sampled_from(APIS),
    changes=st.lists(st.tuples(st.sampled_from(FIELDS), json_values), min_size=1, max_size=3),
)
async def test_random_values_in_main_fields_never_5xx(
    gw: RunningGateway, api: str, changes: list[tuple[str, Any]]
) -> None:
    body = valid(api, messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    for path, value in changes:
        _mutate(body, path, value)
    got, ctype, data = await post(gw, api, body)
    assert got < 500, (body, got, data)
    if got != 200:
        assert ctype.startswith("application/json"), (got, data)
        error_message(api, got, data)

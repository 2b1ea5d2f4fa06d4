"""Streams that survive real networks: keep-alives while the first token is slow, the upstream
request cancelled when the client goes away, and the paths and probes real clients use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Fault, Reply

from keeprouter.api import inference


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    async with run_gateway(two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))) as g:
        yield g


def auth(gw: RunningGateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.admin_key}"}


async def test_keepalive_comments_while_waiting_for_first_token(
    gw: RunningGateway, openai_upstream: OpenAIUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inference, "KEEPALIVE_AFTER", 0.05)
    monkeypatch.setattr(inference, "KEEPALIVE_EVERY", 0.05)
    openai_upstream.script(Fault(delay_first_byte=0.4, reply=Reply(text="late", chunk_size=10)))
    body = {"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/chat/completions", json=body, headers=auth(gw)) as r:
            assert r.status == 200
            raw = (await r.read()).decode()
    lines = raw.split("\n")
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data:"))
    assert any(line.startswith(":") for line in lines[:first_data]), raw[:200]
    assert "late" in "".join(line for line in lines if line.startswith("data:"))
    assert raw.rstrip().endswith("data: [DONE]")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
async def test_client_disconnect_cancels_the_upstream_request(
    gw: RunningGateway, openai_upstream: OpenAIUpstream, path: str
) -> None:
    openai_upstream.script(Fault(drip_interval=0.05, reply=Reply(text="x" * 400, chunk_size=1)))
    body = {"model": "gpt-test", "stream": True, "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as s:
        r = await s.post(gw.url + path, json=body, headers=auth(gw))
        assert r.status == 200
        await r.content.readany()  # the stream has begun
        r.close()  # the client goes away
    rec = (await openai_upstream.wait_for_requests(1))[0]
    await rec.wait_done(3.0)
    assert rec.disconnected, "the gateway kept the upstream request running after the client left"
    assert rec.chunks_sent < 400


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat/completions", "/api/v1/chat/completions"])
async def test_openai_paths_are_one_endpoint(gw: RunningGateway, path: str) -> None:
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + path + "?x=1", json=body, headers=auth(gw)) as r:
            assert r.status == 200
            data = await r.json()
            assert data["object"] == "chat.completion"
            assert r.headers["X-Generation-Id"] == data["id"]
            assert r.headers["X-KeepRouter-Provider"] == data["provider"] == "oa"


@pytest.mark.parametrize("path", ["/v1/messages?beta=true", "/messages", "/api/v1/messages"])
async def test_anthropic_paths_are_one_endpoint(gw: RunningGateway, path: str) -> None:
    body = {"model": "claude-test", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-api-key": gw.admin_key, "anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219"}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + path, json=body, headers=headers) as r:
            assert r.status == 200
            assert (await r.json())["type"] == "message"


async def test_anthropic_beta_passes_to_anthropic_upstreams_only(
    gw: RunningGateway, openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream
) -> None:
    headers = {"x-api-key": gw.admin_key, "anthropic-version": "2023-06-01", "anthropic-beta": "tools-2099"}
    async with aiohttp.ClientSession() as s:
        for model in ("claude-test", "gpt-test"):
            body: dict[str, Any] = {
                "model": model,
                "max_tokens": 20,
                "messages": [{"role": "user", "content": "hi"}],
                "context_management": {"edits": []},
            }
            async with s.post(gw.url + "/v1/messages", json=body, headers=headers) as r:
                assert r.status == 200, await r.text()
    an = anthropic_upstream.requests[-1]
    assert an.header("anthropic-beta") == "tools-2099"
    assert an.body["context_management"] == {"edits": []}  # unknown fields pass to the same format
    oa = openai_upstream.requests[-1]
    assert oa.header("anthropic-beta") is None
    assert "context_management" not in oa.body


async def test_head_root_and_health_answer(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession() as s:
        for method, path in (("HEAD", "/"), ("HEAD", "/api/hello"), ("GET", "/health")):
            async with s.request(method, gw.url + path) as r:
                assert r.status == 200


@pytest.mark.parametrize(
    ("path", "payload", "status", "shape"),
    [
        ("/v1/chat/completions", b"{not json", 400, "openai"),
        ("/v1/chat/completions", b'{"model": "gpt-test"}', 400, "openai"),
        ("/v1/messages", b"[1, 2]", 400, "anthropic"),
        ("/v1/messages", b'{"model": "claude-test", "messages": []}', 400, "anthropic"),
    ],
)
async def test_bad_input_gets_a_clear_error_in_the_callers_format(
    gw: RunningGateway, path: str, payload: bytes, status: int, shape: str
) -> None:
    headers = {**auth(gw), "content-type": "application/json"}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + path, data=payload, headers=headers) as r:
            assert r.status == status
            data = await r.json()
    if shape == "openai":
        assert data["error"]["code"] == status and data["error"]["message"]
    else:
        assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"


async def test_count_tokens_counts_every_block_type(gw: RunningGateway) -> None:
    base = {"model": "claude-test", "messages": [{"role": "user", "content": "hello"}]}
    rich = {
        "model": "claude-test",
        "system": "You are a coding agent.",
        "tools": [{"name": "Write", "description": "write a file", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "hello"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Let me write the file.", "signature": "sig"},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "Write",
                        "input": {"path": "a.py", "content": "x" * 99},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "written " * 20},
                ],
            },
        ],
    }
    headers = {"x-api-key": gw.admin_key, "anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession() as s:
        counts = []
        for body in (base, rich):
            async with s.post(gw.url + "/v1/messages/count_tokens?beta=true", json=body, headers=headers) as r:
                assert r.status == 200
                counts.append((await r.json())["input_tokens"])
    assert counts[0] > 0
    assert counts[1] > counts[0] + 100  # tool schema, tool_use input, tool_result and thinking all count


async def test_models_list_in_both_shapes(gw: RunningGateway) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url + "/v1/models") as r:
            data = await r.json()
        ids = {m["id"] for m in data["data"]}
        assert {"gpt-test", "claude-test", "both-test"} <= ids
        m = next(m for m in data["data"] if m["id"] == "gpt-test")
        assert m["pricing"]["prompt"] == "0.000001" and m["pricing"]["completion"] == "0.000002"
        assert m["object"] == "model" and m["context_length"] == 100000
        async with s.get(gw.url + "/v1/models", headers={"anthropic-version": "2023-06-01"}) as r:
            an = await r.json()
        assert an["data"][0]["type"] == "model" and "display_name" in an["data"][0]
        async with s.get(gw.url + "/api/v1/models/both-test/endpoints") as r:
            eps = (await r.json())["data"]["endpoints"]
        assert sorted(e["provider_name"] for e in eps) == ["an", "oa"]


async def test_parallel_streams_do_not_interfere(gw: RunningGateway, openai_upstream: OpenAIUpstream) -> None:
    body = {"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as s:

        async def one() -> str:
            async with s.post(gw.url + "/v1/chat/completions", json=body, headers=auth(gw)) as r:
                return (await r.read()).decode()

        outs = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(20))), 20)
    assert all(o.rstrip().endswith("data: [DONE]") for o in outs)
    assert len({o.split('"id":"')[1].split('"')[0] for o in outs}) == 20  # unique ids under concurrency


async def test_client_disconnect_cancels_a_non_streamed_upstream_request(
    gw: RunningGateway, openai_upstream: OpenAIUpstream
) -> None:
    openai_upstream.script(Fault(delay_first_byte=5.0))
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as s:
        with pytest.raises(asyncio.TimeoutError):
            url, short = gw.url + "/v1/chat/completions", aiohttp.ClientTimeout(0.3)
            await s.post(url, json=body, headers=auth(gw), timeout=short)
    rec = (await openai_upstream.wait_for_requests(1))[0]
    await rec.wait_done(3.0)
    assert rec.disconnected, "the upstream request outlived the client"


async def test_count_tokens_asks_an_anthropic_upstream_for_the_exact_count(
    gw: RunningGateway, anthropic_upstream: AnthropicUpstream, openai_upstream: OpenAIUpstream
) -> None:
    from upstreams.anthropic_server import count_tokens as upstream_count

    headers = {"x-api-key": gw.admin_key, "anthropic-version": "2023-06-01"}
    body = {"model": "claude-test", "system": "Be brief.", "messages": [{"role": "user", "content": "hello there"}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url + "/v1/messages/count_tokens", json=body, headers=headers) as r:
            assert r.status == 200
            exact = (await r.json())["input_tokens"]
        sent = anthropic_upstream.requests[-1]
        assert sent.path == "/v1/messages/count_tokens"
        assert sent.body["model"] == "up-claude" and "max_tokens" not in sent.body
        assert exact == upstream_count(sent.body)
        # an OpenAI-format model is counted offline: nothing is sent upstream
        url = gw.url + "/v1/messages/count_tokens"
        async with s.post(url, json={**body, "model": "gpt-test"}, headers=headers) as r:
            assert r.status == 200 and (await r.json())["input_tokens"] > 0
        assert not openai_upstream.requests
        # an unknown model still gets a count (Claude Code treats a 404 here as an error)
        async with s.post(gw.url + "/v1/messages/count_tokens", json={**body, "model": "nope"}, headers=headers) as r:
            assert r.status == 200


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
async def test_what_the_upstream_sent_reaches_the_client_before_the_upstream_goes_quiet(
    gw: RunningGateway, openai_upstream: OpenAIUpstream, path: str
) -> None:
    # Events are written a batch per upstream read: the batch must go out before the next read waits.
    openai_upstream.script(Fault(hold_before=b"omega", reply=Reply(text="alphabravogammaomega", chunk_size=5)))
    body = {"model": "gpt-test", "stream": True, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    got = b""
    async with aiohttp.ClientSession() as s, asyncio.timeout(10):
        async with s.post(gw.url + path, json=body, headers=auth(gw)) as r:
            assert r.status == 200
            while b"gamma" not in got:
                read = await r.content.readany()
                assert read, got
                got += read
            assert openai_upstream.held.is_set()  # the upstream is still holding "omega" back
            openai_upstream.release()
            got += await r.content.read()
    assert b"omega" in got

"""Signed reasoning state goes back byte for byte, and only to the endpoint that issued it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from support.clients import anthropic_client
from support.gateway import ADMIN_KEY, run_gateway, sqlite_url
from support.redis_server import SHARED_URL, drop_prefix, shared_client, unique_prefix
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.script import Reply


def config(a: AnthropicUpstream, b: AnthropicUpstream, db: str) -> dict[str, Any]:
    ep = {"pricing": {"input": 3, "output": 15}, "capabilities": ["streaming", "tools", "reasoning"]}
    return {
        "database": db,
        "admin_key": ADMIN_KEY,
        "providers": {
            "an1": {"api": "anthropic", "base_url": a.url, "api_key": "sk-up-anthropic"},
            "an2": {"api": "anthropic", "base_url": b.url, "api_key": "sk-up-anthropic"},
        },
        "models": {
            "claude-x": {
                "context_length": 200000,
                "endpoints": [
                    {"provider": "an1", "model": "claude-a", **ep},
                    {"provider": "an2", "model": "claude-b", **ep},
                ],
            }
        },
    }


@pytest.mark.parametrize("stream", [False, True])
async def test_signature_is_replayed_only_to_its_issuer(
    make_anthropic_upstream: Callable[..., Awaitable[AnthropicUpstream]], tmp_path: Path, stream: bool
) -> None:
    a, b = await make_anthropic_upstream(), await make_anthropic_upstream()
    a.script(Reply(text="Answer.", thinking="Let me think.", signature="SIG/abc+=="))
    async with run_gateway(config(a, b, sqlite_url(tmp_path))) as gw, anthropic_client(gw.url, gw.admin_key) as c:
        first: dict[str, Any] = {
            "model": "claude-x",
            "max_tokens": 2000,
            "extra_body": {"provider": {"only": ["an1"]}},
            "messages": [{"role": "user", "content": "Q1"}],
        }
        if stream:
            async with c.messages.stream(**first) as s:
                msg = await s.get_final_message()
        else:
            msg = await c.messages.create(**first)
        blocks = [blk.model_dump(exclude_none=True) for blk in msg.content]
        assert blocks[0] == {"type": "thinking", "thinking": "Let me think.", "signature": "SIG/abc+=="}
        history: list[Any] = [
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": blocks},
            {"role": "user", "content": "Q2"},
        ]
        for provider in ("an2", "an1"):
            await c.messages.create(
                model="claude-x", max_tokens=2000, messages=history, extra_body={"provider": {"only": [provider]}}
            )
    to_b = b.requests[-1].body["messages"][1]["content"]
    assert [blk["type"] for blk in to_b] == ["text"]  # another endpoint: the signed block is withheld
    to_a = a.requests[-1].body["messages"][1]["content"]
    assert to_a[0] == {"type": "thinking", "thinking": "Let me think.", "signature": "SIG/abc+=="}


@pytest.mark.redis
async def test_instances_sharing_redis_know_each_others_signatures(
    make_anthropic_upstream: Callable[..., Awaitable[AnthropicUpstream]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Behind a load balancer: instance 1 serves the thinking turn from an1, instance 2 serves the
    next from an2 (a fallback, say). Instance 2 never saw the signature, yet withholds it from an2."""
    client = await shared_client()
    prefix = unique_prefix()
    monkeypatch.setenv("KEEPROUTER_REDIS_PREFIX", prefix)
    a, b = await make_anthropic_upstream(), await make_anthropic_upstream()
    a.script(Reply(text="Answer.", thinking="Let me think.", signature="SIG/shared=="))
    cfg = {**config(a, b, sqlite_url(tmp_path)), "redis": SHARED_URL}
    try:
        async with run_gateway(cfg) as one, run_gateway(cfg) as two:
            async with anthropic_client(one.url, one.admin_key) as c:
                msg = await c.messages.create(
                    model="claude-x", max_tokens=2000, messages=[{"role": "user", "content": "Q1"}],
                    extra_body={"provider": {"only": ["an1"]}},
                )  # fmt: skip
            blocks = [blk.model_dump(exclude_none=True) for blk in msg.content]
            history: list[Any] = [
                {"role": "user", "content": "Q1"},
                {"role": "assistant", "content": blocks},
                {"role": "user", "content": "Q2"},
            ]
            # the record reaches Redis in the background, as the answer leaves
            assert await wait_for_key(client, prefix + "sig:*")
            async with anthropic_client(two.url, two.admin_key) as c:
                for provider in ("an2", "an1"):
                    await c.messages.create(
                        model="claude-x", max_tokens=2000, messages=history,
                        extra_body={"provider": {"only": [provider]}},
                    )  # fmt: skip
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()
    assert [blk["type"] for blk in b.requests[-1].body["messages"][1]["content"]] == ["text"]
    to_a = a.requests[-1].body["messages"][1]["content"]
    assert to_a[0] == {"type": "thinking", "thinking": "Let me think.", "signature": "SIG/shared=="}


async def wait_for_key(client: Redis, pattern: str) -> bool:
    for _ in range(100):
        if [k async for k in client.scan_iter(match=pattern)]:
            return True
        await asyncio.sleep(0.02)
    return False

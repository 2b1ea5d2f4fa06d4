"""Activity per day and the apps leaderboard, from recorded generations (OpenRouter's shapes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest_asyncio
from support.gateway import RunningGateway, run_gateway, sqlite_url, two_format_config
from upstreams.anthropic_server import AnthropicUpstream
from upstreams.openai_server import OpenAIUpstream
from upstreams.script import Reply

from keeprouter.api.http import STATE


@pytest_asyncio.fixture
async def gw(
    openai_upstream: OpenAIUpstream, anthropic_upstream: AnthropicUpstream, tmp_path: Path
) -> AsyncIterator[RunningGateway]:
    async with run_gateway(two_format_config(openai_upstream.url, anthropic_upstream.url, sqlite_url(tmp_path))) as g:
        yield g


async def test_activity_and_app_rankings(gw: RunningGateway, openai_upstream: OpenAIUpstream) -> None:
    key = (await gw.create_key("alice", limit=10))["key"]
    openai_upstream.script(*[Reply(text="hi", input_tokens=10, output_tokens=5) for _ in range(3)])
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as s:
        apps_sent = [("https://cline.bot", "Cline"), ("https://cline.bot", "Cline"), ("https://aider.chat", None)]
        for referer, title in apps_sent:
            headers = {"Authorization": f"Bearer {key}", "HTTP-Referer": referer}
            if title:
                headers["X-Title"] = title
            async with s.post(gw.url + "/v1/chat/completions", json=body, headers=headers) as r:
                assert r.status == 200
        await gw.server.app[STATE].gateway.drain()

        async with s.get(gw.url + "/api/v1/activity", headers={"Authorization": f"Bearer {key}"}) as r:
            assert r.status == 200
            rows = (await r.json())["data"]
        assert len(rows) == 1
        row = rows[0]
        assert (row["model"], row["provider_name"], row["requests"]) == ("gpt-test", "oa", 3)
        assert (row["prompt_tokens"], row["completion_tokens"]) == (30, 15)
        assert row["usage"] == 3 * (10 * 1.0 + 5 * 2.0) / 1e6  # tokens x price per 1M, no markup

        async with s.get(gw.url + "/api/v1/activity", headers={"Authorization": f"Bearer {gw.admin_key}"}) as r:
            assert sum(x["requests"] for x in (await r.json())["data"]) == 3

        async with s.get(gw.url + "/api/v1/datasets/app-rankings") as r:
            assert r.status == 200
            ranking = await r.json()
        apps = [(a["rank"], a["app_id"], a["app_name"], a["total_requests"]) for a in ranking["data"]]
        assert apps == [(1, "https://cline.bot", "Cline", 2), (2, "https://aider.chat", "https://aider.chat", 1)]
        assert ranking["data"][0]["total_tokens"] == "30"

        async with s.get(gw.url + "/api/v1/activity?date=yesterday", headers={"Authorization": f"Bearer {key}"}) as r:
            assert r.status == 400
            assert "date" in (await r.json())["error"]["message"]

"""The JSON catalogue answers for every name chat completions accepts (routing.lookup) exactly as for
the canonical id: `author/slug`, dated snapshots and `:variant` suffixes included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from support.gateway import ADMIN_KEY, sqlite_url

from keeprouter.app import create_app
from keeprouter.config import parse_config

CANONICAL = "claude-haiku-4-5"
ALIASES = ["anthropic/claude-haiku-4-5", "claude-haiku-4-5-20251001", "claude-haiku-4-5:nitro",
           "anthropic/claude-haiku-4-5-20251001:floor"]  # fmt: skip


@pytest_asyncio.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    """A gateway with the built-in Anthropic provider configured (no request reaches it here)."""
    config = parse_config({"database": sqlite_url(tmp_path)}, env={"ANTHROPIC_API_KEY": "sk-test"})
    assert config.models[CANONICAL].endpoints
    server = TestServer(create_app(config, ADMIN_KEY), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers or {}) as r:
        return r.status, await r.json()


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize(
    "path", ["/v1/models/{}", "/api/v1/models/{}", "/v1/models/{}/endpoints", "/api/v1/models/{}/endpoints",
             "/api/v1/models/{}/uptime"]
)  # fmt: skip
async def test_an_alias_answers_as_the_canonical_id(url: str, path: str, alias: str) -> None:
    want = await get(url + path.format(CANONICAL))
    assert want[0] == 200
    assert await get(url + path.format(alias)) == want


async def test_the_anthropic_shape_too(url: str) -> None:
    headers = {"anthropic-version": "2023-06-01"}
    want = await get(url + f"/v1/models/{CANONICAL}", headers)
    assert want[0] == 200 and want[1]["id"] == CANONICAL
    assert await get(url + "/v1/models/claude-haiku-4-5-20251001", headers) == want


@pytest.mark.parametrize("path", ["/v1/models/{}", "/api/v1/models/{}/endpoints", "/api/v1/models/{}/uptime"])
async def test_a_name_chat_completions_refuses_is_a_404_here_too(url: str, path: str) -> None:
    status, body = await get(url + path.format("anthropic/nope"))
    assert status == 404
    assert body["error"]["message"] == "model 'anthropic/nope' does not exist"

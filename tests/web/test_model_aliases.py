"""A model page asked for by a name chat completions accepts (routing.lookup) redirects to the
canonical page, in the same form (HTML or Markdown), so it answers as the canonical id does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from support.gateway import ADMIN_KEY, sqlite_url

from keeprouter.app import create_app
from keeprouter.config import parse_config

CANONICAL = "claude-haiku-4-5"


@pytest_asyncio.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    config = parse_config({"database": sqlite_url(tmp_path)}, env={"ANTHROPIC_API_KEY": "sk-test"})
    server = TestServer(create_app(config, ADMIN_KEY), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


async def fetch(url: str, follow: bool = True) -> tuple[int, str, str, str]:
    async with aiohttp.ClientSession() as s, s.get(url, allow_redirects=follow) as r:
        return r.status, r.headers.get("Location", ""), r.headers.get("Content-Type", ""), await r.text()


@pytest.mark.parametrize("suffix", ["", ".md"])
@pytest.mark.parametrize("alias", ["anthropic/claude-haiku-4-5", "claude-haiku-4-5-20251001", "claude-haiku-4-5:nitro"])
async def test_an_alias_redirects_to_the_canonical_page_in_the_same_form(url: str, alias: str, suffix: str) -> None:
    status, location, _, _ = await fetch(f"{url}/models/{alias}{suffix}", follow=False)
    assert (status, location) == (302, f"/models/{CANONICAL}{suffix}")
    want = await fetch(f"{url}/models/{CANONICAL}{suffix}")
    assert want[0] == 200 and want[2].startswith("text/html" if suffix == "" else "text/markdown")
    assert await fetch(f"{url}/models/{alias}{suffix}") == want


async def test_the_redirect_keeps_the_query_string(url: str) -> None:
    _, location, _, _ = await fetch(f"{url}/models/anthropic/claude-haiku-4-5?ref=x", follow=False)
    assert location == f"/models/{CANONICAL}?ref=x"


async def test_the_canonical_page_is_served_without_a_redirect_and_unknown_names_are_404(url: str) -> None:
    assert (await fetch(f"{url}/models/{CANONICAL}", follow=False))[0] == 200
    for path in ("/models/anthropic/nope", "/models/anthropic/nope.md"):
        assert (await fetch(url + path, follow=False))[0] == 404

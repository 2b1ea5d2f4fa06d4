"""Run a real KeepRouter gateway in-process on 127.0.0.1 for tests, wired to emulated upstreams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from keeprouter.app import create_app
from keeprouter.config import Config, parse_config

ADMIN_KEY = "sk-kr-admin-test"


@dataclass
class RunningGateway:
    url: str  # http://127.0.0.1:PORT
    admin_key: str
    config: Config
    server: TestServer

    @property
    def openai_base(self) -> str:
        return self.url + "/v1"

    async def create_key(self, name: str = "test", limit: float | None = None) -> dict[str, Any]:
        async with aiohttp.ClientSession() as s:
            async with s.post(
                self.url + "/api/v1/keys",
                json={"name": name, "limit": limit},
                headers={"Authorization": f"Bearer {self.admin_key}"},
            ) as r:
                assert r.status == 201, await r.text()
                data: dict[str, Any] = await r.json()
                return data


def two_format_config(openai_url: str, anthropic_url: str, db: str, **extra: Any) -> dict[str, Any]:
    """A config with one model per upstream format, plus a model served by both."""
    ep_oa = {
        "provider": "oa",
        "model": "up-gpt",
        "pricing": {"input": 1.0, "output": 2.0},
        "capabilities": ["streaming", "tools", "response_format"],
    }
    ep_an = {
        "provider": "an",
        "model": "up-claude",
        "pricing": {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75},
        "capabilities": ["streaming", "tools", "reasoning"],
    }
    cfg: dict[str, Any] = {
        "database": db,
        "admin_key": ADMIN_KEY,
        "providers": {
            "oa": {"api": "openai", "base_url": openai_url, "api_key": "sk-up-openai"},
            "an": {"api": "anthropic", "base_url": anthropic_url, "api_key": "sk-up-anthropic"},
        },
        "models": {
            "gpt-test": {"name": "GPT Test", "maker": "Test", "context_length": 100000, "endpoints": [ep_oa]},
            "claude-test": {"name": "Claude Test", "maker": "Test", "context_length": 200000, "endpoints": [ep_an]},
            "both-test": {"name": "Both", "maker": "Test", "context_length": 100000, "endpoints": [ep_oa, ep_an]},
        },
    }
    cfg.update(extra)
    return cfg


@asynccontextmanager
async def run_gateway(raw_config: dict[str, Any]) -> AsyncIterator[RunningGateway]:
    config = parse_config(raw_config, env={})
    admin = config.admin_key or ADMIN_KEY
    app = create_app(config, admin)
    server = TestServer(app, host="127.0.0.1", port=0, handler_cancellation=True)
    await server.start_server()
    try:
        yield RunningGateway(f"http://127.0.0.1:{server.port}", admin, config, server)
    finally:
        await server.close()


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kr.db'}"

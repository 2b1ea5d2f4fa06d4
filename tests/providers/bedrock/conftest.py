"""Fixtures for the Bedrock tests: a fresh emulated Bedrock Runtime on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from upstreams.bedrock_server import BedrockUpstream


@pytest_asyncio.fixture
async def bedrock_upstream() -> AsyncIterator[BedrockUpstream]:
    async with BedrockUpstream() as server:
        yield server

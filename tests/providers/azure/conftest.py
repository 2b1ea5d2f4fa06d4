"""The Azure emulator as a fixture (a fresh server on 127.0.0.1 per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from upstreams.azure_server import AzureUpstream


@pytest_asyncio.fixture
async def azure_upstream() -> AsyncIterator[AzureUpstream]:
    async with AzureUpstream(entra_token="entra-token-for-tests") as server:
        yield server

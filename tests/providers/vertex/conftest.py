"""Fixtures for the Vertex tests: the Vertex emulator on 127.0.0.1 with a test service account (a fresh
RSA key) whose key file's `token_uri` is the emulator's token endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from upstreams.vertex_server import ServiceAccount, VertexUpstream


@pytest.fixture(scope="session")
def service_account() -> ServiceAccount:
    return ServiceAccount()


@pytest_asyncio.fixture
async def vertex_upstream(service_account: ServiceAccount) -> AsyncIterator[VertexUpstream]:
    async with VertexUpstream(service_account) as server:
        yield server


@pytest.fixture
def key_file(vertex_upstream: VertexUpstream) -> Path:
    return Path(vertex_upstream.key_file())

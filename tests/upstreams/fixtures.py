"""pytest fixtures for the emulated upstreams; imported into tests/conftest.py.

Each fixture starts a fresh server on 127.0.0.1 (free port) and closes it after the test.
For a second upstream of the same kind (fallback tests) use the factories::

    async def test_fallback(make_openai_upstream):
        primary, backup = await make_openai_upstream(), await make_openai_upstream()
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest_asyncio

from .anthropic_server import AnthropicUpstream
from .gemini_server import GeminiUpstream
from .openai_server import OpenAIUpstream


@pytest_asyncio.fixture
async def openai_upstream() -> AsyncIterator[OpenAIUpstream]:
    async with OpenAIUpstream() as server:
        yield server


@pytest_asyncio.fixture
async def anthropic_upstream() -> AsyncIterator[AnthropicUpstream]:
    async with AnthropicUpstream() as server:
        yield server


@pytest_asyncio.fixture
async def make_openai_upstream() -> AsyncIterator[Callable[..., Awaitable[OpenAIUpstream]]]:
    """Factory: ``await make_openai_upstream(**OpenAIUpstream options)``; all closed after the test."""
    async with AsyncExitStack() as stack:

        async def make(**options: Any) -> OpenAIUpstream:
            return await stack.enter_async_context(OpenAIUpstream(**options))

        yield make


@pytest_asyncio.fixture
async def make_anthropic_upstream() -> AsyncIterator[Callable[..., Awaitable[AnthropicUpstream]]]:
    """Factory: ``await make_anthropic_upstream(**AnthropicUpstream options)``; all closed after the test."""
    async with AsyncExitStack() as stack:

        async def make(**options: Any) -> AnthropicUpstream:
            return await stack.enter_async_context(AnthropicUpstream(**options))

        yield make


@pytest_asyncio.fixture
async def gemini_upstream() -> AsyncIterator[GeminiUpstream]:
    async with GeminiUpstream() as server:
        yield server

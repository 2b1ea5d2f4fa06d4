"""Redis for tests: the shared server at 127.0.0.1:6379 (state under a unique key prefix per test),
and private `redis-server` processes on a free port that a test may stop and start again (never
the shared one)."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

from support.services import service_missing

SHARED_URL = os.environ.get("KEEPROUTER_TEST_REDIS", "redis://127.0.0.1:6379/0")


def unique_prefix() -> str:
    return f"kr_test_{secrets.token_hex(6)}:"


async def shared_client() -> Redis:
    """A client of the shared server; without one the test is skipped (failed when services are
    required: support.services)."""
    client: Redis = Redis.from_url(SHARED_URL, socket_timeout=5, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as e:  # pragma: no cover - environment without Redis
        await client.aclose()
        service_missing("Redis", f"not reachable at {SHARED_URL}: {e}")
    return client


async def drop_prefix(client: Redis, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=500)]
    if keys:
        await client.delete(*keys)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivateRedis:
    """A `redis-server` of this test alone, on `port`; `stop()` kills it, `start()` brings it back
    on the same port (empty: no persistence)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:  # pragma: no cover - environment without redis-server
            service_missing("redis-server", "is not installed")
        self._proc = await asyncio.create_subprocess_exec(
            exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client: Redis = Redis.from_url(self.url, socket_connect_timeout=0.2)
        try:
            for _ in range(100):
                try:
                    await client.ping()
                    return
                except Exception:
                    await asyncio.sleep(0.05)
            raise RuntimeError(f"private redis-server on port {self.port} did not start")
        finally:
            await client.aclose()

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()  # by the pid of the process this test started, never by name
            await asyncio.wait_for(proc.wait(), 10)


@asynccontextmanager
async def private_redis() -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis(free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()

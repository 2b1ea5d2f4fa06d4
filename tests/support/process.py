"""`python -m keeprouter serve` as a child process, for tests that kill or signal the real server."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from support.raw import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """The real CLI server on 127.0.0.1; `env` is added to this process's environment. Restart it
    with `start()` on the same port (and so the same URL) after a kill."""

    def __init__(
        self, cfg_file: Path, log: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.cfg_file = cfg_file
        self.args = args  # more `serve` arguments, e.g. ("--workers", "2")
        self.log = log
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, seconds: float = 20.0) -> None:
        out = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "keeprouter", "--config", str(self.cfg_file), "serve", "--port", str(self.port),
                *self.args,
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
            )  # fmt: skip
        finally:
            os.close(out)

        async def up() -> bool:
            assert self.proc is not None and self.proc.returncode is None, "server died; see " + str(self.log)
            try:
                async with aiohttp.ClientSession() as s, s.get(self.url + "/health") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await wait_until(up, seconds, 0.05)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    async def wait(self, seconds: float) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), seconds)

    async def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        await self.wait(5)

    async def stop(self) -> None:
        """SIGTERM first (a supervisor stops its workers), then SIGKILL if it lingers."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await asyncio.wait_for(self.proc.wait(), 5)

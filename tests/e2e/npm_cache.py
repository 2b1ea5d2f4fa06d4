"""Install an npm-packaged CLI once into a cache directory outside the repository, and find it again.

Both agent CLIs we drive (Claude Code, Codex) ship a native binary inside their npm package, so a
plain ``npm install --prefix <cache>/<name>`` is all they need; no global install, no node at run time.

- ``$KEEPROUTER_E2E_CACHE``: cache root (default ``$XDG_CACHE_HOME/keeprouter-e2e`` or ``~/.cache/…``).
- ``$KEEPROUTER_E2E_NO_INSTALL=1``: never run npm; use only what is already there (and let the tests
  skip when it is not). Without it a failed install fails the tests: CI must not go green untested.

``NpmTool.locate()`` answers once per process (cached) with the binary or the reason there is none.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

INSTALL_TIMEOUT = 300.0  # seconds for the whole npm install (download + postinstall)
NO_INSTALL = "KEEPROUTER_E2E_NO_INSTALL"


def cache_root() -> Path:
    explicit = os.environ.get("KEEPROUTER_E2E_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "keeprouter-e2e"


def kill_group(pid: int) -> None:
    """Kill a process group we started (``start_new_session=True``: its id is ``pid``)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(pid, signal.SIGKILL)
        else:  # Windows: no process groups
            os.kill(pid, signal.SIGTERM)


@contextlib.contextmanager
def install_lock(root: Path, name: str) -> Iterator[None]:
    """Serialise installs across processes (pytest-xdist workers, parallel CI jobs)."""
    if sys.platform == "win32":
        yield
        return
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.install.lock", "w") as lock:
        deadline = time.monotonic() + INSTALL_TIMEOUT + 60
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another process holds the {name} install lock") from None
                time.sleep(1.0)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Located:
    path: str | None
    detail: str  # the version when found, else why not


@dataclass(frozen=True)
class NpmTool:
    """One CLI: where its binaries may sit in an install, and how to tell that one runs.

    ``candidates(prefix)`` lists executables an install under ``prefix`` may provide, best first;
    ``probe(binary)`` returns its version line, or None when it does not run.
    """

    name: str  # cache subdirectory, e.g. "codex"
    package: str  # npm package, e.g. "@openai/codex"
    binary_env: str  # env var naming a binary to use instead (no install)
    version_env: str  # env var with the npm version spec to install (default "latest")
    candidates: Callable[[Path], list[Path]]
    probe: Callable[[str | Path], str | None]

    @property
    def install_dir(self) -> Path:
        return cache_root() / self.name

    def _found(self, prefix: Path) -> Located | None:
        for candidate in self.candidates(prefix):
            version = self.probe(candidate)
            if version:
                return Located(str(candidate), version)
        return None

    def _npm_install(self, npm: str) -> str | None:
        """Install into a scratch dir next to the target, then move it into place; a problem or None."""
        target = self.install_dir
        version = os.environ.get(self.version_env, "latest")
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"{self.name}.partial-", dir=target.parent))
        cmd = [npm, "install", "--prefix", str(scratch), "--no-audit", "--no-fund", "--no-update-notifier",
               "--engine-strict=false", "--loglevel=error", f"{self.package}@{version}"]  # fmt: skip
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: a timeout kills npm and its postinstall children
            )
            try:
                out, _ = proc.communicate(timeout=INSTALL_TIMEOUT)
            except subprocess.TimeoutExpired:
                kill_group(proc.pid)
                proc.communicate(timeout=30)
                return f"`npm install {self.package}` did not finish within {INSTALL_TIMEOUT:.0f} s"
            if proc.returncode != 0:
                tail = out.decode(errors="replace").strip()[-800:]
                return f"`npm install {self.package}` failed (exit {proc.returncode}): {tail}"
            if self._found(scratch) is None:
                return f"`npm install {self.package}` succeeded but no runnable {self.name} binary is in {scratch}"
            if target.exists():
                shutil.rmtree(target)
            scratch.rename(target)
            return None
        except OSError as exc:
            return f"could not run npm: {exc}"
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)

    @functools.cache  # noqa: B019  (a handful of module-level tools, alive for the whole run)
    def locate(self) -> Located:
        explicit = os.environ.get(self.binary_env)
        if explicit:
            version = self.probe(explicit)
            if version:
                return Located(explicit, version)
            return Located(None, f"{self.binary_env}={explicit} does not run (`--version` failed)")
        target = self.install_dir
        if (found := self._found(target)) is not None:
            return found
        if os.environ.get(NO_INSTALL) == "1":
            return Located(None, f"{self.package} is not installed in {target} and {NO_INSTALL}=1")
        npm = shutil.which("npm")
        if npm is None:
            return Located(None, f"{self.package} is not installed in {target} and npm is not on PATH")
        try:
            with install_lock(target.parent, self.name):
                if (found := self._found(target)) is not None:  # another process installed it meanwhile
                    return found
                problem = self._npm_install(npm)
        except (OSError, TimeoutError) as exc:
            problem = f"could not install {self.package} into {target}: {exc}"
        if problem is not None:
            return Located(None, problem)
        return self._found(target) or Located(None, f"{self.package} was installed into {target} but does not run")

    def require(self) -> str:
        """The binary for a test; otherwise skip (only under KEEPROUTER_E2E_NO_INSTALL=1) or fail."""
        found = self.locate()
        if found.path is not None:
            return found.path
        if os.environ.get(NO_INSTALL) == "1":
            pytest.skip(f"{self.package} unavailable: {found.detail}")
        pytest.fail(f"{self.package} unavailable (set {NO_INSTALL}=1 to skip instead): {found.detail}")


def run_version(binary: str | Path, env: dict[str, str], cwd: str, timeout: float = 60.0) -> str | None:
    """``binary --version`` -> its first output line, or None when it does not run."""
    try:
        done = subprocess.run(
            [str(binary), "--version"], env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
            timeout=timeout, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.decode(errors="replace").strip()
    return out if done.returncode == 0 and out else None


@dataclass(frozen=True)
class Finished:
    """A bounded run of a client CLI or script: returncode None when it was killed at the deadline."""

    returncode: int | None
    stdout: str
    stderr: str
    seconds: float


async def run_bounded(argv: list[str], *, cwd: Path, env: Mapping[str, str], seconds: float) -> Finished:
    """Run ``argv`` in its own process group, killed (with its children) after ``seconds``; the group
    is killed afterwards in every case, so nothing the client started outlives it, even on cancel."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=str(cwd), env=dict(env), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    returncode: int | None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds)
        returncode = proc.returncode
    except TimeoutError:
        kill_group(proc.pid)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        returncode = None
    finally:
        kill_group(proc.pid)
    return Finished(returncode, out.decode(errors="replace"), err.decode(errors="replace"), time.monotonic() - started)


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects among ``stdout``'s lines (a JSON-lines event stream mixed with other output)."""
    events: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                parsed = json.loads(line)
                if isinstance(parsed, dict):
                    events.append(parsed)
    return events

"""Install (once, from npm) the JavaScript SDKs of tests/e2e/node/ and run its scripts against a gateway.

The pinned ``package.json`` + ``package-lock.json`` are installed with ``npm ci`` into a cache dir outside
the repository, keyed by a hash of both files, so a changed pin installs afresh and an unchanged one is
reused by every later run; the scripts are copied beside their ``node_modules`` (ESM resolves packages
from the importing file's own directory, and NODE_PATH does not apply to it).

- ``$KEEPROUTER_E2E_CACHE``: cache root (as for Claude Code); the install lives in ``<root>/node-sdk/<hash>``.
- ``$KEEPROUTER_E2E_NO_INSTALL=1``: never run npm; the tests skip when nothing is installed yet.

Otherwise an install that fails is a test failure (``node_sdk_problem()`` says why), never a skip.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.npm_cache import cache_root, install_lock, json_lines, kill_group, run_bounded

SOURCE = Path(__file__).parent / "node"
PINS = ("package.json", "package-lock.json")
MARKER = ".keeprouter-installed"
INSTALL_TIMEOUT = 300.0  # seconds for ``npm ci``
RUN_TIMEOUT = 60.0  # seconds for one script run
# One script run at a time per test process: each loads a few MB of SDK code, and the machine is small.
CONCURRENCY = 1


def install_dir() -> Path:
    digest = hashlib.sha256()
    for name in PINS:
        digest.update((SOURCE / name).read_bytes())
    return cache_root() / "node-sdk" / digest.hexdigest()[:16]


def no_install() -> bool:
    return os.environ.get("KEEPROUTER_E2E_NO_INSTALL") == "1"


def _npm_ci(npm: str, target: Path) -> str | None:
    """``npm ci`` into a scratch dir beside ``target``, then move it into place; a problem or None."""
    scratch = Path(tempfile.mkdtemp(prefix="partial-", dir=target.parent))
    try:
        for name in PINS:
            shutil.copy2(SOURCE / name, scratch / name)
        cmd = [npm, "ci", "--no-audit", "--no-fund", "--no-update-notifier", "--ignore-scripts", "--loglevel=error"]
        proc = subprocess.Popen(
            cmd,
            cwd=scratch,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            proc.communicate(timeout=30)
            return f"`npm ci` of {SOURCE} did not finish within {INSTALL_TIMEOUT:.0f} s"
        if proc.returncode != 0:
            return f"`npm ci` of {SOURCE} failed (exit {proc.returncode}): {out.decode(errors='replace')[-800:]}"
        (scratch / MARKER).write_text("ok\n")
        if target.exists():
            shutil.rmtree(target)
        scratch.rename(target)
        return None
    except OSError as exc:
        return f"could not run npm: {exc}"
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


@dataclass(frozen=True)
class _Located:
    path: Path | None
    detail: str


@functools.lru_cache(maxsize=1)
def _locate() -> _Located:
    target = install_dir()
    if not (target / MARKER).is_file():
        if no_install():
            return _Located(None, f"the node SDKs are not installed in {target} and KEEPROUTER_E2E_NO_INSTALL=1")
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            return _Located(None, "node and npm must be on PATH to install the JavaScript SDKs")
        try:
            with install_lock(target.parent, "node-sdk"):
                problem = None if (target / MARKER).is_file() else _npm_ci(npm, target)
        except (OSError, TimeoutError) as exc:
            problem = f"could not install the node SDKs into {target}: {exc}"
        if problem is not None:
            return _Located(None, problem)
    for script in SOURCE.glob("*.mjs"):  # always the working tree's scripts, next to the pinned packages
        shutil.copy2(script, target / script.name)
    return _Located(target, str(target))


def node_sdk_dir() -> Path | None:
    """The directory holding the installed SDKs and the scripts, or None (see ``node_sdk_problem``)."""
    return _locate().path


def node_sdk_problem() -> str:
    return _locate().detail


@dataclass
class NodeRun:
    returncode: int | None  # None: killed after the timeout
    stdout: str
    stderr: str
    output: dict[str, Any] | None  # the script's JSON line

    @property
    def result(self) -> Any:
        assert self.output is not None and self.output.get("ok") is True, self.describe()
        return self.output["result"]

    def describe(self) -> str:
        return f"exit={self.returncode}\n--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}"


_slots: dict[int, asyncio.Semaphore] = {}  # per event loop: a Semaphore belongs to the loop it waits on


async def run_script(directory: Path, script: str, case: dict[str, Any], seconds: float = RUN_TIMEOUT) -> NodeRun:
    """``node SCRIPT CASE_JSON`` in ``directory`` with a minimal environment; bounded by ``seconds``."""
    loop = asyncio.get_running_loop()
    slot = _slots.setdefault(id(loop), asyncio.Semaphore(CONCURRENCY))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(directory),
        "NO_COLOR": "1",
        "NODE_OPTIONS": "--max-old-space-size=256",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    async with slot:
        run = await run_bounded(["node", script, json.dumps(case)], cwd=directory, env=env, seconds=seconds)
    objects = json_lines(run.stdout)
    return NodeRun(run.returncode, run.stdout, run.stderr, objects[-1] if objects else None)

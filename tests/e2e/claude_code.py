"""Locate (or install once, from npm) the Claude Code CLI, and run it headless against a local gateway.

The npm package ``@anthropic-ai/claude-code`` is a small wrapper whose postinstall hard-links a native
binary (~250 MB) from a platform optional dependency over ``bin/claude.exe``. It is installed into a
cache directory outside the repository and reused by every later run:

- ``$KEEPROUTER_E2E_CLAUDE``: path of a ``claude`` binary to use instead (no install).
- ``$KEEPROUTER_E2E_CACHE``: cache root (default ``$XDG_CACHE_HOME/keeprouter-e2e`` or ``~/.cache/…``);
  the install lives in ``<root>/claude-code``.
- ``$KEEPROUTER_E2E_NO_INSTALL=1``: never run npm; use only what is already there.
- ``$KEEPROUTER_E2E_CLAUDE_VERSION``: npm version spec to install (default ``latest``).

Whatever goes wrong (no npm, no registry, timeout, unsupported platform), ``find_or_install_claude``
returns None and ``claude_problem()`` says why, so the test can skip instead of failing.
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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE = "@anthropic-ai/claude-code"
INSTALL_TIMEOUT = 300.0  # seconds for the whole npm install (download + postinstall)
PROBE_TIMEOUT = 60.0  # seconds for ``claude --version``


def cache_root() -> Path:
    explicit = os.environ.get("KEEPROUTER_E2E_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "keeprouter-e2e"


def install_dir() -> Path:
    return cache_root() / "claude-code"


def _candidates(prefix: Path) -> list[Path]:
    """Executables an npm install under ``prefix`` may provide, best first."""
    modules = prefix / "node_modules"
    found = [modules / ".bin" / "claude", modules / "@anthropic-ai" / "claude-code" / "bin" / "claude.exe"]
    # the native binary itself: works even when the postinstall did not run (--ignore-scripts)
    found += sorted(modules.glob("@anthropic-ai/claude-code-*/claude"))
    found += sorted(modules.glob("@anthropic-ai/claude-code-*/claude.exe"))
    return [p for p in found if p.is_file()]


def probe(binary: str | Path) -> str | None:
    """``claude --version`` in a throw-away HOME; the version line, or None when it does not run."""
    with tempfile.TemporaryDirectory(prefix="kr-claude-probe-") as home:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
        try:
            done = subprocess.run(
                [str(binary), "--version"],
                env=env,
                cwd=home,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=PROBE_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
    out = done.stdout.decode(errors="replace").strip()
    return out if done.returncode == 0 and "Claude Code" in out else None


@contextlib.contextmanager
def _install_lock(root: Path) -> Iterator[None]:
    """Serialise installs across processes (pytest-xdist workers, parallel CI jobs)."""
    if sys.platform == "win32":
        yield
        return
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".install.lock", "w") as lock:
        deadline = time.monotonic() + INSTALL_TIMEOUT + 60
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError("another process holds the Claude Code install lock") from None
                time.sleep(1.0)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _npm_install(npm: str, target: Path) -> str | None:
    """Install into a scratch dir next to ``target``, then move it into place. Returns a problem or None."""
    version = os.environ.get("KEEPROUTER_E2E_CLAUDE_VERSION", "latest")
    scratch = Path(tempfile.mkdtemp(prefix="claude-code.partial-", dir=target.parent))
    cmd = [
        npm,
        "install",
        "--prefix",
        str(scratch),
        "--no-audit",
        "--no-fund",
        "--no-update-notifier",
        "--engine-strict=false",  # the wrapper declares engines.node; the native binary does not need node
        "--loglevel=error",
        f"{PACKAGE}@{version}",
    ]
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
            _kill_group(proc.pid)
            proc.communicate(timeout=30)
            return f"`npm install {PACKAGE}` did not finish within {INSTALL_TIMEOUT:.0f} s"
        if proc.returncode != 0:
            tail = out.decode(errors="replace").strip()[-800:]
            return f"`npm install {PACKAGE}` failed (exit {proc.returncode}): {tail}"
        if not any(probe(c) for c in _candidates(scratch)):
            return f"`npm install {PACKAGE}` succeeded but no runnable claude binary was found in {scratch}"
        if target.exists():
            shutil.rmtree(target)
        scratch.rename(target)
        return None
    except OSError as exc:
        return f"could not run npm: {exc}"
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class _Located:
    path: str | None
    detail: str  # the version when found, else why not


@functools.lru_cache(maxsize=1)
def _locate() -> _Located:
    explicit = os.environ.get("KEEPROUTER_E2E_CLAUDE")
    if explicit:
        version = probe(explicit)
        if version:
            return _Located(explicit, version)
        return _Located(None, f"KEEPROUTER_E2E_CLAUDE={explicit} does not run (`--version` failed)")
    target = install_dir()
    for candidate in _candidates(target):
        version = probe(candidate)
        if version:
            return _Located(str(candidate), version)
    if os.environ.get("KEEPROUTER_E2E_NO_INSTALL") == "1":
        return _Located(None, f"Claude Code is not installed in {target} and KEEPROUTER_E2E_NO_INSTALL=1")
    npm = shutil.which("npm")
    if npm is None:
        return _Located(None, f"Claude Code is not installed in {target} and npm is not on PATH")
    try:
        with _install_lock(target.parent):
            for candidate in _candidates(target):  # another process may have installed it meanwhile
                version = probe(candidate)
                if version:
                    return _Located(str(candidate), version)
            problem = _npm_install(npm, target)
    except (OSError, TimeoutError) as exc:
        problem = f"could not install Claude Code into {target}: {exc}"
    if problem is not None:
        return _Located(None, problem)
    for candidate in _candidates(target):
        version = probe(candidate)
        if version:
            return _Located(str(candidate), version)
    return _Located(None, f"Claude Code was installed into {target} but does not run")


def find_or_install_claude() -> str | None:
    """Path of a runnable ``claude`` binary (cached install, else a fresh npm install), or None."""
    return _locate().path


def claude_problem() -> str:
    """Why ``find_or_install_claude()`` returned None (or the version string when it did not)."""
    return _locate().detail


# ----- running it ---------------------------------------------------------------------------------------
def claude_env(
    *,
    base_url: str,
    api_key: str,
    model: str,
    home: Path,
    proxy: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A minimal environment: nothing inherited but PATH, so no user config, key or proxy leaks in.

    ``proxy`` (an ``http://127.0.0.1:PORT`` trap) is set as HTTP(S)_PROXY with NO_PROXY for the loopback
    addresses: any request Claude Code makes to a host other than the gateway ends up in the trap.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "CI": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "1",  # a failing gateway shows up in seconds, not after 10 back-offs
        "API_TIMEOUT_MS": "60000",
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_AUTH_TOKEN": api_key,
        "ANTHROPIC_MODEL": model,
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": model,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": model,
        "CLAUDE_CODE_SUBAGENT_MODEL": model,
    }
    if proxy is not None:
        env.update(
            {
                "HTTP_PROXY": proxy,
                "HTTPS_PROXY": proxy,
                "http_proxy": proxy,
                "https_proxy": proxy,
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    env.update(extra or {})
    return env


@dataclass
class ClaudeRun:
    returncode: int | None  # None: killed after the timeout
    stdout: str
    stderr: str
    seconds: float
    events: list[dict[str, Any]] = field(default_factory=list)  # parsed stream-json lines

    @property
    def result(self) -> dict[str, Any] | None:
        """The final ``{"type": "result", …}`` event."""
        return next((e for e in reversed(self.events) if e.get("type") == "result"), None)

    def tool_uses(self) -> list[dict[str, Any]]:
        """Every ``tool_use`` block of the assistant messages, in order."""
        out: list[dict[str, Any]] = []
        for event in self.events:
            message = event.get("message") if event.get("type") == "assistant" else None
            for block in (message or {}).get("content") or []:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    out.append(block)
        return out

    def describe(self, limit: int = 4000) -> str:
        return (
            f"exit={self.returncode} after {self.seconds:.1f}s\n"
            f"--- stdout (tail) ---\n{self.stdout[-limit:]}\n--- stderr (tail) ---\n{self.stderr[-limit:]}"
        )


async def run_claude(
    binary: str, prompt: str, *, cwd: Path, env: Mapping[str, str], seconds: float = 120.0
) -> ClaudeRun:
    """``claude -p PROMPT --output-format stream-json --verbose`` with edits auto-accepted.

    ``--permission-mode acceptEdits`` (not ``--dangerously-skip-permissions``, which Claude Code refuses
    to run as root) lets the Write tool create files in ``cwd`` without a prompt.
    """
    args = [
        "-p",
        prompt,
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "acceptEdits",
        "--no-session-persistence",
    ]
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        binary,
        *args,
        cwd=str(cwd),
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    returncode: int | None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds)
        returncode = proc.returncode
    except TimeoutError:
        _kill_group(proc.pid)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        returncode = None
    finally:
        if proc.returncode is None:  # cancelled (test interrupted): never leave the CLI running
            _kill_group(proc.pid)
    stdout = out.decode(errors="replace")
    events: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                parsed = json.loads(line)
                if isinstance(parsed, dict):
                    events.append(parsed)
    return ClaudeRun(returncode, stdout, err.decode(errors="replace"), time.monotonic() - started, events)


def _kill_group(pid: int) -> None:
    """Kill the process group this module started (``start_new_session=True``: its id is ``pid``)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(pid, signal.SIGKILL)
        else:  # Windows: no process groups
            os.kill(pid, signal.SIGTERM)

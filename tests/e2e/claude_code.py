"""Locate (or install once, from npm) the Claude Code CLI, and run it headless against a local gateway.

The npm package ``@anthropic-ai/claude-code`` is a small wrapper whose postinstall hard-links a native
binary (~250 MB) from a platform optional dependency over ``bin/claude.exe``. It is installed into
``<cache>/claude-code`` by ``e2e.npm_cache`` (cache root, ``KEEPROUTER_E2E_NO_INSTALL``) and reused:

- ``$KEEPROUTER_E2E_CLAUDE``: path of a ``claude`` binary to use instead (no install).
- ``$KEEPROUTER_E2E_CLAUDE_VERSION``: npm version spec to install (default ``latest``).

``CLAUDE.require()`` gives the binary to a test, or fails it (skips only with
``KEEPROUTER_E2E_NO_INSTALL=1``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.npm_cache import NpmTool, json_lines, run_bounded, run_version

PROBE_TIMEOUT = 60.0  # seconds for ``claude --version``


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
        out = run_version(binary, env, home, PROBE_TIMEOUT)
    return out if out and "Claude Code" in out else None


CLAUDE = NpmTool(
    name="claude-code",
    package="@anthropic-ai/claude-code",
    binary_env="KEEPROUTER_E2E_CLAUDE",
    version_env="KEEPROUTER_E2E_CLAUDE_VERSION",
    candidates=_candidates,
    probe=probe,
)


def find_or_install_claude() -> str | None:
    """Path of a runnable ``claude`` binary (cached install, else a fresh npm install), or None."""
    return CLAUDE.locate().path


def claude_problem() -> str:
    """Why ``find_or_install_claude()`` returned None (or the version string when it did not)."""
    return CLAUDE.locate().detail


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
    run = await run_bounded([binary, *args], cwd=cwd, env=env, seconds=seconds)
    return ClaudeRun(run.returncode, run.stdout, run.stderr, run.seconds, json_lines(run.stdout))

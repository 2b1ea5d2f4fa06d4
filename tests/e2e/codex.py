"""Locate (or install once, from npm) the Codex CLI, and run ``codex exec`` headless and offline.

``@openai/codex`` carries its native binary in a platform optional dependency
(``@openai/codex-<platform>/vendor/<triple>/bin/codex``); it is installed into ``<cache>/codex`` by
``e2e.npm_cache`` and run directly (no node needed):

- ``$KEEPROUTER_E2E_CODEX``: path of a ``codex`` binary to use instead (no install).
- ``$KEEPROUTER_E2E_CODEX_VERSION``: npm version spec to install (default ``latest``).

Each run gets a private ``CODEX_HOME`` whose ``config.toml`` (``codex_config``) names the gateway as
the only model provider and turns off everything that would reach another host.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.npm_cache import NpmTool, json_lines, run_bounded, run_version

PROBE_TIMEOUT = 60.0
KEY_ENV = "KEEPROUTER_API_KEY"  # the env var the provider's `env_key` names


def _candidates(prefix: Path) -> list[Path]:
    modules = prefix / "node_modules"
    found = sorted(modules.glob("@openai/codex-*/vendor/*/bin/codex"))
    found += sorted(modules.glob("@openai/codex/vendor/*/bin/codex"))  # older layout: all in one package
    return [p for p in found if p.is_file()]


def probe(binary: str | Path) -> str | None:
    with tempfile.TemporaryDirectory(prefix="kr-codex-probe-") as home:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "CODEX_HOME": home}
        out = run_version(binary, env, home, PROBE_TIMEOUT)
    return out if out and out.startswith("codex") else None


CODEX = NpmTool(
    name="codex",
    package="@openai/codex",
    binary_env="KEEPROUTER_E2E_CODEX",
    version_env="KEEPROUTER_E2E_CODEX_VERSION",
    candidates=_candidates,
    probe=probe,
)


def codex_config(*, base_url: str, model: str, web_search: bool = False) -> str:
    """The ``config.toml`` the tests use (docs/clients.md shows the same settings). ``web_search=True``
    keeps Codex's default: a built-in web_search tool on every request."""
    search = "" if web_search else 'web_search = "disabled"            # no built-in web_search tool (none runs here)\n'
    return f"""\
model = "{model}"
model_provider = "keeprouter"
approval_policy = "never"          # headless: run the model's commands without asking
sandbox_mode = "danger-full-access"  # the test's workdir is throw-away; no bubblewrap needed
{search}check_for_update_on_startup = false

[model_providers.keeprouter]
name = "KeepRouter"
base_url = "{base_url}"
env_key = "{KEY_ENV}"
wire_api = "responses"
request_max_retries = 0            # a failing gateway shows up at once, not after back-offs
stream_max_retries = 0

[features]
plugins = false                    # no plugin/curated-marketplace sync (github.com, chatgpt.com)

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"
"""


def codex_env(*, home: Path, api_key: str, proxy: str | None = None) -> dict[str, str]:
    """A minimal environment (nothing inherited but PATH) with a private CODEX_HOME.

    ``proxy`` (an egress trap) becomes HTTP(S)_PROXY with NO_PROXY for loopback, so any request to a
    non-local host lands in the trap.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(home / ".codex"),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        KEY_ENV: api_key,
    }
    if proxy is not None:
        env.update({"HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "ALL_PROXY": proxy, "http_proxy": proxy,
                    "https_proxy": proxy, "all_proxy": proxy, "NO_PROXY": "127.0.0.1,localhost",
                    "no_proxy": "127.0.0.1,localhost"})  # fmt: skip
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def write_config(home: Path, *, base_url: str, model: str, web_search: bool = False) -> Path:
    path = home / ".codex" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(codex_config(base_url=base_url, model=model, web_search=web_search))
    return path


@dataclass
class CodexRun:
    returncode: int | None  # None: killed after the timeout
    stdout: str
    stderr: str
    seconds: float
    events: list[dict[str, Any]] = field(default_factory=list)  # the --json lines

    def items(self, kind: str) -> list[dict[str, Any]]:
        """The completed items of one type (``agent_message``, ``command_execution``, ``error``...)."""
        return [e["item"] for e in self.events
                if e.get("type") == "item.completed" and (e.get("item") or {}).get("type") == kind]  # fmt: skip

    @property
    def last_message(self) -> str | None:
        messages = self.items("agent_message")
        return messages[-1].get("text") if messages else None

    def describe(self, limit: int = 4000) -> str:
        return (
            f"exit={self.returncode} after {self.seconds:.1f}s\n"
            f"--- stdout (tail) ---\n{self.stdout[-limit:]}\n--- stderr (tail) ---\n{self.stderr[-limit:]}"
        )


async def run_codex(binary: str, prompt: str, *, cwd: Path, env: Mapping[str, str], seconds: float = 120.0) -> CodexRun:
    """``codex exec --json`` in ``cwd``; killed (with its children) after ``seconds``."""
    args = ["exec", "--json", "--strict-config", "--skip-git-repo-check", "--ephemeral", "-C", str(cwd), prompt]
    run = await run_bounded([binary, *args], cwd=cwd, env=env, seconds=seconds)
    return CodexRun(run.returncode, run.stdout, run.stderr, run.seconds, json_lines(run.stdout))

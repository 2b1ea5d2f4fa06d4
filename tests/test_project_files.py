"""The project's own files agree with each other: the README's test command is what CI runs, and
the version is written in one place."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import keeprouter

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    """The indented command lines at the top of the README (install+serve, install+test)."""
    return [line.strip() for line in (ROOT / "README.md").read_text().splitlines()[:12] if line.startswith("    ")]


def test_ci_runs_every_step_of_the_readme_test_command() -> None:
    serve, test = _readme_commands()
    assert serve.endswith("pip install . && keeprouter serve")
    steps = [s.strip() for s in test.split("&&")]
    gates = [s for s in steps if not s.startswith(("python3 -m venv", ". .venv/", "pip install"))]
    assert gates == ["ruff check .", "ruff format --check .", "mypy", "pytest"]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    for gate in gates:
        assert gate in ci, f".ci/run does not run {gate!r}"
    installs = [shlex.split(line) for line in ci if line.startswith("pip install") and "-e" in line]
    assert any("test" in re.findall(r"\w+", args[-1]) for args in installs), "CI installs the test extra"


def test_the_version_lives_only_in_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "keeprouter.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", keeprouter.__version__)


def test_the_changelog_has_an_unreleased_section() -> None:
    assert "\n## Unreleased\n" in (ROOT / "CHANGELOG.md").read_text()

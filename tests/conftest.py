"""Shared pytest fixtures. Upstream emulators live in tests/upstreams (importable as ``upstreams``)."""

import pytest
from upstreams.fixtures import (  # noqa: F401  (re-exported fixtures)
    anthropic_upstream,
    gemini_upstream,
    make_anthropic_upstream,
    make_openai_upstream,
    openai_upstream,
)


@pytest.fixture(autouse=True)
def _private_spool(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's gateways (in process or spawned: they inherit the environment) spool refused
    settles in a directory of their own, never in ~/.local/state where a later test, or a later
    run, would take over and replay another test's settles."""
    monkeypatch.setenv("KEEPROUTER_SPOOL_DIR", str(tmp_path_factory.mktemp("spool")))

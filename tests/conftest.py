"""Shared pytest fixtures. Upstream emulators live in tests/upstreams (importable as ``upstreams``)."""

from upstreams.fixtures import (  # noqa: F401  (re-exported fixtures)
    anthropic_upstream,
    make_anthropic_upstream,
    make_openai_upstream,
    openai_upstream,
)

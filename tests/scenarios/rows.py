"""The two tables the matrix is made of, and the cases a scenario runs in.

``cases("tools")`` parametrizes a scenario over every client API x upstream kind x (stream, not), with
ids like ``chat-openai-stream-tools``; a scenario that needs an optional part of a request
(``needs={"stop"}``) runs only for the client APIs whose row says they support it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import pytest

from .chat import CHAT
from .client_api import ClientApi
from .messages import MESSAGES
from .responses import RESPONSES
from .upstream_kinds import UPSTREAM_KINDS, UpstreamKind

CLIENT_APIS: tuple[ClientApi, ...] = (CHAT, MESSAGES, RESPONSES)

__all__ = ["CLIENT_APIS", "UPSTREAM_KINDS", "Case", "api_cases", "cases"]


@dataclass(frozen=True)
class Case:
    api: ClientApi
    kind: UpstreamKind
    stream: bool

    @property
    def id(self) -> str:
        return f"{self.api.name}-{self.kind.name}-{'stream' if self.stream else 'plain'}"


def cases(
    scenario: str, *, needs: Collection[str] = (), streams: Collection[bool] = (False, True), reasons: bool = False
) -> pytest.MarkDecorator:
    """``pytest.mark.parametrize("case", ...)`` over every row combination the scenario applies to
    (``reasons``: only the upstream kinds whose emulators reason)."""
    combos = [
        Case(api, kind, stream)
        for api in CLIENT_APIS
        if set(needs) <= api.supports
        for kind in UPSTREAM_KINDS
        if kind.reasons or not reasons
        for stream in (False, True)
        if stream in streams
    ]
    params = [pytest.param(c, id=f"{c.id}-{scenario}") for c in combos]
    return pytest.mark.parametrize("case", params)


def api_cases(scenario: str) -> pytest.MarkDecorator:
    """For scenarios the upstream kind plays no part in: every client API x (stream, not)."""
    params = [
        pytest.param(api, stream, id=f"{api.name}-{'stream' if stream else 'plain'}-{scenario}")
        for api in CLIENT_APIS
        for stream in (False, True)
    ]
    return pytest.mark.parametrize(("api", "stream"), params)

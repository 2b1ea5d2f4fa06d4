"""What every provider adapter offers the gateway: a whole answer, a stream, an input-token count.

An adapter is a thin pairing of a wire format's pure translators with the provider's `Transport`.
It raises only `errors.UpstreamError` subclasses. Each provider kind's adapter is named by its row in
`providers.registry`, which the gateway never reads for a kind's name: it sees only this protocol.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Protocol

from keeprouter.config import EndpointConfig
from keeprouter.errors import UpstreamError
from keeprouter.formats.canonical import ChatRequest, ChatResponse, StreamEvent


class CountNotSupported(UpstreamError):
    """The upstream has no token-count endpoint (its registry row says `counts_tokens=False`). An
    UpstreamError, so a caller that tries the next endpoint on any upstream failure needs no case
    of its own for it."""


class Adapter(Protocol):
    api: str  # the provider kind: its registry row's name ("openai", "anthropic")

    async def complete(
        self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> ChatResponse: ...

    def stream(
        self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]
    ) -> AsyncGenerator[StreamEvent, None]:
        """Canonical events as the upstream produces them. The caller must `aclose()` it (use
        `contextlib.aclosing`), which closes the upstream connection: that is how a client's
        disconnect cancels the upstream request. A stream cut before its terminal event raises."""
        ...

    async def count_tokens(self, req: ChatRequest, ep: EndpointConfig, client_headers: Mapping[str, str]) -> int:
        """The upstream's own exact count of `req`'s input tokens. Raises CountNotSupported when the
        upstream has no count endpoint, another UpstreamError when it could not count this time;
        either way the caller counts offline instead."""
        ...

    async def close(self) -> None: ...

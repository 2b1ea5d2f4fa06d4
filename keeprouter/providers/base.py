"""What every provider adapter offers the gateway: one call for a whole answer, one for a stream.

An adapter is a thin pairing of a wire format's pure translators (`keeprouter.formats`) with the
provider's `Transport`. It raises only `errors.UpstreamError` subclasses.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Protocol

from keeprouter.config import EndpointConfig
from keeprouter.formats.canonical import ChatRequest, ChatResponse, StreamEvent


class Adapter(Protocol):
    api: str  # the upstream wire format: "openai" | "anthropic"

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

    async def close(self) -> None: ...

"""Token counts the request path needs besides the upstream's own usage: `count_tokens` answers,
and the exact counter that meters an upstream which reported no usage.

Tokenizers are loaded once (tokens.Encodings) and always in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from keeprouter.config import EndpointConfig, ModelConfig
from keeprouter.errors import UpstreamError
from keeprouter.formats import tokens
from keeprouter.formats.canonical import ChatRequest
from keeprouter.providers.base import Adapter
from keeprouter.routing.fit import fit

log = logging.getLogger("keeprouter")


class Counting:
    def __init__(
        self, adapters: Mapping[str, Adapter], run_later: Callable[[Coroutine[Any, Any, None]], object]
    ) -> None:
        self.adapters = adapters
        self.encodings = tokens.Encodings()
        self._run_later = run_later  # owns the tokenizer loads (drained at shutdown)
        self._loading: set[str] = set()

    async def upstream_count(
        self, models: list[ModelConfig], req: ChatRequest, headers: Mapping[str, str]
    ) -> int | None:
        """An exact input-token count from the first upstream of `models[0]` that can count
        (Anthropic-format hosts), or None when none can: the caller estimates offline then."""
        for ep in models[0].endpoints:
            adapter = self.adapters.get(ep.provider)
            if adapter is None:
                continue
            try:
                # CountNotSupported is an UpstreamError too: a kind without a count endpoint is skipped.
                n: int = await adapter.count_tokens(fit(req, ep), ep, headers)
                return n
            except UpstreamError:
                continue
        return None

    async def count_input(self, models: list[ModelConfig], req: ChatRequest, headers: Mapping[str, str]) -> int:
        """`count_tokens`: the upstream's own count (Anthropic-format hosts), else the exact count
        with the tokenizer of the first endpoint whose model has one shipped (OpenAI family), else
        the offline estimate. Tokenizer work runs in a worker thread, off the event loop."""
        n = await self.upstream_count(models, req, headers) if models else None
        if n is not None:
            return n
        for ep in models[0].endpoints if models else ():
            name = tokens.encoding_for(ep.model.rpartition("/")[2])
            if name is not None:
                enc = await asyncio.to_thread(self.encodings.get, name)
                exact: int = await asyncio.to_thread(tokens.count_request, req, tokens.exact_counter(enc))
                return exact
        return tokens.count_request(req)

    def exact_counter(self, ep: EndpointConfig) -> Callable[[str], int] | None:
        """The exact text counter for `ep`'s model when its tokenizer is shipped AND already loaded
        (metering a usage-less upstream never waits for a load: it starts one, in a worker thread,
        and this answer is metered with the estimate)."""
        name = tokens.encoding_for(ep.model.rpartition("/")[2])
        if name is None:
            return None
        enc = self.encodings.loaded(name)
        if enc is not None:
            return tokens.exact_counter(enc)
        if name not in self._loading:
            self._loading.add(name)
            self._run_later(self._load_encoding(name))
        return None

    async def _load_encoding(self, name: str) -> None:
        try:
            await asyncio.to_thread(self.encodings.get, name)
        except (OSError, tokens.VocabularyError):
            log.exception("tokenizer %s could not be loaded; usage-less upstreams stay estimated", name)

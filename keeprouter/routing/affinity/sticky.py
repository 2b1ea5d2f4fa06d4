"""Affinity as the gateway uses it: which conversation a request belongs to (if affinity can help
it), the candidates in affinity order, and remembering the endpoint that served.

Affinity is skipped, at no cost beyond this check, when it cannot help: the caller gave an explicit
`provider.order` (their order wins), no model of the request has two endpoints to choose between,
or an unnamed conversation is too short for any provider to cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from keeprouter.config import ModelConfig
from keeprouter.formats.canonical import ChatRequest
from keeprouter.routing.affinity.key import MIN_CACHEABLE_TOKENS, Conversation, affinity_ttl, conversation
from keeprouter.routing.affinity.order import prefer
from keeprouter.routing.affinity.table import AffinityTable
from keeprouter.routing.select import Candidate, ProviderPrefs


class Sticky:
    def __init__(self, table: AffinityTable, is_open: Callable[[str], bool]) -> None:
        self.table = table
        self._is_open = is_open

    def conversation(
        self,
        req: ChatRequest,
        models: Sequence[ModelConfig],
        prefs: ProviderPrefs,
        headers: Mapping[str, str],
        body: Mapping[str, Any],
        scope: str,
        prompt_tokens: int,
    ) -> Conversation | None:
        """The conversation `req` continues, or None when affinity cannot help it (module docstring).
        `body` is the request's JSON body, for the names some client parsers do not keep."""
        if prefs.order or all(len(m.endpoints) < 2 for m in models):
            return None
        conv = conversation(req, headers, body.get("session_id"), scope, body.get("prompt_cache_key"))
        if conv is None or (not conv.named and prompt_tokens < MIN_CACHEABLE_TOKENS):
            return None
        return conv

    async def order(self, cands: list[Candidate], conv: Conversation | None) -> list[Candidate]:
        """`cands` with the conversation's endpoint first (when it is still a healthy candidate)."""
        if conv is None or len(cands) < 2:
            return cands
        return prefer(cands, await self.table.get(conv.key), self._healthy)

    async def served(self, conv: Conversation | None, cand: Candidate, req: ChatRequest) -> None:
        """`cand` served a turn of `conv`: the conversation stays there (its idle TTL starts again)."""
        if conv is not None:
            await self.table.put(conv.key, cand.key, affinity_ttl(req))

    def _healthy(self, key: str) -> bool:
        return not self._is_open(key)

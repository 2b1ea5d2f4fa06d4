"""Fitting a request to the endpoint about to serve it, without copying it when nothing changes.

- max_tokens is capped at the endpoint's output limit (Claude Code asks 32000 of every model);
- a reasoning request is dropped for an endpoint without the `reasoning` capability;
- signed reasoning state (Anthropic thinking `signature`, `redacted_thinking`) is replayed only to
  the endpoint that issued it. `SignatureIssuers` remembers, per signature, the endpoint whose
  answer carried it; a signed block known to come from another endpoint is dropped (a fallback or
  a load-balanced turn would otherwise fail with "Invalid signature"). A signature this process
  never saw (issued before a restart, or through another instance) is kept: it most likely comes
  from the endpoint the conversation has been using.
"""

from __future__ import annotations

from collections import OrderedDict

import msgspec

from keeprouter.config import EndpointConfig
from keeprouter.formats.canonical import ChatRequest, Message, ThinkingPart

MAX_SIGNATURES = 100_000  # bounded memory: ~100 bytes each


def issuer_of(ep: EndpointConfig) -> str:
    return f"{ep.provider}|{ep.model}"


class SignatureIssuers:
    """A bounded LRU of signature -> issuing endpoint ("provider|upstream model")."""

    def __init__(self, capacity: int = MAX_SIGNATURES) -> None:
        self._map: OrderedDict[int, str] = OrderedDict()
        self._capacity = capacity

    def record(self, signature: str, ep: EndpointConfig) -> None:
        key = hash(signature)
        self._map[key] = issuer_of(ep)
        self._map.move_to_end(key)
        if len(self._map) > self._capacity:
            self._map.popitem(last=False)

    def issuer(self, signature: str) -> str | None:
        return self._map.get(hash(signature))


def fit(req: ChatRequest, ep: EndpointConfig, issuers: SignatureIssuers | None = None) -> ChatRequest:
    """`req` adjusted to `ep` (see the module docstring); `req` itself when nothing changes."""
    drop_reasoning = req.reasoning is not None and "reasoning" not in ep.capabilities
    cap = ep.max_output_tokens
    over = cap is not None and req.max_tokens is not None and req.max_tokens > cap
    messages = req.messages
    if issuers is not None and req.source != "openai":  # Chat Completions callers cannot send signed state
        messages = _scoped(messages, issuer_of(ep), issuers)
    if not drop_reasoning and not over and messages is req.messages:
        return req
    return msgspec.structs.replace(
        req,
        reasoning=None if drop_reasoning else req.reasoning,
        max_tokens=cap if over else req.max_tokens,
        messages=messages,
    )


def _foreign(p: object, target: str, issuers: SignatureIssuers) -> bool:
    if not isinstance(p, ThinkingPart):
        return False
    state = p.signature or p.redacted
    if not state:
        return False
    issuer = issuers.issuer(state)
    return issuer is not None and issuer != target


def _scoped(messages: list[Message], target: str, issuers: SignatureIssuers) -> list[Message]:
    """The messages without signed blocks issued elsewhere; the same list when there are none."""
    out: list[Message] | None = None
    for i, m in enumerate(messages):
        if m.role != "assistant" or not any(_foreign(p, target, issuers) for p in m.content):
            if out is not None:
                out.append(m)
            continue
        if out is None:
            out = list(messages[:i])
        out.append(msgspec.structs.replace(m, content=[p for p in m.content if not _foreign(p, target, issuers)]))
    return messages if out is None else out

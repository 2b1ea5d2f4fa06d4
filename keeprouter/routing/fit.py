"""Fitting a request to the endpoint about to serve it, without copying it when nothing changes.

- max_tokens is capped at the endpoint's output limit (Claude Code asks 32000 of every model), and
  lowered to what fits beside the prompt in the endpoint's context window (`output_budget`);
- a reasoning request is dropped for an endpoint without the `reasoning` capability (`dropped`
  names it, for the caller's X-KeepRouter-Dropped header), and so is the reasoning in its history;
- reasoning state is replayed only to the endpoint that issued it: signed state (Anthropic thinking
  `signature`, `redacted_thinking`) and unsigned reasoning text alike (DeepSeek's `reasoning_content`
  must come back on its own tool-call turns; another provider's text is not its to see).
  `SignatureIssuers` remembers, per state, the endpoint whose answer carried it; a block known to
  come from another endpoint is dropped (a fallback or a load-balanced turn would otherwise fail
  with "Invalid signature"). With Redis configured the issuers are shared by every instance
  (`routing.shared_issuers`); state no instance recorded (issued before a restart without Redis, or
  longer ago than the shared table keeps) is kept: it most likely comes from the endpoint the
  conversation has been using.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import msgspec

from keeprouter.config import EndpointConfig
from keeprouter.formats.canonical import ChatRequest, Message, ThinkingPart

MAX_SIGNATURES = 100_000  # bounded memory: ~100 bytes each

# The request path's prompt size is `tokens.estimate_request`, ~4 characters per token. Measured
# against cl100k on this repository's Python, SQL and JSON it is within 10 % either way, but on
# Markdown and YAML it undercounts by up to 20 % (3.2-3.3 characters per token): the real prompt
# can be 1.25x the estimate. Output budgets are therefore sized against estimate * 1.25.
ESTIMATE_ERROR_DIVISOR = 4  # bound = estimate + estimate / 4
MIN_OUTPUT = 256  # an answer budget below this is useless: the prompt is refused as too long instead


def prompt_bound(prompt: int) -> int:
    """The most tokens a prompt estimated at `prompt` may really take (see ESTIMATE_ERROR_DIVISOR)."""
    return prompt + -(-prompt // ESTIMATE_ERROR_DIVISOR)


def max_prompt(ep: EndpointConfig) -> int | None:
    """The largest prompt estimate `ep` accepts (room left for MIN_OUTPUT), None when unbounded."""
    return ep.context_length - MIN_OUTPUT if ep.context_length else None


def output_budget(requested: int | None, prompt: int | None, ep: EndpointConfig) -> int | None:
    """The max_tokens to send `ep`: `requested`, capped at the endpoint's output limit and at what
    surely fits beside the prompt in its context (never below MIN_OUTPUT: a prompt that leaves less
    was refused by routing, and in between the upstream, which counts exactly, decides)."""
    if requested is None:
        return None
    budget = requested
    if ep.max_output_tokens is not None and budget > ep.max_output_tokens:
        budget = ep.max_output_tokens
    ctx = ep.context_length
    if ctx and prompt is not None and budget > ctx - prompt_bound(prompt):
        budget = max(MIN_OUTPUT, ctx - prompt_bound(prompt))
    return min(budget, requested)


def issuer_of(ep: EndpointConfig) -> str:
    return f"{ep.provider}|{ep.model}"


class SignatureIssuers:
    """A bounded LRU of signature -> issuing endpoint ("provider|upstream model"), in this process.
    `routing.shared_issuers.SharedIssuers` shares it between instances through Redis."""

    shared = False  # True: `learn` must run before a request is fitted (gateway._serve)

    def __init__(self, capacity: int = MAX_SIGNATURES) -> None:
        self._map: OrderedDict[int, str] = OrderedDict()
        self._capacity = capacity

    def record(self, signature: str, ep: EndpointConfig) -> None:
        self.remember(signature, issuer_of(ep))

    def remember(self, signature: str, issuer: str) -> None:
        key = hash(signature)
        self._map[key] = issuer
        self._map.move_to_end(key)
        if len(self._map) > self._capacity:
            self._map.popitem(last=False)

    def issuer(self, signature: str) -> str | None:
        return self._map.get(hash(signature))

    async def learn(self, req: ChatRequest) -> None:
        """Know the issuers of `req`'s reasoning state that other instances recorded (nothing here)."""


def state_of(p: ThinkingPart) -> str:
    """What identifies a thinking part's issuer: its signed state, else its text."""
    return p.signature or p.redacted or p.text


def dropped(req: ChatRequest, sent: ChatRequest) -> tuple[str, ...]:
    """The request fields `fit` left out for an endpoint that cannot honour them."""
    return ("reasoning",) if req.reasoning is not None and req.reasoning.on and sent.reasoning is None else ()


def fit(
    req: ChatRequest, ep: EndpointConfig, issuers: SignatureIssuers | None = None, prompt: int | None = None
) -> ChatRequest:
    """`req` adjusted to `ep` (see the module docstring); `req` itself when nothing changes.
    `prompt` is the request's prompt estimate (None: the context is not considered)."""
    reasons = "reasoning" in ep.capabilities
    drop_reasoning = req.reasoning is not None and not reasons
    budget = output_budget(req.max_tokens, prompt, ep)
    over = budget != req.max_tokens
    messages = req.messages
    if not reasons:
        messages = _scoped(messages, lambda p: True)
    elif issuers is not None:
        target = issuer_of(ep)

        def foreign(p: ThinkingPart) -> bool:
            issuer = issuers.issuer(state_of(p))
            return issuer is not None and issuer != target

        messages = _scoped(messages, foreign)
    if not drop_reasoning and not over and messages is req.messages:
        return req
    if not drop_reasoning:
        return msgspec.structs.replace(req, max_tokens=budget, messages=messages)
    # Anthropic's own forms of the same request go too: an adaptive `thinking` and `output_config.effort`
    extra = req.extra
    oc = extra.get("output_config")
    if isinstance(oc, dict) and "effort" in oc:
        rest = {k: v for k, v in oc.items() if k != "effort"}
        extra = {k: v for k, v in extra.items() if k != "output_config"} | ({"output_config": rest} if rest else {})
    return msgspec.structs.replace(
        req, reasoning=None, thinking_config=None, extra=extra, max_tokens=budget, messages=messages
    )


def _scoped(messages: list[Message], drop: Callable[[ThinkingPart], bool]) -> list[Message]:
    """The messages without the thinking parts `drop` names; the same list when there are none."""
    out: list[Message] | None = None
    for i, m in enumerate(messages):
        if m.role != "assistant" or not any(isinstance(p, ThinkingPart) and drop(p) for p in m.content):
            if out is not None:
                out.append(m)
            continue
        if out is None:
            out = list(messages[:i])
        kept = [p for p in m.content if not (isinstance(p, ThinkingPart) and drop(p))]
        out.append(msgspec.structs.replace(m, content=kept))
    return messages if out is None else out

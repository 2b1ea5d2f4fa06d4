"""What the ledger learns about a request: who called, each upstream attempt, and the usage it is
billed for.

`Metering` is allocated once per request and filled as the request goes: the attempts that failed
(in order), then the one that served. `filled_usage` is the one rule for an upstream that reported
no usage, or only part of it, whether the answer was streamed or not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import msgspec

from keeprouter.billing.ledger import Hold
from keeprouter.errors import UpstreamError
from keeprouter.formats import tokens
from keeprouter.formats.canonical import ChatRequest, ChatResponse, Part, ToolCallPart, Usage
from keeprouter.limits.base import Ticket
from keeprouter.routing.select import Candidate
from keeprouter.store.base import KeyRecord


@dataclass(slots=True)
class Caller:
    """Who is calling, through which client API (the admin key has a key record too, unlimited)."""

    api: str
    key: KeyRecord
    headers: Mapping[str, str]
    app: str | None = None
    app_title: str | None = None


@dataclass(slots=True)
class Attempt:
    """One upstream attempt. Times are `time.monotonic()` seconds: `started` when it began,
    `first_token_at` when its answer (whole, or a stream's first event read by the client) arrived,
    `ended` when it failed or its generation was recorded."""

    candidate: Candidate
    started: float
    first_token_at: float | None = None
    ended: float | None = None
    error: UpstreamError | None = None  # set when it failed
    usage: Usage | None = None  # the serving attempt's billed usage, once recorded
    max_tokens_sent: int | None = None  # when lowered to fit the endpoint's context
    dropped: tuple[str, ...] = ()  # request fields the endpoint could not honour (`routing.fit.dropped`)

    @property
    def status(self) -> int:
        """The upstream's own HTTP status when it answered (OpenRouter's provider_responses), else ours."""
        e = self.error
        if e is None:
            return 200
        return cast(int, (e.metadata or {}).get("provider_code", e.status))  # adapters set an int

    def row(self, max_tokens_requested: int | None) -> dict[str, Any]:
        """The attempt's entry in the generation's `provider_responses` (and in an error's metadata)."""
        c = self.candidate
        if self.error is not None:
            return {"provider": c.endpoint.provider, "model": c.model.id, "status": self.status,
                    "error": self.error.message}  # fmt: skip
        return {"provider": c.endpoint.provider, "model": c.model.id, "status": 200,
                "max_tokens_requested": max_tokens_requested, "max_tokens_sent": self.max_tokens_sent}  # fmt: skip


@dataclass(slots=True)
class CacheNote:
    """The response cache's part in one request (gateway.response_cache): the request's key and how
    long its answer is kept; `hit` when the answer came from the cache (then it is free)."""

    key: str
    ttl: float
    hit: bool = False

    @property
    def header(self) -> str:
        """The `X-KeepRouter-Cache` response header."""
        return "HIT" if self.hit else "MISS"


@dataclass(slots=True)
class Metering:
    """Everything the ledger needs once the answer is out."""

    gen_id: str
    caller: Caller
    request: ChatRequest
    prompt_estimate: int
    hold: Hold | None
    started: float
    failed: tuple[Attempt, ...] = ()  # the attempts that failed, in order (no list until one does)
    served: Attempt | None = None  # the attempt whose answer the caller gets
    ticket: Ticket | None = None  # the rate limiter's entry, for keys with rpm/tpm limits
    output_bound: int | None = None  # the most output any endpoint may produce, when known (0: none)
    cache: CacheNote | None = None  # set only while the response cache is on and the request uses it

    @property
    def candidate(self) -> Candidate | None:
        """The serving endpoint, once one answered."""
        return None if self.served is None else self.served.candidate

    def provider_responses(self) -> list[dict[str, Any]]:
        """The failed attempts, and the serving one when its max_tokens was lowered (not told to
        the caller, who asked for a ceiling, not a length, but recorded)."""
        rows = [a.row(None) for a in self.failed]
        served = self.served
        if served is not None and served.max_tokens_sent is not None:
            rows.append(served.row(self.request.max_tokens))
        return rows


@dataclass(slots=True)
class Completion:
    response: ChatResponse
    candidate: Candidate
    cost: Decimal
    meter: Metering


def output_text(content: list[Part]) -> str:
    """The text a whole answer produced, as an offline count sees it."""
    text = []
    for p in content:
        if isinstance(p, ToolCallPart):
            text.append(p.name + p.arguments)
        else:
            text.append(getattr(p, "text", "") or "")
    return "".join(text)


def filled_usage(reported: Usage | None, produced: str, meter: Metering, exact: Callable[[str], int] | None) -> Usage:
    """The upstream's usage with what it left out counted offline: the output from the text it
    produced, the input from the request; exactly with the model's tokenizer when one is loaded
    (`exact`), else estimated. The same rule for streamed and whole answers; callers skip it when
    the upstream reported both counts (the common case)."""
    u = reported if reported is not None else Usage()
    out = u.output_tokens or ((exact or tokens.count_output)(produced) if produced else 0)
    prompt = u.input_tokens or (tokens.count_request(meter.request, exact) if exact else meter.prompt_estimate)
    if out == u.output_tokens and prompt == u.input_tokens and reported is not None:
        return reported
    return msgspec.structs.replace(u, input_tokens=prompt, output_tokens=out)

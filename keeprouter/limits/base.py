"""The rate-limiter seam: what the gateway asks of a limiter, whichever holds the counters.

Semantics, the same for every implementation (a sliding window log, exact; no fixed buckets):
- Every request admitted for a key with a limit is logged with its admission time and its tokens.
  An entry counts while `now < admitted_at + WINDOW`.
- `rpm_limit` N: a request is admitted only while fewer than N entries count, so at most N
  requests are admitted in any 60 s window.
- `tpm_limit` T: a request reserves its worst case (prompt estimate + output budget, the numbers
  the credit reservation uses) and is admitted only if the tokens counting now plus that
  reservation stay within T; `settle` replaces the reservation by the real count (input + output)
  so concurrent requests cannot overshoot. A reservation larger than T alone is refused for good.
- `release` takes an entry out entirely (the request was refused further on, e.g. by the credit
  check, and never reached an upstream). `admit`, `settle` and `release` are idempotent on the
  ticket id, so a step retried after a lost reply counts once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from keeprouter.errors import RateLimited

WINDOW = 60.0  # seconds


class Limits(NamedTuple):
    rpm: int | None
    tpm: int | None


@dataclass(slots=True)
class Ticket:
    """One admitted request's entry; settle or release it (at most once each makes sense)."""

    id: str
    key_hash: str
    tokens: int  # counted against tpm_limit: the reservation, then the real count
    local: bool = False  # counted in this process (Redis was away): settled here too


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was not admitted, for the 429 and its X-RateLimit-* headers."""

    limit: Literal["rpm_limit", "tpm_limit"]
    value: int  # the limit
    remaining: int  # requests or tokens left in the window now
    retry_after: float | None  # seconds until it would be admitted; None: never (bigger than tpm_limit)
    now: float  # Unix seconds, the limiter's clock
    tokens: int  # what the request reserved

    @property
    def reset_ms(self) -> int:
        """When the window has room again, epoch milliseconds (OpenRouter's X-RateLimit-Reset)."""
        return math.ceil((self.now + (self.retry_after or WINDOW)) * 1000)

    def error(self) -> RateLimited:
        """Our own 429, told apart from an upstream's by its message (naming the key's limit) and
        by OpenRouter's X-RateLimit-* headers (Reset in epoch milliseconds)."""
        if self.limit == "rpm_limit":
            message = f"rate limit exceeded: rpm_limit of {self.value} requests per minute for this key"
        elif self.retry_after is None:
            message = (
                f"rate limit exceeded: this request reserves {self.tokens} tokens (prompt and max_tokens), more"
                f" than the tpm_limit of {self.value} tokens per minute for this key; lower max_tokens"
            )
        else:
            message = (
                f"rate limit exceeded: tpm_limit of {self.value} tokens per minute for this key"
                f" (this request reserves {self.tokens} tokens: prompt and max_tokens)"
            )
        wait = self.retry_after
        err = RateLimited(message, retry_after=None if wait is None else str(max(1, math.ceil(wait))))
        err.headers = {
            "X-RateLimit-Limit": str(self.value),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_ms),
        }
        if wait is None:  # waiting cannot help: tell the SDKs not to retry
            err.headers["x-should-retry"] = "false"
        return err


def decide(
    limits: Limits,
    tokens: int,
    requests_now: int,
    tokens_now: int,
    now: float,
    wait_requests: Callable[[int, float], float],
    wait_tokens: Callable[[int, int, float], float],
) -> Refusal | None:
    """The in-process admission rule (the Redis script applies the same one): None to admit.

    A reservation bigger than tpm_limit is refused for good (retry_after None); over both limits,
    the rpm refusal is reported with the wait that satisfies both."""
    rpm, tpm = limits
    over_t = tpm is not None and tokens_now + tokens > tpm
    if over_t and tpm is not None and tokens > tpm:
        return Refusal("tpm_limit", tpm, max(tpm - tokens_now, 0), None, now, tokens)
    wait_t = wait_tokens(tpm, tokens, now) if over_t and tpm is not None else 0.0
    if rpm is not None and requests_now >= rpm:
        return Refusal("rpm_limit", rpm, 0, max(wait_requests(rpm, now), wait_t), now, tokens)
    if over_t and tpm is not None:
        return Refusal("tpm_limit", tpm, max(tpm - tokens_now, 0), wait_t, now, tokens)
    return None


class RateLimiter(Protocol):
    async def admit(self, ticket_id: str, key_hash: str, limits: Limits, tokens: int) -> Ticket | Refusal:
        """Admit (log the entry and return its ticket) or refuse, in one atomic step."""
        ...

    async def settle(self, ticket: Ticket, tokens: int) -> None:
        """Count `tokens` (the real input + output) instead of the reservation."""
        ...

    async def release(self, ticket: Ticket) -> None:
        """Remove the entry: the request never reached an upstream."""
        ...

    async def start(self) -> None:
        """Called once at start-up (load scripts, start a probe); a no-op in memory."""
        ...

    async def close(self) -> None: ...

"""The storage seam: plain record types and the small protocols every backend implements.

Contracts common to all backends:
- Money crosses this seam as exact `Decimal` USD and is stored as integer nano-dollars
  (see `billing.pricing`); a settled cost is rounded half-even once, a hold rounded up.
- Times are float seconds since the Unix epoch (UTC). Stores never read a clock: every method
  that needs "now" takes it, so the logic layer owns time and tests can move it.
- Usage periods are UTC: the day, the week starting Monday, the calendar month.
- A key's `usage` always equals the sum of its generations' costs; `reserved` always equals the sum
  of its open holds. Both are kept in the same transaction as the rows they summarise (on SQLite,
  holds live in the owning process's memory: see store/sqlite.py).
- Deleted keys are kept (their generations still point at them) but are invisible to every key
  method and refused by `reserve`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Any, Literal, NamedTuple, Protocol

import msgspec

ZERO = Decimal(0)
SECONDS_PER_DAY = 86_400
LimitReset = Literal["daily", "weekly", "monthly"]
# The admin key's own row: unlimited, so admin requests are metered and recorded like any key's.
ADMIN_HASH = "admin"
GenerationStatus = Literal["ok", "error", "cancelled"]
LIMIT_RESETS: tuple[str, ...] = ("daily", "weekly", "monthly")


def to_nanos(usd: Decimal) -> int:
    """USD -> integer nano-dollars (the storage unit), rounded half-even: settled costs."""
    scaled = usd.scaleb(9)
    nanos = int(scaled)  # toward zero; exact when `usd` is whole nano-dollars, as every settled cost is
    if nanos == scaled:
        return nanos  # nothing to round (half the work of to_integral_value, on every settle)
    return int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN))


def to_nanos_ceil(usd: Decimal) -> int:
    """USD -> integer nano-dollars, rounded up: holds never cover less than their estimate."""
    scaled = usd.scaleb(9)
    nanos = int(scaled)
    if nanos == scaled:  # a whole number already (most estimates): nothing to round
        return nanos
    return int(scaled.to_integral_value(rounding=ROUND_CEILING))


def from_nanos(nanos: int) -> Decimal:
    """Integer nano-dollars -> exact USD."""
    return Decimal(nanos).scaleb(-9)


class KeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An API key as stored: never the key itself, only its sha256 hex `hash` and a `label`."""

    hash: str
    name: str
    label: str  # "sk-kr-v1-abc...wxyz": enough to recognise a key, useless to use it
    created_at: float
    disabled: bool = False
    limit: Decimal | None = None  # USD; None = unlimited
    limit_reset: LimitReset | None = None  # the limit applies per UTC day/week/month
    expires_at: float | None = None
    rpm_limit: int | None = None  # requests admitted per 60 s; None = unlimited (keeprouter.limits)
    tpm_limit: int | None = None  # input + output tokens per 60 s; None = unlimited
    usage: Decimal = ZERO  # all time
    usage_daily: Decimal = ZERO
    usage_weekly: Decimal = ZERO
    usage_monthly: Decimal = ZERO
    limit_usage: Decimal = ZERO  # what counts against `limit`: usage in the current period, or all time
    reserved: Decimal = ZERO  # open holds
    updated_at: float | None = None
    is_admin: bool = False
    user_id: str | None = None  # the owner; team_id then mirrors the user's team
    team_id: str | None = None  # set alone: a team's service key
    models: tuple[str, ...] = ()  # allowlist of model ids; empty = every model
    max_parallel_requests: int | None = None  # requests in flight at once; None = unlimited

    @property
    def limit_remaining(self) -> Decimal | None:
        if self.limit is None:
            return None
        return max(self.limit - self.limit_usage, ZERO)


class KeyPatch(msgspec.Struct, frozen=True, kw_only=True):
    """A partial key update: UNSET fields are left alone (so `limit=None` means "unlimited")."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    disabled: bool | msgspec.UnsetType = msgspec.UNSET
    limit: Decimal | msgspec.UnsetType | None = msgspec.UNSET
    limit_reset: LimitReset | msgspec.UnsetType | None = msgspec.UNSET
    expires_at: float | msgspec.UnsetType | None = msgspec.UNSET
    rpm_limit: int | msgspec.UnsetType | None = msgspec.UNSET
    tpm_limit: int | msgspec.UnsetType | None = msgspec.UNSET
    models: tuple[str, ...] | msgspec.UnsetType = msgspec.UNSET
    max_parallel_requests: int | msgspec.UnsetType | None = msgspec.UNSET


class Budget(msgspec.Struct, frozen=True, kw_only=True):
    """What teams and users share with keys: a limit per period, an allowlist and a request rate.

    Reserving on a key also reserves on its user and its team, all or nothing, exactly as on the key
    alone: `limit_usage + reserved + amount <= limit` at every level."""

    id: str
    created_at: float
    limit: Decimal | None = None  # USD; None = unlimited
    limit_reset: LimitReset | None = None
    models: tuple[str, ...] = ()  # empty = every model
    rpm_limit: int | None = None
    usage: Decimal = ZERO  # all time
    limit_usage: Decimal = ZERO  # what counts against `limit` now (the current period's, or all time)
    reserved: Decimal = ZERO  # open holds
    updated_at: float | None = None

    @property
    def limit_remaining(self) -> Decimal | None:
        if self.limit is None:
            return None
        return max(self.limit - self.limit_usage, ZERO)


class TeamRecord(Budget, frozen=True, kw_only=True):
    name: str


class UserRecord(Budget, frozen=True, kw_only=True):
    email: str  # unique among live users, case-insensitively
    team_id: str | None = None
    team_admin: bool = False


class BudgetPatch(msgspec.Struct, frozen=True, kw_only=True):
    """A partial team or user update (UNSET fields stay). `name` is a team's, `email`, `team_id` and
    `team_admin` a user's; a user's new team also becomes the team of every key the user owns."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    email: str | msgspec.UnsetType = msgspec.UNSET
    team_id: str | msgspec.UnsetType | None = msgspec.UNSET
    team_admin: bool | msgspec.UnsetType = msgspec.UNSET
    limit: Decimal | msgspec.UnsetType | None = msgspec.UNSET
    limit_reset: LimitReset | msgspec.UnsetType | None = msgspec.UNSET
    models: tuple[str, ...] | msgspec.UnsetType = msgspec.UNSET
    rpm_limit: int | msgspec.UnsetType | None = msgspec.UNSET


class GenerationRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One finished request, as `/api/v1/generation` reports it. `cost` is what the key paid."""

    id: str  # "gen-..."
    key_hash: str
    model: str
    provider: str
    upstream_model: str
    api: str  # the client API: "openai" | "anthropic"
    created_at: float
    streamed: bool = False
    status: GenerationStatus = "ok"
    finish_reason: str | None = None
    tokens_prompt: int = 0  # includes cached reads and writes
    tokens_completion: int = 0  # includes reasoning
    tokens_cached: int = 0  # cache reads
    tokens_cache_write: int = 0
    tokens_reasoning: int = 0
    cost: Decimal = ZERO
    # What the prompt cache saved against plain input prices (negative when writes cost more);
    # OpenRouter's `cache_discount`.
    cache_discount: Decimal = ZERO
    latency_ms: int | None = None
    ttft_ms: int | None = None  # OpenRouter's generation_time
    throughput: float | None = None  # completion tokens per second
    app: str | None = None  # HTTP-Referer
    app_title: str | None = None  # X-Title
    attempts: list[dict[str, Any]] = msgspec.field(default_factory=list)  # earlier endpoint failures
    error: str | None = None
    cached: bool = False  # replayed from the response cache: free, its tokens the original answer's


class GenerationFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which generations a log shows: every field set must match (None: any). `user_id` and
    `team_id` match through the key's owner as it is now (a user moved to another team takes the
    history of their keys along)."""

    key_hash: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    model: str | None = None
    id: str | None = None


class KeyUsage(msgspec.Struct, frozen=True, kw_only=True):
    """A key's ledger, for audits: `usage == settled` and `reserved == held` always hold."""

    usage: Decimal
    reserved: Decimal
    settled: Decimal  # sum of the key's generation costs
    held: Decimal  # sum of the key's open holds
    open_holds: int
    generations: int


class ActivityRow(msgspec.Struct, frozen=True, kw_only=True):
    """OpenRouter's `/api/v1/activity` row: one (UTC date, model, provider)."""

    date: str  # YYYY-MM-DD
    model: str
    provider: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    usage: Decimal


class CacheUsageRow(msgspec.Struct, frozen=True, kw_only=True):
    """What the prompt cache did for one (model, key) over some UTC days: prompt tokens, the part read
    from the provider's cache, and what that saved (the sum of `cache_discount`). Generations answered
    from the response cache are left out (they repeat another generation's tokens)."""

    model: str
    key_hash: str
    requests: int
    prompt_tokens: int
    cached_tokens: int
    cache_discount: Decimal


class AppRow(msgspec.Struct, frozen=True, kw_only=True):
    """App leaderboard row, by HTTP-Referer (rows without one are left out)."""

    app: str
    app_title: str | None
    requests: int
    tokens: int


class EndpointMinute(msgspec.Struct, frozen=True, kw_only=True):
    """One endpoint's health over one wall-clock minute (counts and sums add up across writers)."""

    model: str
    provider: str
    upstream_model: str
    minute: int  # epoch seconds at the start of the minute (a multiple of 60)
    requests: int
    successes: int
    rate_limited: int  # 429s: neither success nor failure for uptime
    latency_sum: float = 0.0  # seconds to first token, over `latency_count` requests
    latency_count: int = 0
    throughput_sum: float = 0.0  # output tokens per second, over `throughput_count` requests
    throughput_count: int = 0
    latency_p50: float | None = None
    latency_p90: float | None = None


class EndpointDay(msgspec.Struct, frozen=True, kw_only=True):
    """One endpoint's health over one UTC day, folded from its minutes."""

    date: str  # YYYY-MM-DD
    model: str
    provider: str
    upstream_model: str
    requests: int
    successes: int
    rate_limited: int
    uptime: float | None  # percent of non-rate-limited requests that succeeded; None without any
    latency: float | None  # mean seconds to first token
    throughput: float | None  # mean output tokens per second


class SessionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A console sign-in session: only a sha256 of its id is stored, and the key it signs in as."""

    id_hash: str
    key_hash: str
    created_at: float
    last_seen: float
    expires_at: float  # absolute end; the idle limit is the caller's, checked against last_seen


class SessionStore(Protocol):
    async def insert_session(self, session: SessionRecord) -> None: ...

    async def get_session(self, id_hash: str) -> SessionRecord | None: ...

    async def touch_session(self, id_hash: str, now: float) -> None:
        """Record activity (the idle limit counts from `last_seen`)."""
        ...

    async def delete_session(self, id_hash: str) -> None: ...

    async def delete_sessions_before(self, expires_at: float, idle_since: float) -> int:
        """Drop every session past its absolute end or idle since before `idle_since`."""
        ...


class PeopleStore(Protocol):
    """Teams and users. Deleted ones are kept (keys and holds point at them) but invisible."""

    async def insert_team(self, team: TeamRecord) -> None: ...

    async def get_team(self, team_id: str, now: float) -> TeamRecord | None: ...

    async def list_teams(self, now: float, *, offset: int = 0, limit: int = 100) -> list[TeamRecord]: ...

    async def update_team(self, team_id: str, patch: BudgetPatch, now: float) -> TeamRecord | None: ...

    async def delete_team(self, team_id: str, now: float) -> bool:
        """Mark a live team deleted; False when there was none. Refuses (ValueError) while live users
        or keys still belong to it."""
        ...

    async def insert_user(self, user: UserRecord) -> None:
        """Insert a user; ValueError when a live user already has the email (case-insensitively)."""
        ...

    async def get_user(self, user_id: str, now: float) -> UserRecord | None: ...

    async def find_user(self, email: str, now: float) -> UserRecord | None:
        """The live user with this email, compared case-insensitively."""
        ...

    async def list_users(
        self, now: float, *, team_id: str | None = None, offset: int = 0, limit: int = 100
    ) -> list[UserRecord]: ...

    async def update_user(self, user_id: str, patch: BudgetPatch, now: float) -> UserRecord | None: ...

    async def delete_user(self, user_id: str, now: float) -> bool:
        """Mark a live user deleted and disable every key they own, in one transaction."""


class StoredResponse(msgspec.Struct, frozen=True, kw_only=True):
    """A Responses API response kept for `previous_response_id`, retrieval and `item_reference`.
    `input_items` is the whole context it was generated from (earlier turns included), `response`
    its response object: both JSON text, as the client saw them."""

    id: str  # "resp_..."
    owner: str  # who may read it back: the key's hash (or its user's id, where keys have one)
    created_at: float
    input_items: str
    response: str


class ResponseStore(Protocol):
    async def insert_response(self, resp: StoredResponse, items: Sequence[tuple[str, str]]) -> None:
        """Store `resp` and index `items` ((item id, item JSON): the items it added) in ONE
        transaction; storing the same id again changes nothing."""
        ...

    async def get_response(self, owner: str, response_id: str) -> StoredResponse | None:
        """The response if `owner` stored it (another owner's is None, as an unknown one)."""
        ...

    async def get_items(self, owner: str, item_ids: Sequence[str]) -> dict[str, str]:
        """Item JSON by id, of `owner`'s stored responses; unknown ids are left out."""
        ...

    async def delete_response(self, owner: str, response_id: str) -> bool:
        """Drop `owner`'s response and its items; False when there was none."""
        ...

    async def delete_responses_before(self, created_before: float, limit: int) -> int:
        """Drop at most `limit` responses (and their items) created before `created_before`."""
        ...


class ResponseCacheStore(Protocol):
    """The response cache in the database (when Redis is not configured): answers by key, each
    with its expiry; `keep` bounds the rows a sweep leaves."""

    async def get_cached_answer(self, key: str, now: float) -> str | None:
        """The answer stored under `key`, unless it expired by `now`."""
        ...

    async def put_cached_answer(self, key: str, answer: str, expires_at: float) -> None:
        """Store (or replace) the answer under `key`."""
        ...

    async def sweep_cached_answers(self, now: float, keep: int) -> int:
        """Delete the expired answers, then the soonest to expire beyond `keep`; how many went."""
        ...


class KeyStore(Protocol):
    async def insert_key(self, key: KeyRecord) -> None:
        """Insert a new key; its usage fields are ignored (a new key has used nothing)."""
        ...

    async def get_key(self, key_hash: str, now: float) -> KeyRecord | None:
        """The live (not deleted) key with usage figures as of `now`, or None."""
        ...

    async def list_keys(
        self,
        now: float,
        *,
        offset: int = 0,
        limit: int = 100,
        include_disabled: bool = True,
        user_id: str | None = None,
        team_id: str | None = None,
    ) -> list[KeyRecord]:
        """Live keys, oldest first; only a user's (`user_id`) or a team's (`team_id`) when given."""
        ...

    async def update_key(self, key_hash: str, patch: KeyPatch, now: float) -> KeyRecord | None:
        """Apply `patch` to a live key and return it, or None when there is no such key."""
        ...

    async def delete_key(self, key_hash: str, now: float) -> bool:
        """Mark a live key deleted (kept for its history); False when there was none."""
        ...


class LedgerStore(Protocol):
    async def reserve(self, key_hash: str, hold_id: str, amount: Decimal, expires_at: float, now: float) -> bool:
        """Atomically hold `amount` on a live, enabled, unexpired key, or refuse (False).

        Admits only when limit_usage + reserved + amount <= limit; a key without a limit is always
        admitted but is still held, so its open requests are visible. The same check and hold are
        made, in the same step, on the key's user and team (all three or none); the hold remembers
        them, so releasing it gives each its credit back. Race-free across every
        process sharing a PostgreSQL database; on SQLite, within the one process that owns the file."""
        ...

    async def settle(self, hold_id: str, gen: GenerationRecord, now: float) -> bool:
        """ONE transaction: drop the hold, add `gen.cost` to the key's usage (and to its user's and
        team's), insert `gen`.

        Idempotent on `gen.id`: settling again bills nothing (returns False). A hold that has
        already expired or been released is simply absent; the cost is still billed."""
        ...

    async def release(self, hold_id: str) -> bool:
        """Drop a hold without billing (the request never reached an upstream)."""
        ...

    async def expire_holds(self, now: float) -> int:
        """Drop every hold whose `expires_at <= now` (a crashed gateway's); returns how many."""
        ...

    async def key_usage(self, key_hash: str) -> KeyUsage | None:
        """The key's ledger, recomputed from the rows, for audits and tests."""
        ...


class ReportStore(Protocol):
    async def get_generation(self, generation_id: str) -> GenerationRecord | None: ...

    async def list_generations(
        self, key_hash: str, *, before: float | None = None, limit: int = 50
    ) -> list[GenerationRecord]:
        """A key's generations, newest first, strictly older than `before` when given."""
        ...

    async def find_generations(
        self, match: GenerationFilter, *, before: float | None = None, limit: int = 50
    ) -> list[GenerationRecord]:
        """The generations `match` selects, newest first, strictly older than `before` when given."""
        ...

    async def activity(
        self, start: dt.date, end: dt.date, *, key_hash: str | None = None, team_id: str | None = None
    ) -> list[ActivityRow]:
        """Per (date, model, provider) aggregates for UTC dates start..end inclusive (of one key's,
        or of one team's keys', generations when given)."""
        ...

    async def cache_usage(
        self, start: dt.date, end: dt.date, *, key_hash: str | None = None, model: str | None = None
    ) -> list[CacheUsageRow]:
        """Per (model, key) over the UTC days `start`..`end`, optionally of one key or one model."""
        ...

    async def app_rankings(
        self, start: dt.date, end: dt.date, *, limit: int = 50, model: str | None = None
    ) -> list[AppRow]:
        """Apps by total tokens over UTC dates start..end inclusive (of one model's generations when
        `model` is given), biggest first."""
        ...


class HealthStore(Protocol):
    async def write_endpoint_minutes(self, rows: Sequence[EndpointMinute]) -> None:
        """Add `rows` in ONE transaction. A (endpoint, minute) already stored is ADDED to, not
        replaced: several instances sharing the database each write their own share of a minute."""
        ...

    async def endpoint_daily(self, model_id: str | None, start: dt.date, end: dt.date) -> list[EndpointDay]:
        """Per endpoint per UTC date start..end inclusive (of one model, or all when None), days
        with data only, ordered by date, model, provider, upstream_model."""
        ...


class Store(
    KeyStore,
    PeopleStore,
    LedgerStore,
    ReportStore,
    HealthStore,
    SessionStore,
    ResponseStore,
    ResponseCacheStore,
    Protocol,
):
    async def ping(self) -> None:
        """One trivial query; raises whatever the driver raises when the database does not answer
        (readiness; callers bound it in time)."""
        ...

    async def migrate(self) -> None:
        """Apply the not-yet-applied numbered migrations, in order; safe to run again and from
        several processes at once."""
        ...

    async def close(self) -> None: ...


class Periods(NamedTuple):
    """The first UTC day (days since the epoch) of the day, week and month containing a moment."""

    day: int
    week: int
    month: int


def periods(now: float) -> Periods:
    return _periods_of(int(now // SECONDS_PER_DAY))


@functools.lru_cache(maxsize=64)  # read on every reservation and settle: the day changes rarely
def _periods_of(day: int) -> Periods:
    week = day - (day + 3) % 7  # 1970-01-01 was a Thursday; weeks start on Monday
    month = epoch_day(dt.date.fromordinal(day + _EPOCH_ORDINAL).replace(day=1))
    return Periods(day, week, month)


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def epoch_day(d: dt.date) -> int:
    return d.toordinal() - _EPOCH_ORDINAL


def day_date(day: int) -> dt.date:
    return dt.date.fromordinal(day + _EPOCH_ORDINAL)

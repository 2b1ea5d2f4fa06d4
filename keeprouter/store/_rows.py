"""Row <-> record conversion and the SQL fragments both backends share (only placeholders differ).

Every fragment here is a constant built at import from constant pieces: no value is ever
interpolated into SQL; values always travel as bind parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from keeprouter.store.base import (
    SECONDS_PER_DAY,
    ActivityRow,
    GenerationFilter,
    GenerationRecord,
    KeyRecord,
    day_date,
    from_nanos,
    to_nanos,
)


def period_start_sql(d: str, w: str, m: str) -> str:
    """The first epoch day of the key's current limit period (0 for a key without limit_reset).

    Callers pass the placeholders holding today's `Periods`; the key row picks its own."""
    return f"(CASE limit_reset WHEN 'daily' THEN {d} WHEN 'weekly' THEN {w} WHEN 'monthly' THEN {m} ELSE 0 END)"


def limit_usage_sql(d: str, w: str, m: str) -> str:
    """Usage that counts against the key's limit: its current period's, or all time.

    A stored period older than the current one has rolled over, so it counts as 0."""
    return (
        "(CASE WHEN limit_reset IS NULL THEN usage_nanos"
        f" WHEN period_start >= {period_start_sql(d, w, m)} THEN period_usage_nanos ELSE 0 END)"
    )


def key_select_sql(d: str, w: str, m: str) -> str:
    """SELECT of every live key's columns in `key_from_row` order; append WHERE/ORDER clauses."""

    def since(p: str) -> str:
        return (
            "(SELECT COALESCE(SUM(u.usage_nanos), 0) FROM key_usage_daily u"
            f" WHERE u.key_hash = k.hash AND u.day >= {p})"
        )

    return (
        "SELECT hash, name, label, disabled, limit_nanos, limit_reset, expires_at, usage_nanos, "
        f"reserved_nanos, {limit_usage_sql(d, w, m)}, created_at, updated_at, "
        f"{since(d)}, {since(w)}, {since(m)}, rpm_limit, tpm_limit, user_id, team_id, models, max_parallel_requests"
        " FROM keys k WHERE deleted_at IS NULL"
    )


def key_from_row(row: Sequence[Any]) -> KeyRecord:
    return KeyRecord(
        hash=row[0],
        name=row[1],
        label=row[2],
        disabled=bool(row[3]),
        limit=None if row[4] is None else from_nanos(row[4]),
        limit_reset=row[5],
        expires_at=row[6],
        usage=from_nanos(row[7]),
        reserved=from_nanos(row[8]),
        limit_usage=from_nanos(int(row[9])),
        created_at=row[10],
        updated_at=row[11],
        usage_daily=from_nanos(int(row[12])),
        usage_weekly=from_nanos(int(row[13])),
        usage_monthly=from_nanos(int(row[14])),
        rpm_limit=row[15],
        tpm_limit=row[16],
        user_id=row[17],
        team_id=row[18],
        models=models_from_text(row[19]),
        max_parallel_requests=row[20],
    )


def models_from_text(text: str | None) -> tuple[str, ...]:
    """A stored allowlist (a JSON list; empty = every model) -> a tuple."""
    return tuple(orjson.loads(text)) if text else ()


def models_to_text(models: Sequence[str]) -> str:
    return orjson.dumps(list(models)).decode()


GEN_COLUMNS = (
    "id", "key_hash", "model", "provider", "upstream_model", "api", "streamed", "status", "finish_reason",
    "tokens_prompt", "tokens_completion", "tokens_cached", "tokens_cache_write", "tokens_reasoning",
    "cost_nanos", "latency_ms", "ttft_ms", "throughput", "app", "app_title", "attempts", "error",
    "created_at", "day", "cache_discount_nanos", "cached",
)  # fmt: skip
GEN_COLUMN_LIST = ", ".join(GEN_COLUMNS)


def gen_values(gen: GenerationRecord) -> tuple[Any, ...]:
    """Bind values in GEN_COLUMNS order. The cost is rounded half-even to whole nano-dollars here,
    the one place a settled cost is rounded."""
    return (
        gen.id, gen.key_hash, gen.model, gen.provider, gen.upstream_model, gen.api, gen.streamed,
        gen.status, gen.finish_reason, gen.tokens_prompt, gen.tokens_completion, gen.tokens_cached,
        gen.tokens_cache_write, gen.tokens_reasoning, to_nanos(gen.cost), gen.latency_ms, gen.ttft_ms,
        gen.throughput, gen.app, gen.app_title, orjson.dumps(gen.attempts).decode(), gen.error,
        gen.created_at, int(gen.created_at // SECONDS_PER_DAY), to_nanos(gen.cache_discount), gen.cached,
    )  # fmt: skip


def activity_from_row(r: Sequence[Any]) -> ActivityRow:
    """(day, model, provider, requests, prompt, completion, reasoning, cost_nanos) -> ActivityRow."""
    return ActivityRow(
        date=day_date(r[0]).isoformat(), model=r[1], provider=r[2], requests=r[3], prompt_tokens=r[4],
        completion_tokens=r[5], reasoning_tokens=r[6], usage=from_nanos(r[7]),
    )  # fmt: skip


def gen_from_row(row: Sequence[Any]) -> GenerationRecord:
    values = dict(zip(GEN_COLUMNS, row, strict=True))
    del values["day"]
    values["cost"] = from_nanos(values.pop("cost_nanos"))
    values["cache_discount"] = from_nanos(values.pop("cache_discount_nanos"))
    values["streamed"] = bool(values["streamed"])
    values["cached"] = bool(values["cached"])
    values["attempts"] = orjson.loads(values["attempts"])
    return GenerationRecord(**values)


# One clause per GenerationFilter field; "{}" is the field's bind placeholder.
_GEN_MATCH = (
    ("key_hash", "key_hash = {}"),
    ("model", "model = {}"),
    ("id", "id = {}"),
    ("user_id", "key_hash IN (SELECT hash FROM keys WHERE user_id = {})"),
    ("team_id", "key_hash IN (SELECT hash FROM keys WHERE team_id = {})"),
)


def generation_match_sql(match: GenerationFilter, bind: Callable[[Any], str]) -> str:
    """The `AND ...` clauses for the fields `match` sets; `bind(value)` records a value and returns its
    placeholder. Only the constant clauses above reach the SQL text."""
    return "".join(
        f" AND {clause.format(bind(getattr(match, name)))}"
        for name, clause in _GEN_MATCH
        if getattr(match, name) is not None
    )


def binder(args: list[Any], numbered: bool = False) -> Callable[[Any], str]:
    """A `bind` for generation_match_sql: appends to `args`; "?" (SQLite) or "$n" (PostgreSQL)."""

    def bind(value: Any) -> str:
        args.append(value)
        return f"${len(args)}" if numbered else "?"

    return bind

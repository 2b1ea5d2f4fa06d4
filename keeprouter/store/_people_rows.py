"""Teams and users: the SQL both backends share (only placeholders differ) and row conversion.

A team's or user's budget columns are named as a key's (`limit_nanos`, `limit_reset`, `usage_nanos`,
`period_start`, `period_usage_nanos`, `reserved_nanos`), so the key's period SQL in `_rows` serves
them unchanged. Table and column names here are constants, never input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from keeprouter.store._rows import limit_usage_sql, models_from_text, models_to_text, period_start_sql
from keeprouter.store.base import BudgetPatch, TeamRecord, UserRecord, from_nanos, to_nanos

Table = Literal["teams", "users"]
# The columns of each table past the shared budget ones, in record-field order.
EXTRA: dict[Table, tuple[str, ...]] = {"teams": ("name",), "users": ("email", "team_id", "team_admin")}
_BUDGET_COLUMNS = "id, created_at, limit_nanos, limit_reset, models, rpm_limit, usage_nanos"


def select_sql(table: Table, d: str, w: str, m: str) -> str:
    """SELECT of every live row's columns in `from_row` order; append WHERE/ORDER clauses."""
    extra = ", ".join(EXTRA[table])
    return (
        f"SELECT {_BUDGET_COLUMNS}, {limit_usage_sql(d, w, m)}, reserved_nanos, updated_at, {extra}"
        f" FROM {table} WHERE deleted_at IS NULL"
    )


def insert_sql(table: Table, placeholders: Sequence[str]) -> str:
    cols = f"id, created_at, updated_at, limit_nanos, limit_reset, models, rpm_limit, {', '.join(EXTRA[table])}"
    return f"INSERT INTO {table} ({cols}) VALUES ({', '.join(placeholders)})"


def period_usage_sql(table: Table, owner: str, since: str) -> str:
    """Exact usage of a team or user since epoch day `since`, from the generations of its keys (a
    new `limit_reset` recounts the new period, as a key's does from its daily rows)."""
    column = "team_id" if table == "teams" else "user_id"
    return (
        "(SELECT COALESCE(SUM(g.cost_nanos), 0) FROM generations g JOIN keys k ON k.hash = g.key_hash"
        f" WHERE k.{column} = {owner} AND g.day >= {since})"
    )


def new_period_start_sql(d: str, w: str, m: str, new_reset: str) -> str:
    """The period start under a NEW limit_reset (bound as `new_reset`): SET expressions see the
    row's old one."""
    return period_start_sql(d, w, m).replace("limit_reset", new_reset)


def _budget(row: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": row[0],
        "created_at": row[1],
        "limit": None if row[2] is None else from_nanos(row[2]),
        "limit_reset": row[3],
        "models": models_from_text(row[4]),
        "rpm_limit": row[5],
        "usage": from_nanos(row[6]),
        "limit_usage": from_nanos(int(row[7])),
        "reserved": from_nanos(row[8]),
        "updated_at": row[9],
    }


def team_from_row(row: Sequence[Any]) -> TeamRecord:
    return TeamRecord(**_budget(row), name=row[10])


def user_from_row(row: Sequence[Any]) -> UserRecord:
    return UserRecord(**_budget(row), email=row[10], team_id=row[11], team_admin=bool(row[12]))


def insert_values(rec: TeamRecord | UserRecord) -> tuple[Any, ...]:
    limit = None if rec.limit is None else to_nanos(rec.limit)
    base = (rec.id, rec.created_at, rec.updated_at, limit, rec.limit_reset, models_to_text(rec.models), rec.rpm_limit)
    if isinstance(rec, TeamRecord):
        return (*base, rec.name)
    return (*base, rec.email, rec.team_id, rec.team_admin)


# Patchable columns of each table (a user's team_id is handled apart: their keys follow it).
PATCH_COLUMNS: dict[Table, tuple[str, ...]] = {
    "teams": ("name", "limit_reset", "rpm_limit"),
    "users": ("email", "team_admin", "limit_reset", "rpm_limit", "team_id"),
}


def patch_values(table: Table, patch: BudgetPatch) -> dict[str, Any]:
    """The patch's set fields as {column: bound value} (limit and models converted)."""
    out: dict[str, Any] = {}
    for column in PATCH_COLUMNS[table]:
        value = getattr(patch, column)
        if value is not msgspec.UNSET:
            out[column] = value
    if patch.limit is not msgspec.UNSET:
        out["limit_nanos"] = None if patch.limit is None else to_nanos(patch.limit)
    if patch.models is not msgspec.UNSET:
        out["models"] = models_to_text(patch.models)
    return out

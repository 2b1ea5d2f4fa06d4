"""The numbered migration files shipped with the package (store/migrations/<dialect>/NNNN_name.sql).

Each backend applies the ones missing from its `schema_migrations` table, in number order, each in
the same transaction as its `schema_migrations` row. Files are never rewritten once released.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Literal, NamedTuple

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

# Created outside the numbered files: it records them.
SCHEMA_MIGRATIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)


class Migration(NamedTuple):
    version: int
    name: str
    sql: str


def migrations(dialect: Literal["sqlite", "postgres"]) -> list[Migration]:
    folder = resources.files("keeprouter.store") / "migrations" / dialect
    found: list[Migration] = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), entry.name.removesuffix(".sql"), entry.read_text()))
    found.sort()
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in store/migrations/{dialect}")
    return found

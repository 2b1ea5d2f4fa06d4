"""The group commit (`_sqlite_sync._group`): one transaction for a batch of bodies, and a failing
body undoes its own writes only, alone in its batch or among others."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from keeprouter.store._sqlite_sync import _group


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    c = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    c.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
    return c


def _write(c: sqlite3.Connection, k: str, v: int) -> int:
    c.execute("INSERT INTO t VALUES (?, ?)", (k, v))
    return v


def _write_then_fail(c: sqlite3.Connection, k: str) -> None:
    c.execute("INSERT INTO t VALUES (?, 1)", (k,))
    raise ValueError("refused after writing")


def rows(c: sqlite3.Connection) -> list[Any]:
    return c.execute("SELECT k, v FROM t ORDER BY k").fetchall()


@pytest.mark.parametrize("alone", [True, False])
def test_a_failing_body_undoes_only_its_own_writes(conn: sqlite3.Connection, alone: bool) -> None:
    batch: list[Any] = [(_write_then_fail, ("bad",))]
    if not alone:
        batch = [(_write, ("a", 1)), *batch, (_write, ("b", 2))]
    out = _group(conn, batch)
    assert [ok for ok, _ in out] == ([False] if alone else [True, False, True])
    assert isinstance(out[0 if alone else 1][1], ValueError)
    assert rows(conn) == ([] if alone else [("a", 1), ("b", 2)])
    assert not conn.in_transaction  # committed or rolled back, never left open
    assert _group(conn, [(_write, ("c", 3))]) == [(True, 3)]  # the next batch runs as usual
    assert ("c", 3) in rows(conn)


def test_a_batch_of_one_commits_its_body(conn: sqlite3.Connection) -> None:
    assert _group(conn, [(_write, ("a", 1))]) == [(True, 1)]
    assert not conn.in_transaction
    assert rows(conn) == [("a", 1)]


def test_an_interrupt_rolls_back_the_whole_batch(conn: sqlite3.Connection) -> None:
    def interrupted(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO t VALUES ('x', 9)")
        raise KeyboardInterrupt

    batches: list[list[Any]] = [[(interrupted, ())], [(_write, ("a", 1)), (interrupted, ())]]
    for batch in batches:
        with pytest.raises(KeyboardInterrupt):
            _group(conn, batch)
        assert rows(conn) == [] and not conn.in_transaction

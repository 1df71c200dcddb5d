"""The two stores under test: where a test's state lives, on SQLite or on PostgreSQL.

`on_both_stores` runs a scheduler-process test twice: its `state_db` (tests/conftest.py), and so the
scheduler's `--db`, is a SQLite file and then a PostgreSQL database of the test's own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from server.storage.postgres import PostgresStore
from server.storage.select import AnyStore
from tests.support.pg import query, temporary_database

BACKENDS = ["sqlite", "postgres"]
on_both_stores = pytest.mark.parametrize("state_db", BACKENDS, indirect=True)


@contextmanager
def backend_db(kind: str, tmp_path: Path) -> Iterator[Path | str]:
    """A SQLite file in tmp_path, or a PostgreSQL database created for the caller and dropped after."""
    if kind == "sqlite":
        yield tmp_path / "state.db"
    else:
        assert kind == "postgres", kind
        with temporary_database() as url:
            yield url


def db_rows(db: Path | str, sql: str, *params: object) -> list[dict[str, object]]:
    """A query straight into a scheduler's database (for what no API shows), `?` placeholders on both."""
    if isinstance(db, str):
        numbered = sql
        for i in range(1, sql.count("?") + 1):
            numbered = numbered.replace("?", f"${i}", 1)
        return [dict(r) for r in query(db, numbered, *params)]
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params).fetchall()]


def location(store: AnyStore) -> Path | str:
    """Where an open store keeps its state, to open a second store (a "restarted scheduler") on it."""
    return store.dsn if isinstance(store, PostgresStore) else store.path

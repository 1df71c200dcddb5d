"""`--db` names the store: a PostgreSQL URL selects `PostgresStore`, anything else is a SQLite file."""

from __future__ import annotations

from pathlib import Path

from server.storage.postgres import PostgresStore, is_postgres_url, redacted
from server.storage.sqlite import SqliteStore

AnyStore = SqliteStore | PostgresStore


def db_target(text: str) -> Path | str:
    """An argparse type: a PostgreSQL URL stays text (a Path would fold its `//`), a file becomes a Path."""
    return text if is_postgres_url(text) else Path(text)


def store_for(db: Path | str) -> AnyStore:
    return PostgresStore(db) if isinstance(db, str) and is_postgres_url(db) else SqliteStore(db)


def describe(db: Path | str) -> str:
    """The database for logs and messages, without a password."""
    return redacted(db) if isinstance(db, str) and is_postgres_url(db) else str(db)

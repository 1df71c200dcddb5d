"""`--db` picks the store: a PostgreSQL URL (kept whole, never folded into a Path) or a SQLite file."""

from __future__ import annotations

from pathlib import Path

from server import backup
from server.__main__ import parse_args
from server.storage.postgres import PostgresStore
from server.storage.select import describe, store_for
from server.storage.sqlite import SqliteStore


def test_a_postgres_url_selects_the_postgres_store_and_sqlite_stays_the_default() -> None:
    url = "postgresql://kvmaint:s3cret@db.internal:5433/kvmaint?sslmode=require"
    assert parse_args(["--db", url]).db == url
    assert isinstance(store_for(url), PostgresStore) and store_for(url).dsn == url  # type: ignore[union-attr]
    assert isinstance(store_for("postgres://h/db"), PostgresStore)
    default = parse_args([]).db
    assert default == Path(".kvmaint/state.db") and isinstance(store_for(default), SqliteStore)
    assert parse_args(["--db", "/var/lib/kvmaint/state.db"]).db == Path("/var/lib/kvmaint/state.db")


def test_logs_and_messages_never_show_the_password() -> None:
    assert describe("postgresql://kvmaint:s3cret@db.internal:5433/kvmaint") == (
        "postgresql://kvmaint:***@db.internal:5433/kvmaint"
    )
    assert describe("postgresql://postgres@127.0.0.1/postgres") == "postgresql://postgres@127.0.0.1/postgres"
    assert describe(Path("state.db")) == "state.db"


def test_backup_and_restore_send_a_postgres_database_to_its_own_tools(capsys) -> None:
    assert backup.main(["backup", "--db", "postgresql://kvmaint:s3cret@db.internal/kvmaint", "--to", "b.db"]) == 2
    err = capsys.readouterr().err
    assert "postgresql://kvmaint:***@db.internal/kvmaint is a PostgreSQL database" in err and "pg_dump" in err
    assert "s3cret" not in err

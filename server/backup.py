"""`kvmaint-scheduler backup` and `restore`: copies of the state database, taken while the scheduler runs.

A backup goes through SQLite's online backup API in one step: it reads one consistent snapshot (the
database is in WAL mode, so the running scheduler keeps writing meanwhile and is never blocked), writes
it to `OUT.tmp` as a self-contained file (no `-wal`), checks it and renames it into place, so `OUT` is
either the previous file or a complete new one. A restore refuses while a scheduler holds the state
file (the same lock a second scheduler would meet), refuses a backup made by a newer kvmaint, keeps the
current database beside it as `STATE.before-restore`, and copies the backup in with the same API.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from kvmaint.errors import FailedPrecondition, InvalidArgument, KvmaintError
from server.statelock import StateLock
from server.storage.postgres import is_postgres_url
from server.storage.select import describe
from server.storage.sqlite import MIGRATIONS

COUNTED = ("apps", "addons", "maintenances", "events")


@dataclass(frozen=True)
class Summary:
    """What a copy holds, for the one line each command prints."""

    schema_version: int
    counts: dict[str, int]
    size_bytes: int
    seconds: float

    def describe(self) -> str:
        counts = ", ".join(f"{table} {n}" for table, n in self.counts.items())
        return (
            f"schema version {self.schema_version}, {counts}, {self.size_bytes / 1024:.0f} KiB "
            f"in {self.seconds * 1000:.0f} ms; quick_check ok"
        )


@contextlib.contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def inspect(path: Path) -> tuple[int, dict[str, int]]:
    """(schema version, row counts) of a kvmaint database, after SQLite's quick_check; raises
    `FailedPrecondition` for a file that is damaged or not a kvmaint database."""
    if not path.is_file():
        raise FailedPrecondition(f"{path} does not exist.")
    try:
        with _connect(path) as conn:
            check = conn.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise FailedPrecondition(f"{path} is damaged: quick_check says {check[0] if check else '?'}.")
            version = int(
                conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
            )
            counts = {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in COUNTED}
    except sqlite3.DatabaseError as err:
        raise FailedPrecondition(f"{path} is not a kvmaint state database: {err}.") from err
    return version, counts


def backup(db: Path, out: Path) -> Summary:
    """Copies the live database `db` to `out` (mode 0600: it holds webhook secrets)."""
    if not db.is_file():
        raise FailedPrecondition(f"{db} does not exist: pass the scheduler's --db.")
    started = time.monotonic()  # real time: the summary's duration, display only
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        with _connect(db) as src, _connect(tmp) as dst:
            src.backup(dst)  # pages=-1: the whole database from one read snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        version, counts = inspect(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Summary(version, counts, out.stat().st_size, time.monotonic() - started)


def restore(source: Path, db: Path) -> tuple[Summary, Path | None]:
    """Replaces `db` by the backup `source` while no scheduler runs on it; returns the summary and where
    the previous database was kept (None when there was none)."""
    started = time.monotonic()  # real time: the summary's duration, display only
    version, counts = inspect(source)
    if version > len(MIGRATIONS):
        raise FailedPrecondition(
            f"{source} has schema version {version}, made by a newer kvmaint; this one knows up to "
            f"{len(MIGRATIONS)}: restore it with the kvmaint that made it."
        )
    lock = StateLock.acquire(db)  # refuses, naming the pid, while a scheduler runs on db
    try:
        kept: Path | None = None
        if db.exists():
            kept = db.with_name(db.name + ".before-restore")
            backup(db, kept)
        with _connect(source) as src, _connect(db) as dst:
            src.backup(dst)
            dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        inspect(db)
    finally:
        lock.release()
    return Summary(version, counts, db.stat().st_size, time.monotonic() - started), kept


def _state_file(args: argparse.Namespace) -> Path:
    """--db, else `db` in the scheduler's --config file, else what the scheduler itself defaults to."""
    text = _state_text(args)
    if is_postgres_url(text):
        raise InvalidArgument(
            f"{describe(text)} is a PostgreSQL database: back it up and restore it with PostgreSQL's own "
            "tools (pg_dump -Fc / pg_restore, or the server's continuous archiving); these commands copy "
            "SQLite state files."
        )
    return Path(text)


def _state_text(args: argparse.Namespace) -> str:
    if args.db is not None:
        return str(args.db)
    if args.config is not None:
        try:
            raw = tomllib.loads(Path(args.config).read_text())
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise InvalidArgument(f"cannot read {args.config}: {err}") from err
        if "db" in raw:
            return str(raw["db"])
    return os.environ.get("KVMAINT_DB", ".kvmaint/state.db")


def main(argv: Sequence[str]) -> int:
    """`kvmaint-scheduler backup ...` / `kvmaint-scheduler restore ...` (argv starts with the command)."""
    p = argparse.ArgumentParser(prog="kvmaint-scheduler", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for name, what in (
        ("backup", "copy the state database, also while the scheduler runs"),
        ("restore", "replace the state database by a backup (the scheduler stopped)"),
    ):
        c = sub.add_parser(name, help=what, description=what)
        c.add_argument(
            "--db",
            metavar="FILE",
            help="the scheduler's state database (default: --config's db, else "
            "$KVMAINT_DB, else ./.kvmaint/state.db)",
        )
        c.add_argument("--config", metavar="FILE", help="the scheduler's TOML config file, to find its db")
        if name == "backup":
            c.add_argument(
                "--to", metavar="FILE", required=True, type=Path, help="the backup file to write (replaced)"
            )
        else:
            c.add_argument(
                "--from",
                dest="source",
                metavar="FILE",
                required=True,
                type=Path,
                help="the backup to restore",
            )
    args = p.parse_args(list(argv))
    try:
        db = _state_file(args)
        if args.command == "backup":
            summary = backup(db, args.to)
            print(f"Backed up {db} to {args.to}: {summary.describe()}")
        else:
            summary, kept = restore(args.source, db)
            previous = f"; the previous database is kept as {kept}" if kept else ""
            print(f"Restored {db} from {args.source}: {summary.describe()}{previous}")
    except KvmaintError as err:
        print(f"kvmaint-scheduler {args.command}: {err}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as err:
        print(f"kvmaint-scheduler {args.command}: {err}", file=sys.stderr)
        return 1
    return 0

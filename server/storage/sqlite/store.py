"""The store: connections, migrations applied at open, transactions."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from kvmaint.errors import FailedPrecondition
from server.domain import requests
from server.storage.settle import settle
from server.storage.sqlite.base import Inline
from server.storage.sqlite.bulk import SqliteBulk
from server.storage.sqlite.campaigns import CampaignsTx
from server.storage.sqlite.events import EventsTx
from server.storage.sqlite.fleet import FleetTx
from server.storage.sqlite.maintenances import MaintenancesTx
from server.storage.sqlite.notify import NotifyTx
from server.storage.sqlite.replicas import ReplicasTx
from server.storage.sqlite.rows import log
from server.storage.sqlite.schema import MIGRATIONS

MIN_SQLITE = (3, 35, 0)  # UPDATE ... FROM (3.33) with RETURNING (3.35): `note_queued`


class SqliteTx(FleetTx, MaintenancesTx, NotifyTx, CampaignsTx, EventsTx, ReplicasTx, SqliteBulk):
    """One transaction: every concern of the Tx protocol (server/storage/base.py)."""


def _statements(script: str) -> list[str]:
    """A migration's statements: split at semicolons, except those inside a trigger's body."""
    out, buf = [], ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                out.append(buf.strip())
            buf = ""
    if buf.strip(" \n;"):
        out.append(buf.strip())
    return out


# How long a BEGIN IMMEDIATE waits for another process's write lock before "database is locked".
BUSY_MS = 5000


def _begin_now(db: sqlite3.Connection) -> bool:
    """BEGIN IMMEDIATE if the write lock is free now (the writer's busy timeout is 0 outside
    `_begin_waiting`); False when another process holds it."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as err:
        if err.sqlite_errorcode == sqlite3.SQLITE_BUSY:
            return False
        raise
    return True


def _begin_waiting(db: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE waiting up to BUSY_MS for another process's write lock (in a thread)."""
    db.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    try:
        db.execute("BEGIN IMMEDIATE")
    finally:
        db.execute("PRAGMA busy_timeout=0")


# Read-only connections beside the writer's (WAL lets them read while it writes); a read waits only for
# a free one of these, never for the write lock.
READERS = 3


class SqliteStore:
    """One writing connection, whose transactions are serialised by a lock (which SQLite would do for
    writers anyway), and `READERS` read-only ones for `read()`. An in-memory database has only the
    writer (another connection would open another database), so there `read()` takes the lock too."""

    def __init__(self, path: str | Path, readers: int = READERS) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._fsync: ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()
        self._reader_count = readers
        self._readers: list[sqlite3.Connection] = []
        self._idle: asyncio.Queue[sqlite3.Connection] | None = None

    async def open(self) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise RuntimeError(
                f"kvmaint needs SQLite {'.'.join(map(str, MIN_SQLITE))} or later (UPDATE ... FROM with "
                f"RETURNING); this Python's sqlite3 module has {sqlite3.sqlite_version}"
            )
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=0")  # never wait in the event loop: see `_begin_waiting`
        self._db = db
        self._fsync = ThreadPoolExecutor(1, thread_name_prefix="kvmaint-sqlite-commit")
        try:
            await self._migrate()
            await self._open_readers()
        except BaseException:
            await self.close()  # its commit thread would keep a refused start from exiting
            raise

    async def _open_readers(self) -> None:
        if str(self.path) == ":memory:" or self._reader_count < 1:
            return
        idle: asyncio.Queue[sqlite3.Connection] = asyncio.Queue()
        for _ in range(self._reader_count):
            # Plain sqlite3, used from the event loop's thread (`Inline`).
            r = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._readers.append(r)
            r.row_factory = sqlite3.Row
            r.execute("PRAGMA query_only=ON")  # a write through read() fails instead of locking
            # A WAL reader waits only while a crashed writer's WAL index is rebuilt; never long.
            r.execute("PRAGMA busy_timeout=1000")
            idle.put_nowait(r)
        self._idle = idle

    async def _migrate(self) -> None:
        db = self._conn
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        current = await self.schema_version()
        if current > len(MIGRATIONS):
            # A downgrade: this code does not know the newer tables and columns, so it must not write.
            raise FailedPrecondition(
                f"the state database {self.path} has schema version {current}, written by a newer "
                f"kvmaint (this one knows up to {len(MIGRATIONS)}): run that version, or restore the "
                "backup taken before the upgrade (kvmaint-scheduler restore)."
            )
        for version, script in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            if not _begin_now(db):
                await asyncio.get_running_loop().run_in_executor(self._fsync, _begin_waiting, db)
            try:
                for statement in _statements(script):
                    db.execute(statement)
                db.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            log.info("database migrated to schema version %d", version)

    async def schema_version(self) -> int:
        row = self._conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def close(self) -> None:
        self._idle = None
        readers, self._readers = self._readers, []
        for r in readers:
            r.close()
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._fsync is not None:
            self._fsync.shutdown(wait=True)
            self._fsync = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTx]:
        """One transaction, committed when the body returns and rolled back otherwise.

        Its statements run in the event loop (`Inline`): they touch only the page cache and the WAL, in
        microseconds, where handing each to a thread cost ten times that. Only COMMIT, which fsyncs
        (`synchronous=FULL`), runs in a thread; it is awaited to its end even if the caller is cancelled
        meanwhile (`storage/settle.py`), and the lock is released only once the connection is outside any
        transaction. BEGIN IMMEDIATE is tried inline without waiting (this process's lock orders its own
        writers); only when another process holds the file's write lock (a tool, a test's second
        store) does it wait for it, in the thread.
        """
        async with self._lock:
            db = self._conn
            try:
                if not _begin_now(db):
                    await settle(asyncio.get_running_loop().run_in_executor(self._fsync, _begin_waiting, db))
                tx = SqliteTx(Inline(db))
                yield tx
                mark = requests.recording()
                if mark is not None:  # a retried write's mark commits with the write (domain/requests.py)
                    await tx.record_request(mark.id, mark.method, mark.key, mark.at)
                await settle(asyncio.get_running_loop().run_in_executor(self._fsync, db.execute, "COMMIT"))
                if mark is not None:
                    mark.recorded = True
            finally:
                if db.in_transaction:
                    db.execute("ROLLBACK")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqliteTx]:
        """A read-only transaction on a reader connection: one snapshot (a deferred `BEGIN` takes it at
        its first read), never the write lock, so it does not wait behind a writer and a writer does
        not wait behind it. It sees every transaction committed before it began. Its queries run in the
        event loop (`Inline`). Writing through it fails (`PRAGMA query_only`)."""
        idle = self._idle
        if idle is None:
            async with self.transaction() as tx:
                yield tx
            return
        db = await idle.get()
        try:
            db.execute("BEGIN")
            yield SqliteTx(Inline(db))
        finally:
            try:
                if db.in_transaction:
                    db.execute("ROLLBACK")  # nothing to keep: it wrote nothing
            finally:
                if self._idle is idle:
                    idle.put_nowait(db)

    def lease_transaction(self) -> AbstractAsyncContextManager[SqliteTx]:
        """The lease rows' transaction: on one process per file, just a transaction."""
        return self.transaction()

    async def last_sequence(self) -> int:
        async with self.read() as tx:
            row = await tx._one("SELECT COALESCE(MAX(sequence), 0) FROM events")
        return int(row[0]) if row else 0

"""The store: connections, migrations applied at open, transactions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from kvmaint.errors import FailedPrecondition
from server.domain import requests
from server.storage.pgnotify import EVENTS_CHANNEL
from server.storage.postgres.bulk import PostgresBulk
from server.storage.postgres.campaigns import CampaignsTx
from server.storage.postgres.events import EventsTx
from server.storage.postgres.fleet import FleetTx
from server.storage.postgres.maintenances import MaintenancesTx
from server.storage.postgres.notify import NotifyTx
from server.storage.postgres.replicas import ReplicasTx
from server.storage.postgres.rows import log
from server.storage.postgres.schema import MIGRATE_LOCK, MIGRATIONS
from server.storage.settle import settle


class PostgresTx(FleetTx, MaintenancesTx, NotifyTx, CampaignsTx, EventsTx, ReplicasTx, PostgresBulk):
    """One transaction: every concern of the Tx protocol (server/storage/base.py)."""


# Advisory lock keys (any bigint; these spell "kvmaint" plus a role).
WRITE_LOCK = 0x6B766D61696E7401  # held by every read-write transaction until it ends


# Connections of the read-only pool (`read()`), beside the read-write pool's.
READERS = 4


# Names kvmaint's sessions in pg_stat_activity.
SESSION_SETTINGS = {"application_name": "kvmaint-scheduler"}


def redacted(dsn: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = dsn.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return dsn
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pools' reset on release: nothing beyond asyncpg's own (which rolls back a transaction left
    open). Its default also runs `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`, a round
    trip per transaction (one in six of an API read's), for session state nothing here creates: the locks
    are transaction-scoped, LISTEN has a connection of its own (pgnotify.py), settings are set at connect."""


class PostgresStore:
    """A pool of connections to one database. Transactions are serialised by an advisory lock (see the
    module docstring). Several schedulers may share it: a lease elects the one that acts (server/replica/)."""

    def __init__(self, dsn: str, min_size: int = 1, max_size: int = 4, readers: int = READERS) -> None:
        self.dsn = dsn
        self._min, self._max = min_size, max_size
        self._reader_count = readers
        self._pool: asyncpg.Pool | None = None
        self._reads: asyncpg.Pool | None = None
        # Replicas: a session idle inside a transaction this long is ended by the server. Every write
        # holds the one write lock, so a replica frozen mid-transaction (SIGSTOP, a stalled VM) would
        # otherwise stop every other replica's writes, the next leader's included. None: no limit.
        self.stall_seconds: float | None = None
        # The leadership's own connection (lease_transaction): renewals never queue behind the pool.
        self._lease_conn: asyncpg.Connection | None = None
        self._lease_lock = asyncio.Lock()

    def _settings(self) -> dict[str, str]:
        settings = dict(SESSION_SETTINGS)
        if self.stall_seconds is not None:
            settings["idle_in_transaction_session_timeout"] = str(max(1, int(self.stall_seconds * 1000)))
        return settings

    async def open(self) -> None:
        pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self._min,
            max_size=self._max,
            server_settings=self._settings(),
            reset=_keep_session,
        )
        self._pool = pool
        try:
            await self._migrate()
            # A pool of its own: writers queued on the advisory lock hold their connections, and a read
            # must not wait for one of those.
            self._reads = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self._reader_count,
                server_settings=SESSION_SETTINGS,
                reset=_keep_session,
            )
        except BaseException:
            await self.close()
            raise

    @property
    def _p(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    async def _migrate(self) -> None:
        async with self._p.acquire() as conn:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK)
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"
                )
                current = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            if current > len(MIGRATIONS):
                # A downgrade: this code does not know the newer tables and columns, so it must not write.
                raise FailedPrecondition(
                    f"the state database {redacted(self.dsn)} has schema version {current}, written by a "
                    f"newer kvmaint (this one knows up to {len(MIGRATIONS)}): run that version, or restore "
                    "the dump taken before the upgrade (pg_restore)."
                )
            for version, script in enumerate(MIGRATIONS, start=1):
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK)
                    done = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                    if version <= done:
                        continue
                    await conn.execute(script)  # PostgreSQL's DDL is transactional: all of it or none
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                log.info("database migrated to schema version %d", version)

    async def schema_version(self) -> int:
        async with self._p.acquire() as conn:
            return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    async def close(self) -> None:
        if self._reads is not None:
            reads, self._reads = self._reads, None
            await reads.close()
        if self._lease_conn is not None:
            conn, self._lease_conn = self._lease_conn, None
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTx]:
        """One transaction, committed when the body returns and rolled back otherwise.

        Cancellation-safe as SQLite's: COMMIT, ROLLBACK and the connection's return to the pool are
        awaited to their end even when the caller is cancelled (`storage/settle.py`), so when this block
        is left the connection is back in the pool outside any transaction (or closed by the pool, when
        a statement cancelled on the server left it in doubt). A cancellation that arrived meanwhile is
        raised afterwards.
        """
        pool = self._p
        conn = await pool.acquire()
        tx = conn.transaction()
        try:
            await tx.start()
            await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
            ptx = PostgresTx(conn)
            yield ptx
            mark = requests.recording()
            if mark is not None:  # a retried write's mark commits with the write (domain/requests.py)
                await ptx.record_request(mark.id, mark.method, mark.key, mark.at)
            if ptx.last_event:
                # Queued with the transaction, delivered to every listener once it commits
                # (server/storage/pgnotify.py): other replicas' buses learn of these events at once.
                await conn.execute("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, str(ptx.last_event))
            await settle(tx.commit())
            if mark is not None:
                mark.recorded = True
        except BaseException:
            if conn.is_in_transaction():
                with contextlib.suppress(Exception):  # the pool's reset rolls back or closes it instead
                    await settle(tx.rollback())
            raise
        finally:
            await settle(pool.release(conn))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[PostgresTx]:
        """A read-only transaction on the readers' pool, without the advisory lock: it does not wait
        behind a writer. REPEATABLE READ READ ONLY, so all its reads see one snapshot, taken at its first
        statement (after every commit that returned before it began). Writing through it fails."""
        pool = self._reads
        if pool is None:
            raise RuntimeError("store is not open")
        conn = await pool.acquire()
        tx = conn.transaction(isolation="repeatable_read", readonly=True)
        try:
            await tx.start()
            yield PostgresTx(conn)
            await settle(tx.commit())
        except BaseException:
            if conn.is_in_transaction():
                with contextlib.suppress(Exception):
                    await settle(tx.rollback())
            raise
        finally:
            await settle(pool.release(conn))

    @asynccontextmanager
    async def lease_transaction(self) -> AsyncIterator[PostgresTx]:
        """A transaction for the lease and `schedulers` rows only, on a connection of its own and
        without the write lock: those statements are atomic one by one, and a renewal must not wait
        behind other replicas' writes (a long one would cost the leader its lease). A transaction that
        failed or was cancelled drops the connection (the server rolls it back); the next one dials."""
        self._p  # noqa: B018 - raises when the store is not open
        async with self._lease_lock:
            conn = self._lease_conn
            if conn is None or conn.is_closed():
                conn = await asyncpg.connect(self.dsn, server_settings=self._settings())
                self._lease_conn = conn
            try:
                async with conn.transaction():
                    yield PostgresTx(conn)
            except BaseException:
                self._lease_conn = None
                conn.terminate()
                raise

    async def last_sequence(self) -> int:
        async with self._p.acquire() as conn:
            return int(await conn.fetchval("SELECT last FROM event_sequence"))

"""Fault 1 at the store: a cancellation at any await of a transaction leaves the store usable.

The task running a transaction is cancelled after 0, 1, 2, ... turns of the event loop, so the
cancellation lands in turn while the lock is awaited, while `BEGIN IMMEDIATE` runs in aiosqlite's
thread (on PostgreSQL: while a pool connection, the advisory lock or a statement is awaited), inside the
body, and while COMMIT or ROLLBACK runs. After each, the next transaction must work and no connection may
be left inside a transaction. Both stores (the `store` fixture of tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime

import asyncpg
import pytest

from server.domain.models import App
from server.storage.postgres import PostgresStore
from server.storage.select import AnyStore
from server.storage.sqlite import SqliteStore

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


async def _write(store: AnyStore, name: str, fail: bool = False) -> None:
    async with store.transaction() as tx:
        await tx.insert_app(App(name, "owner@example.com", False, WHEN))
        await tx.get_app(name)
        if fail:
            raise ValueError("the body failed")


async def _usable(store: AnyStore, name: str) -> None:
    await asyncio.wait_for(_write(store, name), 5)
    async with store.transaction() as tx:
        assert await tx.get_app(name) is not None
    await _every_reader_sees(store, name)
    if isinstance(store, SqliteStore):
        assert not store._conn.in_transaction
        assert not any(r.in_transaction for r in store._readers)
        assert store._idle is not None and store._idle.qsize() == len(store._readers)  # all returned
    else:
        assert await _idle_in_transaction(store) == 0


async def _every_reader_sees(store: AnyStore, name: str, readers: int = 3) -> None:
    """Reads held open together (so each is on a connection of its own) all see the commit: a read cut
    short must not leave its connection on an old snapshot (a statement stepped but never finished pins
    one on SQLite, even after ROLLBACK)."""
    async with contextlib.AsyncExitStack() as stack:
        for i in range(readers):
            tx = await stack.enter_async_context(store.read())
            assert await tx.get_app(name) is not None, f"reader {i} does not see {name}, committed before it began"


async def _idle_in_transaction(store: PostgresStore) -> int:
    """Server sessions of this database left inside a transaction (seen from a connection of its own)."""
    conn = await asyncpg.connect(store.dsn)
    try:
        n: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%'"
        )
        return n
    finally:
        await conn.close()


@pytest.mark.parametrize("fail", [False, True], ids=["commit", "rollback"])
async def test_cancel_at_every_turn_of_a_transaction(store: AnyStore, fail: bool) -> None:
    for turns in range(40):
        task = asyncio.create_task(_write(store, f"app-{turns}", fail))
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ValueError):
            await task
        await _usable(store, f"check-{turns}")


async def test_repeated_cancels_while_rolling_back(store: AnyStore) -> None:
    """A task cancelled again while its rollback is awaited still leaves no open transaction."""
    for turns in range(30):
        task = asyncio.create_task(_write(store, f"app-{turns}", fail=True))
        for _ in range(turns):
            await asyncio.sleep(0)
            task.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ValueError):
            await task
        await _usable(store, f"check-{turns}")


async def test_concurrent_cancelled_readers_and_writers(store: AnyStore) -> None:
    """Many transactions racing for the lock, half cancelled at random moments."""

    async def reader() -> None:
        async with store.transaction() as tx:
            await tx.events_after(0, "", "", 10)

    for round_ in range(20):
        tasks = [asyncio.create_task(reader()) for _ in range(5)]
        tasks += [asyncio.create_task(_read(store)) for _ in range(5)]
        tasks += [asyncio.create_task(_write(store, f"r{round_}-{i}")) for i in range(5)]
        for i, task in enumerate(tasks):
            await asyncio.sleep(0)
            if i % 2:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await _usable(store, f"check-{round_}")


async def _read(store: AnyStore) -> None:
    async with store.read() as tx:
        await tx.events_after(0, "", "", 10)
        await tx.list_apps("", 10)


async def test_cancel_at_every_turn_of_a_read(store: AnyStore) -> None:
    """The same for `read()`: its connection goes back to the readers outside any transaction."""
    for turns in range(30):
        task = asyncio.create_task(_read(store))
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await _usable(store, f"check-{turns}")
        await asyncio.wait_for(_read(store), 5)


async def test_reads_cut_short_leave_no_old_snapshot(store: AnyStore) -> None:
    """Reads of a long result cancelled at random moments (mid-statement, in aiosqlite's thread), each
    followed by a commit that every reader connection must then see. On SQLite a statement stepped
    but left unfinished pinned its connection's snapshot, so about one round in a hundred read stale."""
    async with store.transaction() as tx:
        for i in range(2000):
            await tx.insert_app(App(f"bulk-{i:05}", "owner@example.com", False, WHEN))

    async def long_read() -> None:
        async with store.read() as tx:
            await tx.list_apps("", 2000)
            await tx.get_app("bulk-00001")

    rng = random.Random(7)
    for round_ in range(250):
        tasks = [asyncio.create_task(long_read()) for _ in range(3)]
        await asyncio.sleep(rng.random() * 0.003)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await _write(store, f"after-{round_}")
        await _every_reader_sees(store, f"after-{round_}")

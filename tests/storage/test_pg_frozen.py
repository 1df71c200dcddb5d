"""A replica frozen inside a transaction (SIGSTOP, a hung loop, a cut-off host) must not stop the others:
every PostgreSQL transaction holds the WRITE_LOCK, so without a bound every other replica's transactions,
the lease takeover among them, would wait until it wakes. The server ends a kvmaint session idle in a
transaction for longer than `PostgresStore.stall_seconds` (the scheduler sets it to the lease); its
transaction rolls back, the lock is free."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.domain.models import Event, EventType
from server.storage.postgres import PostgresStore
from tests.support.stores import backend_db

STALL = 2.0


async def test_a_transaction_left_idle_by_a_frozen_process_is_ended_and_frees_the_lock(tmp_path: Path) -> None:
    with backend_db("postgres", tmp_path) as url:
        assert isinstance(url, str)
        frozen, other = PostgresStore(url), PostgresStore(url)
        frozen.stall_seconds = other.stall_seconds = STALL
        await frozen.open()
        await other.open()
        try:
            inside = asyncio.Event()

            async def freeze() -> None:
                async with frozen.transaction() as tx:
                    await tx.append_event(Event(0, EventType.APP_CREATED, datetime.now(UTC), "a", "", "", "", {}))
                    inside.set()
                    await asyncio.sleep(6)  # no statement: what a SIGSTOPped process looks like to the server

            stuck = asyncio.create_task(freeze())
            await inside.wait()
            started = time.monotonic()
            async with other.transaction() as tx:  # waits for the WRITE_LOCK
                seq = await tx.append_event(Event(0, EventType.APP_CREATED, datetime.now(UTC), "b", "", "", "", {}))
            waited = time.monotonic() - started
            limit = STALL
            print(f"the other store waited {waited:.2f} s for the frozen one's lock")
            assert waited < limit + 2, waited
            assert seq == 1  # the frozen transaction rolled back: its number was given back
            with pytest.raises(Exception):  # noqa: B017 - asyncpg reports the ended session in its own way
                await stuck
        finally:
            await frozen.close()
            await other.close()

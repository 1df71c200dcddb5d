"""Events across replicas on one PostgreSQL database: a second store's listener learns of the first's
commits through LISTEN/NOTIFY (server/storage/pgnotify.py), only after they commit, and after a lost
listener connection it catches up on what committed meanwhile. Two PostgresStore objects in one process
stand for two scheduler replicas."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kvmaint.clock import SystemClock
from server.domain.models import Event, EventType
from server.service.bus import EventBus
from server.storage.pgnotify import EventListener
from server.storage.postgres import PostgresStore
from tests.support.eventually import eventually
from tests.support.stores import backend_db

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def event(n: int) -> Event:
    return Event(0, EventType.APP_CREATED, T0, f"app-{n}", "", "", f"event {n}", {})


class Replica:
    """A store, its bus and its listener: what one scheduler process holds."""

    def __init__(self, dsn: str) -> None:
        self.store = PostgresStore(dsn)
        self.bus = EventBus()
        self.woken: list[tuple[int, float]] = []
        self.seen_on_wake: list[bool] = []
        self.listener = EventListener(dsn, self._publish, SystemClock(), check_seconds=0.5)
        self.task: asyncio.Task[None] | None = None

    def _publish(self, sequence: int) -> None:
        self.woken.append((sequence, time.monotonic()))
        self.bus.publish(sequence)

    async def start(self) -> None:
        await self.store.open()
        self.task = asyncio.create_task(self.listener.run())
        await asyncio.wait_for(self.listener.connected.wait(), 10)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.store.close()


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[tuple[Replica, Replica]]:
    with backend_db("postgres", tmp_path) as url:
        assert isinstance(url, str)
        a, b = Replica(url), Replica(url)
        await a.start()
        await b.start()
        try:
            yield a, b
        finally:
            await a.stop()
            await b.stop()


async def append(store: PostgresStore, *ns: int) -> int:
    async with store.transaction() as tx:
        seq = 0
        for n in ns:
            seq = await tx.append_event(event(n))
    return seq


async def test_a_commit_on_one_store_wakes_the_other_stores_bus_with_its_sequence(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    latencies = []
    for i in range(20):
        waiting = asyncio.ensure_future(b.bus.wait_beyond(b.bus.last_sequence, 5))
        started = time.monotonic()
        seq = await append(a.store, i)
        assert await waiting, "the other store's bus was not woken"
        latencies.append(time.monotonic() - started)
        assert b.bus.last_sequence == seq
    # One notification per transaction, carrying its last sequence, however many events it appended.
    before = len(b.woken)
    seq = await append(a.store, 100, 101, 102)
    await eventually(lambda: b.bus.last_sequence == seq)
    assert [s for s, _ in b.woken[before:] if s > seq - 3] == [seq]
    print(f"cross-store wake-up: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms")
    # Well under the 1 s re-poll of live streams: the notification, not the poll, woke it.
    assert statistics.median(latencies) < 0.2


async def test_the_notification_arrives_only_after_commit_and_a_rollback_sends_none(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    start = b.bus.last_sequence

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with a.store.transaction() as tx:
            await tx.append_event(event(1))
            raise Boom
    async with a.store.transaction() as tx:
        seq = await tx.append_event(event(2))
        # Inside the transaction: nothing reaches the other store yet.
        assert not await b.bus.wait_beyond(start, 0.3)
    assert seq == start + 1  # the rollback gave its number back
    assert await b.bus.wait_beyond(start, 5)
    # What the notification announces is visible to the other store's reads at once.
    async with b.store.transaction() as tx:
        assert [e.sequence for e in await tx.events_after(start, "", "", 10)] == [seq]
    assert all(s != start + 2 for s, _ in b.woken)


async def test_after_a_lost_listener_connection_it_reconnects_and_publishes_what_it_missed(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    b.task and b.task.cancel()
    assert b.task is not None
    await asyncio.gather(b.task, return_exceptions=True)  # b hears nothing from now on
    last = await append(a.store, 1)
    missed = await append(a.store, 2, 3)
    assert b.bus.last_sequence < missed
    b.task = asyncio.create_task(b.listener.run())
    await eventually(lambda: b.bus.last_sequence == missed, timeout=10)
    assert last < missed

    # A connection dropped under a running listener: it reconnects by itself and catches up.
    reconnects = b.listener.reconnects
    b.listener.drop_connection()
    await eventually(lambda: b.listener.reconnects > reconnects, timeout=10)
    after = await append(a.store, 4)
    await eventually(lambda: b.bus.last_sequence == after, timeout=10)
    await eventually(lambda: b.listener.connected.is_set(), timeout=10)
    woken = len(b.woken)
    seq = await append(a.store, 5)
    await eventually(lambda: any(s == seq for s, _ in b.woken[woken:]), timeout=5)


async def test_a_follower_on_the_other_store_reads_every_event_once_and_in_order(
    replicas: tuple[Replica, Replica],
) -> None:
    """A subscriber on replica B while replica A writes 200 events in 50 transactions: B's reader, woken
    by its bus, reads them all, gapless, in order, once."""
    a, b = replicas
    position = b.bus.last_sequence
    got: list[int] = []

    async def follow() -> None:
        nonlocal position
        while len(got) < 200:
            async with b.store.transaction() as tx:
                batch = await tx.events_after(position, "", "", 37)
            got.extend(e.sequence for e in batch)
            if batch:
                position = batch[-1].sequence
                continue
            await b.bus.wait_beyond(position, 5)

    reader = asyncio.create_task(follow())
    for i in range(50):
        await append(a.store, *range(i * 4, i * 4 + 4))
    await asyncio.wait_for(reader, 20)
    assert got == list(range(got[0], got[0] + 200))

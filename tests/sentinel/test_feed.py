"""The feed reads switches from the stored event stream: a repoint committed by another scheduler on the
same database (its own store, its own bus) is published here too, once; failover holds end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from kvmaint.clock import SystemClock
from server.domain.models import Addon, App, Event, EventType, Role, ServerRef
from server.sentinel.feed import SentinelFeed, SwitchNotice
from server.sentinel.view import Node
from server.service.bus import EventBus
from server.storage.select import AnyStore, store_for
from server.storage.sqlite import SqliteStore
from tests.support.eventually import eventually
from tests.support.stores import location

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def addon(primary: int, standby: int) -> Addon:
    servers = (ServerRef("db-1", primary, Role.PRIMARY), ServerRef("db-2", standby, Role.STANDBY))
    return Addon("redis-a", "example-app", "premium-0", "heroku-redis", "", ("REDIS_URL",), NOW, servers, None)


def step(seq_type: str, **attrs: str) -> Event:
    return Event(0, EventType.MAINTENANCE_STEP, NOW, "example-app", "redis-a", "m-1", "", {"step": seq_type, **attrs})


async def test_a_repoint_written_by_another_scheduler_is_published_once(store: AnyStore) -> None:
    """On both stores (the `store` fixture): another process's events reach the feed by polling."""
    writer, reader = store, store_for(location(store))
    await reader.open()
    async with writer.transaction() as tx:
        await tx.insert_app(App("example-app", "o@example.com", False, NOW))
        await tx.insert_addon(addon(1001, 1002))
        await tx.upsert_agent("db-1", "10.0.0.1", "t", NOW)
        await tx.upsert_agent("db-2", "10.0.0.2", "t", NOW)
    feed = SentinelFeed(reader, EventBus(), SystemClock(), poll_seconds=0.05)  # a bus nobody publishes to
    await feed.start()
    assert feed.view.masters["redis-a"].primary.ip == "10.0.0.1"
    heard: list[SwitchNotice] = []
    feed.listeners.append(heard.append)
    task = asyncio.create_task(feed.run())
    try:
        async with writer.transaction() as tx:
            await tx.append_event(step("failover"))
        await eventually(lambda: "redis-a" in feed._holds, timeout=5, message="failover holds answers")
        settled = asyncio.create_task(feed.settled("redis-a"))
        switch = {"old_address": "10.0.0.1:1001", "new_address": "10.0.0.2:1002"}
        async with writer.transaction() as tx:  # promoted: discovery answers the new primary at once
            await tx.append_event(step("failover", promoted="true", **switch))
        await asyncio.wait_for(settled, 5)
        assert feed.view.masters["redis-a"].primary == Node("10.0.0.2", 1002) and heard == []
        async with writer.transaction() as tx:
            moved = addon(1001, 1002)
            await tx.update_addon(
                moved.with_servers((ServerRef("db-2", 1002, Role.PRIMARY), ServerRef("db-1", 1001, Role.STANDBY)))
            )
            await tx.append_event(step("repoint", done="true", **switch))
        await eventually(lambda: heard, timeout=5, message="+switch-master heard")
        assert heard == [SwitchNotice("redis-a", "example-app", "10.0.0.1", 1001, "10.0.0.2", 1002)]
        assert heard[0].payload == "redis-a 10.0.0.1 1001 10.0.0.2 1002"
        m = feed.view.masters["redis-a"]  # the view moved before the notice went out
        assert (m.primary.ip, m.primary.port, m.replicas[0].port) == ("10.0.0.2", 1002, 1001)
        assert feed.view.epochs["redis-a"] == 1
        async with writer.transaction() as tx:
            await tx.append_event(step("finish", done="true"))
        position = (await writer.last_sequence())
        await eventually(lambda: feed.position == position, timeout=5)
        assert len(heard) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await reader.close()


async def test_a_failed_failover_releases_the_hold(tmp_path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    bus = EventBus()
    feed = SentinelFeed(store, bus, SystemClock(), hold_seconds=30)
    await feed.start()
    task = asyncio.create_task(feed.run())
    try:
        async with store.transaction() as tx:
            bus.publish(await tx.append_event(step("failover")))
        await eventually(lambda: "redis-a" in feed._holds, timeout=5)
        waiting = asyncio.create_task(feed.settled("redis-a"))
        async with store.transaction() as tx:
            failed = Event(0, EventType.MAINTENANCE_FAILED, NOW, "example-app", "redis-a", "m-1", "failed")
            bus.publish(await tx.append_event(failed))
        await asyncio.wait_for(waiting, 5)
        assert "redis-a" not in feed._holds
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()

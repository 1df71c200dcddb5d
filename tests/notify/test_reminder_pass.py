"""The sender's reminder pass runs every few seconds and after every commit, but reads the store only
when the next reminder it remembers falls due, when an event that may move a schedule has committed, or
after its recheck interval (issue 9: it used to re-read every maintenance due within 24 hours each time).
In process, on a fake clock, over each store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from server.notify.outbox import ReminderPass
from tests.notify.conftest import World

THURSDAY_18 = datetime(2026, 1, 8, 18, 0, tzinfo=UTC)  # 24 hours before the Friday 18:00 window


def count_reads(world: World, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many read transactions the store has opened (one counter, in a list)."""
    reads = [0]
    opened = world.store.read

    def counting():  # type: ignore[no-untyped-def]
        reads[0] += 1
        return opened()

    monkeypatch.setattr(world.store, "read", counting)
    return reads


async def test_the_pass_reads_only_when_the_next_reminder_comes(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    addon = await world.addon()  # Fridays 18:00; now is Monday noon
    [mid] = await world.require(addon, days=30)
    other = await world.addon(app="other-app")
    [later] = await world.require(other, days=30)
    async with world.store.transaction() as tx:  # the other one a week later
        m = await tx.get_maintenance(later)
        assert m is not None and m.scheduled_for is not None
        await tx.update_maintenance(replace(m, scheduled_for=m.scheduled_for + timedelta(days=7)))
    passes = ReminderPass(world.ctx, recheck=timedelta(days=30))
    reads = count_reads(world, monkeypatch)

    assert await passes() == []  # the first pass reads, and learns when the next reminder is due
    assert passes.next_at is not None and THURSDAY_18 - timedelta(milliseconds=1) < passes.next_at <= THURSDAY_18
    looked = reads[0]
    for _ in range(3):
        assert await passes() is None  # nothing due, nothing changed: no read at all
    await world.fleet.create_app("unrelated-app", "x@example.com")  # a commit that moves no schedule
    assert await passes() is None
    world.clock.set(THURSDAY_18 - timedelta(seconds=1))
    assert await passes() is None
    assert reads[0] == looked

    world.clock.set(THURSDAY_18 + timedelta(seconds=1))
    assert await passes() == [mid]  # it came: read, and given
    assert reads[0] > looked
    assert passes.next_at is not None and passes.next_at <= THURSDAY_18 + timedelta(days=7)  # the other's
    looked = reads[0]
    assert await passes() is None
    assert reads[0] == looked


async def test_a_committed_schedule_change_makes_the_pass_look_again(world: World) -> None:
    addon = await world.addon()
    [mid] = await world.require(addon, days=30)
    passes = ReminderPass(world.ctx, recheck=timedelta(days=30))
    assert await passes() == []
    first = passes.next_at
    await world.maint.schedule("example-app", addon, 1, None)  # a week later: an event, a new time
    assert await passes() == []  # read again
    assert first is not None and passes.next_at is not None and passes.next_at > first + timedelta(days=6)
    assert await passes() is None
    world.clock.set(THURSDAY_18 + timedelta(days=7, seconds=1))
    assert await passes() == [mid]


async def test_a_write_the_pass_was_not_told_of_is_seen_at_the_recheck(world: World) -> None:
    """Another scheduler's write (here: one made without an event) is picked up within `recheck`."""
    addon = await world.addon()
    [mid] = await world.require(addon, days=30)
    passes = ReminderPass(world.ctx, recheck=timedelta(minutes=10))
    assert await passes() == []
    async with world.store.transaction() as tx:
        m = await tx.get_maintenance(mid)
        assert m is not None
        await tx.update_maintenance(replace(m, scheduled_for=world.clock.now() + timedelta(hours=20)))
    assert await passes() is None  # it does not know yet
    world.clock.set(world.clock.now() + timedelta(minutes=10))
    assert await passes() == [mid]


async def test_too_late_for_a_reminder_none_is_given_and_the_pass_stops_reading_it(world: World) -> None:
    addon = await world.addon()
    [mid] = await world.require(addon, days=30)
    world.clock.set(THURSDAY_18 + timedelta(days=1, minutes=1))  # the scheduler was down past the start
    passes = ReminderPass(world.ctx, recheck=timedelta(days=30))
    assert await passes() == []
    assert passes.next_at == world.clock.now() + timedelta(days=30)  # dropped: nothing left to wait for
    async with world.store.read() as tx:
        assert await tx.reminders_due(world.clock.now()) == []
        m = await tx.get_maintenance(mid)
        assert m is not None and m.scheduled_for is not None

"""Window changes in any order (issue 11): the date a window gives never depends on the windows before it.

Through the real service and a real SQLite file on a fake clock: random sequences of window updates
(with and without a week chosen by `schedule`, with freezes, with time passing between calls) always
leave the maintenance where the last window alone puts it, computed from scratch by the pure planning
functions."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kvmaint.clock import FakeClock
from kvmaint.errors import FailedPrecondition
from server.domain.freezes import Freeze
from server.domain.models import Method, Reason, Role, ServerRef
from server.domain.planning import avoid_freezes, realign
from server.domain.windows import DAYS, Window
from server.service.bus import EventBus
from server.service.core import Context
from server.service.fleet import FleetService
from server.service.freezes import FreezeService
from server.service.maintenance import MaintenanceService
from server.storage.sqlite import SqliteStore

APP = "example-app"
TUESDAY = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
CASES = 60


class World:
    def __init__(self, store: SqliteStore, clock: FakeClock) -> None:
        self.store = store
        self.clock = clock
        self.ctx = Context(store, clock, EventBus(), random.Random(11))
        self.fleet = FleetService(self.ctx)
        self.maint = MaintenanceService(self.ctx)
        self.freezes = FreezeService(self.ctx)
        self.count = 0

    async def addon(self, window: Window) -> str:
        self.count += 1
        name = f"redis-w{self.count}"
        port = 7000 + 2 * self.count
        await self.fleet.create_addon(
            APP,
            "premium-0",
            name,
            [f"W{self.count}_URL"],
            ServerRef("db-1", port, Role.PRIMARY),
            ServerRef("db-2", port + 1, Role.STANDBY),
        )
        await self.set_window(name, window)
        return name

    async def set_window(self, name: str, window: Window) -> datetime | None:
        _, state = await self.maint.update_window(APP, name, DAYS[window.day], window.start_time)
        return state.scheduled_for

    async def require(self, name: str, required_by: datetime) -> datetime:
        created, _ = await self.fleet.require_maintenance(
            addons=[name],
            plan=None,
            all_addons=False,
            reason=Reason.SECURITY_PATCH,
            method=Method.FAILOVER,
            required_by=required_by,
        )
        assert created[0].scheduled_for is not None
        return created[0].scheduled_for

    async def freezes_of_app(self) -> list[Freeze]:
        async with self.store.transaction() as tx:
            return await tx.list_freezes(APP, self.clock.now())


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    w = World(store, FakeClock(TUESDAY))
    await w.fleet.create_app(APP, "owner@example.com")
    yield w
    await store.close()


def random_window(rng: random.Random) -> Window:
    return Window(rng.randrange(7), rng.randrange(0, 24 * 60, 30))


async def test_the_issue_case_sunday_after_monday(world: World) -> None:
    """On Tuesday 12-01, planned for Monday 12-07, `window:update Sunday 14:30` gives Sunday 12-06."""
    name = await world.addon(Window(0, 19 * 60 + 30))
    assert await world.require(name, TUESDAY + timedelta(days=30)) == datetime(
        2026, 12, 7, 19, 30, tzinfo=UTC
    )
    assert await world.set_window(name, Window(6, 14 * 60 + 30)) == datetime(2026, 12, 6, 14, 30, tzinfo=UTC)
    # And back and forth: each window always gives its own date.
    assert await world.set_window(name, Window(0, 19 * 60 + 30)) == datetime(2026, 12, 7, 19, 30, tzinfo=UTC)
    assert await world.set_window(name, Window(6, 14 * 60 + 30)) == datetime(2026, 12, 6, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize("seed", range(4))
async def test_any_order_of_window_changes_gives_the_date_from_scratch(world: World, seed: int) -> None:
    """Random windows in random orders, time passing between some calls, odd seeds with freezes, some
    maintenances first moved a week or two by `schedule`: after every change the date is the one the
    current window gives from scratch; without a week chosen by the owner, exactly where a fresh
    requirement of a fresh add-on with that window lands at that moment."""
    rng = random.Random(seed)
    if seed % 2:
        for _ in range(3):
            start = TUESDAY + timedelta(hours=rng.randrange(0, 24 * 20))
            await world.freezes.create(APP, start, start + timedelta(hours=rng.randrange(4, 60)), "test")
    for case in range(CASES // 4):
        world.clock.set(TUESDAY + timedelta(days=case % 3, hours=rng.randrange(24)))
        required_by = world.clock.now() + timedelta(days=rng.choice((3, 9, 14, 30, 60)))
        windows = [random_window(rng) for _ in range(rng.randrange(2, 6))]
        name = await world.addon(windows[0])
        await world.require(name, required_by)
        not_before = None
        if rng.random() < 0.4:
            try:
                m, _ = await world.maint.schedule(APP, name, rng.choice((1, 2)), None)
                not_before = m.not_before
            except FailedPrecondition:  # past the deadline: refused, nothing moved
                pass
        order = [*windows[1:], windows[0]]
        rng.shuffle(order)
        for window in order:
            if rng.random() < 0.3:
                world.clock.set(world.clock.now() + timedelta(minutes=rng.randrange(1, 600)))
            got = await world.set_window(name, window)
            now = world.clock.now()
            expected = avoid_freezes(
                realign(window, now, required_by, not_before),
                window,
                required_by,
                await world.freezes_of_app(),
                APP,
                strict=False,
            )
            where = (seed, case, [w.describe() for w in windows], window.describe())
            assert got == expected.at, where
            if not_before is None:
                fresh = await world.addon(window)
                assert await world.require(fresh, required_by) == got, where

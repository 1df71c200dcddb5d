"""The planner on a fake clock over a real SQLite file: weeks of schedule in milliseconds, all UTC.

The runner here only records what it is asked to run and can mark a run finished: the planner is under
test, not the driver (which the integration tests run against real agents and Redis)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kvmaint.clock import FakeClock
from kvmaint.errors import FailedPrecondition
from server.domain.models import EventType, Method, Reason, Role, ServerRef, Status
from server.domain.planner import Limits
from server.driver.planner import Planner
from server.service.bus import EventBus
from server.service.core import Context
from server.service.fleet import FleetService
from server.service.freezes import FreezeService
from server.service.maintenance import MaintenanceService
from server.storage.select import AnyStore, store_for
from tests.support.stores import BACKENDS, backend_db, location

MONDAY_NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
APP = "example-app"


@dataclass
class RecordingRunner:
    kicked: list[str] = field(default_factory=list)

    def kick(self, maintenance_id: str) -> None:
        self.kicked.append(maintenance_id)


@dataclass
class World:
    clock: FakeClock
    store: AnyStore
    ctx: Context
    runner: RecordingRunner
    fleet: FleetService
    maint: MaintenanceService
    freezes: FreezeService
    planner: Planner
    ports: int = 7000

    async def addon(
        self,
        name: str,
        hosts: tuple[str, str] = ("db-1", "db-2"),
        plan: str = "premium-0",
        window: tuple[str, str] | None = ("Sunday", "22:00"),
    ) -> str:
        self.ports += 2
        primary = ServerRef(hosts[0], self.ports, Role.PRIMARY)
        standby = ServerRef(hosts[1], self.ports + 1, Role.STANDBY) if plan != "mini" else None
        await self.fleet.create_addon(
            APP, plan, name, [f"{name.upper().replace('-', '_')}_URL"], primary, standby
        )
        if window:
            await self.maint.update_window(APP, name, *window)
        return name

    async def require(self, addon: str, required_by: datetime, reason: Reason = Reason.SECURITY_PATCH) -> str:
        created, _ = await self.fleet.require_maintenance(
            addons=[addon],
            plan=None,
            all_addons=False,
            reason=reason,
            method=Method.FAILOVER,
            required_by=required_by,
        )
        return created[0].id

    async def at(self, when: datetime) -> list[str]:
        """Moves the clock to `when` and runs one planner tick."""
        self.clock.set(when)
        return await self.planner.tick()

    async def get(self, mid: str):
        m = await self.maint.get(mid)
        assert m is not None
        return m

    async def finish(self, mid: str) -> None:
        """What the driver would do at the end of a run."""
        async with self.ctx.store.transaction() as tx:
            m = await tx.get_maintenance(mid)
            assert m is not None
            await tx.update_maintenance(replace(m, status=Status.COMPLETED, completed_at=self.clock.now()))

    async def events(self, type: EventType) -> list:
        async with self.ctx.store.transaction() as tx:
            return [e for e in await tx.events_after(0, APP, "", 100_000) if e.type is type]


@pytest.fixture(params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    """The planner's world on each store: planning decides the same on SQLite and PostgreSQL."""
    with backend_db(request.param, tmp_path) as db:
        async for w in _world(db):
            yield w


async def _world(db: Path | str) -> AsyncIterator[World]:
    store = store_for(db)
    await store.open()
    clock = FakeClock(MONDAY_NOON)
    ctx = Context(store, clock, EventBus(), random.Random(7))
    runner = RecordingRunner()
    w = World(
        clock,
        store,
        ctx,
        runner,
        FleetService(ctx),
        MaintenanceService(ctx, runner),
        FreezeService(ctx),
        Planner(ctx, runner, limits=Limits(max_running=10, max_per_host=1)),
    )
    await w.fleet.create_app(APP, "owner@example.com")
    yield w
    await store.close()


async def test_window_across_midnight_starts_in_its_second_day(world: World) -> None:
    await world.addon("redis-a")  # Sundays 22:00 to 02:00
    mid = await world.require("redis-a", MONDAY_NOON + timedelta(days=30))
    assert (await world.get(mid)).scheduled_for == datetime(2026, 1, 11, 22, 0, tzinfo=UTC)
    assert await world.at(datetime(2026, 1, 11, 21, 59, tzinfo=UTC)) == []
    # The scheduler was busy until after midnight: Monday 01:00 is still inside Sunday's window.
    assert await world.at(datetime(2026, 1, 12, 1, 0, tzinfo=UTC)) == [mid]
    m = await world.get(mid)
    assert m.status is Status.PREPARING and m.started_at == datetime(2026, 1, 12, 1, 0, tzinfo=UTC)
    assert world.runner.kicked == [mid]


async def test_required_by_inside_a_window_takes_the_latest_safe_time(world: World) -> None:
    await world.addon("redis-a")
    deadline = datetime(2026, 1, 11, 23, 0, tzinfo=UTC)  # inside Sunday's window
    mid = await world.require("redis-a", deadline)
    m = await world.get(mid)
    assert m.scheduled_for == deadline - timedelta(hours=4)
    assert "latest safe time" in m.history[-1].message
    assert await world.at(deadline - timedelta(hours=4)) == [mid]


async def test_window_updated_after_scheduling(world: World) -> None:
    await world.addon("redis-a")
    mid = await world.require("redis-a", MONDAY_NOON + timedelta(days=30))
    _, state = await world.maint.update_window(APP, "redis-a", "wednesday", "9:30AM")
    m = await world.get(mid)
    assert m.scheduled_for == state.scheduled_for == datetime(2026, 1, 7, 9, 30, tzinfo=UTC)
    assert m.previously_scheduled_for == datetime(2026, 1, 11, 22, 0, tzinfo=UTC)
    assert len(await world.events(EventType.MAINTENANCE_RESCHEDULED)) == 1
    assert await world.at(datetime(2026, 1, 7, 9, 29, tzinfo=UTC)) == []
    assert await world.at(datetime(2026, 1, 7, 9, 30, tzinfo=UTC)) == [mid]


async def test_limits_queue_then_start_in_deadline_order(world: World) -> None:
    for name in ("redis-a", "redis-b", "redis-c"):
        await world.addon(name)  # all on db-1/db-2, limit one per host
    late = await world.require("redis-a", MONDAY_NOON + timedelta(days=20))
    soon = await world.require("redis-b", MONDAY_NOON + timedelta(days=10))
    mid = await world.require("redis-c", MONDAY_NOON + timedelta(days=15))
    window = datetime(2026, 1, 11, 22, 0, tzinfo=UTC)
    assert await world.at(window) == [soon]
    waiting = await world.get(mid)
    assert (
        waiting.status is Status.PENDING and "Queued: host db-1 already runs 1" in waiting.history[-1].message
    )
    assert await world.at(window + timedelta(minutes=30)) == []  # still busy; no duplicate history
    assert sum("Queued" in h.message for h in (await world.get(mid)).history) == 1
    await world.finish(soon)
    assert await world.at(window + timedelta(minutes=40)) == [mid]
    await world.finish(mid)
    assert await world.at(window + timedelta(minutes=50)) == [late]


async def test_missed_window_moves_to_the_next_one(world: World) -> None:
    await world.addon("redis-a")
    mid = await world.require("redis-a", MONDAY_NOON + timedelta(days=30))
    # The scheduler was down for the whole window.
    assert await world.at(datetime(2026, 1, 12, 2, 30, tzinfo=UTC)) == []
    m = await world.get(mid)
    assert m.scheduled_for == datetime(2026, 1, 18, 22, 0, tzinfo=UTC)
    assert m.previously_scheduled_for == datetime(2026, 1, 11, 22, 0, tzinfo=UTC)
    moved = await world.events(EventType.MAINTENANCE_RESCHEDULED)
    assert len(moved) == 1 and "window ended" in moved[0].message
    assert await world.at(datetime(2026, 1, 18, 22, 0, tzinfo=UTC)) == [mid]


async def test_ninety_day_rule(world: World) -> None:
    await world.addon("redis-a")
    created = MONDAY_NOON
    assert await world.planner.file_routine() == 0
    world.clock.set(created + timedelta(days=75))
    assert await world.planner.file_routine() == 0
    world.clock.set(created + timedelta(days=76))
    assert await world.planner.file_routine() == 1
    assert await world.planner.file_routine() == 0  # one at a time
    info = await world.maint.addon_info(APP, "redis-a")
    m = info.maintenance
    assert m is not None and m.reason is Reason.ROUTINE_MAINTENANCE
    assert m.required_by == created + timedelta(days=90)
    assert m.scheduled_for is not None and m.scheduled_for.weekday() == 6
    assert m.scheduled_for + timedelta(hours=4) <= m.required_by
    # Done on time: the next one is due 90 days after this completion, not after creation.
    assert await world.at(m.scheduled_for) == [m.id]
    await world.finish(m.id)
    world.clock.set(m.scheduled_for + timedelta(days=70))
    assert await world.planner.file_routine() == 0
    world.clock.set(m.scheduled_for + timedelta(days=77))
    assert await world.planner.file_routine() == 1


async def test_freeze_against_a_deadline(world: World) -> None:
    await world.addon("redis-a")
    deadline = MONDAY_NOON + timedelta(days=10)
    mid = await world.require("redis-a", deadline)
    with pytest.raises(FailedPrecondition, match="required by 2026-01-15T12:00:00.000"):
        await world.freezes.create(APP, MONDAY_NOON, deadline + timedelta(days=1), "year-end freeze")
    assert await world.freezes.list(APP) == []  # refused: nothing written
    # A shorter freeze over the planned window moves it to the first free slot before the deadline.
    f = await world.freezes.create(
        APP, datetime(2026, 1, 11, tzinfo=UTC), datetime(2026, 1, 13, tzinfo=UTC), ""
    )
    m = await world.get(mid)
    assert m.scheduled_for == datetime(2026, 1, 13, tzinfo=UTC)
    assert f.id in m.history[-1].message
    assert await world.at(datetime(2026, 1, 11, 22, 0, tzinfo=UTC)) == []
    assert await world.at(datetime(2026, 1, 13, 0, 0, tzinfo=UTC)) == [mid]


async def test_user_schedule_into_a_freeze_is_moved_and_says_why(world: World) -> None:
    await world.addon("redis-a")
    await world.require("redis-a", MONDAY_NOON + timedelta(days=40))
    f = await world.freezes.create(
        APP, datetime(2026, 1, 17, tzinfo=UTC), datetime(2026, 1, 19, tzinfo=UTC), "launch"
    )
    m, why = await world.maint.schedule(APP, "redis-a", weeks=1, week=None)
    assert m.scheduled_for == datetime(2026, 1, 25, 22, 0, tzinfo=UTC)
    assert f"moved past freeze {f.id}" in why and "launch" in why


async def test_emergency_inside_a_freeze_starts_now(world: World) -> None:
    await world.addon("redis-a")
    await world.freezes.create(
        "", MONDAY_NOON - timedelta(hours=1), MONDAY_NOON + timedelta(days=5), "fleet freeze"
    )
    mid = await world.require("redis-a", MONDAY_NOON + timedelta(hours=2), Reason.EMERGENCY)
    assert (await world.get(mid)).scheduled_for == MONDAY_NOON
    assert await world.at(MONDAY_NOON + timedelta(seconds=5)) == [mid]
    assert "emergency" in (await world.get(mid)).history[-1].message


async def test_mini_runs_any_time_under_the_same_limits(world: World) -> None:
    await world.addon("redis-a", hosts=("db-1", "db-2"))
    await world.addon("redis-m", hosts=("db-1", "db-3"), plan="mini", window=None)
    a = await world.require("redis-a", MONDAY_NOON + timedelta(days=30))
    m = await world.require("redis-m", MONDAY_NOON + timedelta(days=30))
    assert await world.at(MONDAY_NOON + timedelta(seconds=1)) == [m]  # a Monday noon: no window needed
    assert await world.at(datetime(2026, 1, 11, 22, 0, tzinfo=UTC)) == []  # db-1 still busy with the mini
    await world.finish(m)
    assert await world.at(datetime(2026, 1, 11, 22, 5, tzinfo=UTC)) == [a]


async def test_a_start_survives_a_crash_between_deciding_and_running(world: World, tmp_path: Path) -> None:
    await world.addon("redis-a")
    mid = await world.require("redis-a", MONDAY_NOON + timedelta(days=30))

    class Crash(Exception):
        pass

    class CrashingRunner:
        def kick(self, maintenance_id: str) -> None:
            raise Crash  # the process dies right after the start was committed

    world.planner.runner = CrashingRunner()
    with pytest.raises(Crash):
        await world.at(datetime(2026, 1, 11, 22, 0, tzinfo=UTC))
    await world.store.close()

    # A new scheduler on the same database.
    from server.agents.hub import AgentHub
    from server.driver.runner import MaintenanceRunner

    store = store_for(location(world.store))
    await store.open()
    ctx = Context(store, world.clock, EventBus(), random.Random(8))
    kicked: list[str] = []
    runner = MaintenanceRunner(ctx, AgentHub(world.clock, require_certificates=False))
    runner.kick = kicked.append  # type: ignore[method-assign]
    assert await runner.resume() == 1 and kicked == [mid]
    assert await Planner(ctx, runner).tick() == []  # not started a second time
    async with store.transaction() as tx:
        starts = [
            e for e in await tx.events_after(0, APP, "", 1000) if e.type is EventType.MAINTENANCE_STARTED
        ]
    assert len(starts) == 1
    await store.close()
    world.store = store

"""No maintenance starts on an unavailable add-on: the planner moves it to the next window and says why;
`run` refuses with ADDON_UNAVAILABLE after asking for fresh reports. Real planner, runner and SQLite on
a fake clock; the agents' reports come from a placement the test sets."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kvmaint.clock import FakeClock
from kvmaint.errors import ErrorReason, FailedPrecondition, Unavailable
from server.domain.health import Observation
from server.domain.models import EventType, Method, Reason, Role, ServerRef, Status
from server.driver.planner import Planner
from server.driver.runner import MaintenanceRunner
from server.service.bus import EventBus
from server.service.core import Context
from server.service.fleet import FleetService, NoPlacement
from server.service.maintenance import MaintenanceService
from server.storage.sqlite import SqliteStore

MONDAY_NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SUNDAY = datetime(2026, 1, 11, 22, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
APP = "example-app"
UP = Observation(True, True, "master")
LINKED = Observation(True, True, "slave", "db-1", 7001, link_up=True, lag_bytes=0)


class Reports(NoPlacement):
    """Agents' reports as the test sets them."""

    def __init__(self) -> None:
        self.seen: dict[str, Observation] = {}
        self.refreshed: list[set[str]] = []

    def observe(self, server: ServerRef) -> Observation:
        return self.seen.get(server.key, Observation(False))

    async def refresh(self, hosts: set[str]) -> None:
        self.refreshed.append(hosts)


class Hub:

    leadership = None  # alone on its store: no lease to fence by

    def acting(self) -> bool:
        return True
    def hosts(self) -> list[str]:
        return []

    def endpoint_host(self, host: str) -> str:
        return host

    async def call(self, host: str, *args: Any, **kwargs: Any) -> Any:
        raise Unavailable(f"agent {host} is not connected")

    async def push_roles(self, hosts: Any) -> None:
        return None

    async def refresh(self, hosts: Any, timeout: float = 0) -> bool:
        return True


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Context, FakeClock, Reports, Planner, MaintenanceService]]:
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    clock = FakeClock(MONDAY_NOON)
    ctx = Context(store, clock, EventBus(), random.Random(7))
    reports = Reports()
    runner = MaintenanceRunner(ctx, Hub())  # type: ignore[arg-type]
    maint = MaintenanceService(ctx, runner, reports)
    fleet = FleetService(ctx)
    await fleet.create_app(APP, "owner@example.com")
    await fleet.create_addon(APP, "premium-0", "redis-a", ["REDIS_URL"], ServerRef("db-1", 7001, Role.PRIMARY),
                             ServerRef("db-2", 7002, Role.STANDBY))
    await maint.update_window(APP, "redis-a", "Sunday", "22:00")
    await fleet.require_maintenance(addons=["redis-a"], plan=None, all_addons=False, reason=Reason.SECURITY_PATCH,
                                    method=Method.FAILOVER, required_by=MONDAY_NOON + timedelta(days=60))
    yield ctx, clock, reports, Planner(ctx, runner, placement=reports), maint
    await runner.close()
    await store.close()


async def test_the_planner_moves_it_to_the_next_window_and_says_why(world) -> None:
    ctx, clock, reports, planner, maint = world
    reports.seen = {"db-1:7001": Observation(True, False, error="Connection refused"), "db-2:7002": LINKED}
    clock.set(SUNDAY + timedelta(minutes=1))
    assert await planner.tick() == []
    [m], _ = await maint.list(APP, 10, "")
    assert (m.status, m.attempts, m.scheduled_for) == (Status.PENDING, 0, SUNDAY + WEEK)
    async with ctx.store.transaction() as tx:
        moved = [e for e in await tx.events_after(0, APP, "", 1000) if e.type is EventType.MAINTENANCE_RESCHEDULED]
    assert moved[-1].attributes["deferred"] == "addon_unavailable"
    assert "the primary db-1:7001 is down (Connection refused)" in moved[-1].attributes["unavailable_reason"]
    assert "not started: redis-a is unavailable" in moved[-1].message and "next window" in moved[-1].message
    info = await maint.addon_info(APP, "REDIS_URL")
    assert info.status == "unavailable" and "db-1:7001 is down" in info.status_reason

    # A degraded add-on (standby down) is maintained: the failover needs the primary, not the standby.
    reports.seen = {"db-1:7001": UP, "db-2:7002": Observation(True, False, error="Connection refused")}
    assert (await maint.addon_info(APP, "REDIS_URL")).status == "degraded"
    clock.set(SUNDAY + WEEK + timedelta(minutes=1))
    assert await planner.tick() == [m.id]


async def test_run_refuses_an_unavailable_addon_after_fresh_reports(world) -> None:
    _, _, reports, _, maint = world
    reports.seen = {"db-1:7001": Observation(True, True, "slave", "db-2", 7002, link_up=True), "db-2:7002": UP}
    with pytest.raises(FailedPrecondition) as refused:
        await maint.run(APP, "REDIS_URL", APP)
    assert refused.value.reason == ErrorReason.ADDON_UNAVAILABLE
    assert "redis-a is unavailable: the primary db-1:7001 is not writable" in str(refused.value)
    assert reports.refreshed == [{"db-1", "db-2"}]
    [m], _ = await maint.list(APP, 10, "")
    assert m.status is Status.PENDING

    reports.seen = {"db-1:7001": UP, "db-2:7002": LINKED}
    assert (await maint.addon_info(APP, "REDIS_URL")).status == "available"
    assert (await maint.run(APP, "REDIS_URL", APP)).status is Status.PREPARING

"""A failed attempt is not forgotten: the real runner and planner on a fake clock over a real SQLite file.

The hub here has no agent connected, so every attempt fails at catch_up, before the point of no return
(the integration tests fail attempts against real agents and Redis)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kvmaint.clock import FakeClock
from kvmaint.errors import Unavailable
from server.domain.lifecycle import MAX_ATTEMPTS
from server.domain.models import EventType, Method, Reason, Role, ServerRef, Status
from server.driver.planner import Planner
from server.driver.runner import MaintenanceRunner
from server.notify.outbox import Outbox
from server.service.bus import EventBus
from server.service.core import Context
from server.service.fleet import FleetService
from server.service.maintenance import MaintenanceService
from server.storage.select import store_for
from tests.support.stores import BACKENDS, backend_db

MONDAY_NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SUNDAY = datetime(2026, 1, 11, 22, 0, tzinfo=UTC)  # the add-on's window: Sundays 22:00
WEEK = timedelta(days=7)
APP = "example-app"


class NoAgents:
    """An AgentHub with every agent gone."""

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


@pytest.fixture(params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Context, FakeClock, MaintenanceRunner, Planner, MaintenanceService]]:
    with backend_db(request.param, tmp_path) as db:
        async for w in _world(db):
            yield w


async def _world(db: Path | str) -> AsyncIterator[tuple[Context, FakeClock, MaintenanceRunner, Planner, MaintenanceService]]:
    store = store_for(db)
    await store.open()
    clock = FakeClock(MONDAY_NOON)
    ctx = Context(store, clock, EventBus(), random.Random(7), notify=Outbox(email=True))
    runner = MaintenanceRunner(ctx, NoAgents())  # type: ignore[arg-type]
    maint = MaintenanceService(ctx, runner)
    fleet = FleetService(ctx)
    await fleet.create_app(APP, "owner@example.com")
    await fleet.create_addon(APP, "premium-0", "redis-a", ["REDIS_URL"], ServerRef("db-1", 7001, Role.PRIMARY),
                             ServerRef("db-2", 7002, Role.STANDBY))
    await maint.update_window(APP, "redis-a", "Sunday", "22:00")
    yield ctx, clock, runner, Planner(ctx, runner), maint
    await runner.close()
    await store.close()


async def test_three_failed_attempts_then_an_operator(world) -> None:
    ctx, clock, runner, planner, maint = world
    required_by = MONDAY_NOON + timedelta(days=60)
    fleet = FleetService(ctx)
    [m] = (await fleet.require_maintenance(addons=["redis-a"], plan=None, all_addons=False,
                                           reason=Reason.SECURITY_PATCH, method=Method.FAILOVER,
                                           required_by=required_by))[0]
    assert m.scheduled_for == SUNDAY
    for attempt in range(1, MAX_ATTEMPTS + 1):
        clock.set(SUNDAY + (attempt - 1) * WEEK)
        assert await planner.tick() == [m.id]  # the planner starts it on its own in each window
        await runner.wait(m.id)
        m = await maint.get(m.id)
        assert m is not None
        assert (m.status, m.attempts, m.needs_operator) == (Status.PENDING, attempt, attempt == MAX_ATTEMPTS)
        assert m.last_failure_reason.startswith("catch_up: the standby db-2:7002 did not catch up")
        assert "agent db-2 is not connected" in m.last_failure_reason
        assert m.required_by == required_by and m.scheduled_for == SUNDAY + attempt * WEEK
        info = await maint.addon_info(APP, "REDIS_URL")
        assert info.required_by == required_by and info.status == "unknown"  # still required; no agent sees it

    # Marked for an operator: the planner no longer starts it, not even in its window.
    clock.set(SUNDAY + MAX_ATTEMPTS * WEEK)
    assert await planner.tick() == []
    assert (await maint.get(m.id)).status is Status.PENDING  # type: ignore[union-attr]
    # Past the deadline it is overdue, and still required.
    clock.set(required_by + timedelta(minutes=1))
    info = await maint.addon_info(APP, "REDIS_URL")
    assert info.overdue and info.required_by == required_by
    # `run` still works.
    started = await maint.run(APP, "REDIS_URL", APP)
    assert started.status is Status.PREPARING
    await runner.wait(m.id)
    assert (await maint.get(m.id)).attempts == MAX_ATTEMPTS + 1  # type: ignore[union-attr]

    async with ctx.store.transaction() as tx:
        events = [e for e in await tx.events_after(0, APP, "", 10_000) if e.type is EventType.MAINTENANCE_FAILED]
        outbox = await tx.list_outbox(0, 1000)
        history = (await tx.get_maintenance(m.id)).history  # type: ignore[union-attr]
    assert [e.attributes["attempts"] for e in events] == ["1", "2", "3", "4"]
    assert [e.attributes["needs_operator"] for e in events] == ["false", "false", "true", "true"]
    assert all("The primary was left unchanged." in e.message for e in events)
    assert "Attempt 1 of 3; it is pending again for 2026-01-18T22:00:00.000+00:00" in events[0].message
    failed_mail = [o for o in outbox if "failed (attempt" in o.subject]
    assert [o.subject for o in failed_mail][:3] == [
        "Maintenance of redis-a on example-app failed (attempt 1); it is pending again for Sun 2026-01-18 22:00 UTC",
        "Maintenance of redis-a on example-app failed (attempt 2); it is pending again for Sun 2026-01-25 22:00 UTC",
        "Maintenance of redis-a on example-app failed (attempt 3); it waits for an operator",
    ]
    assert {o.recipient for o in failed_mail} == {"owner@example.com"}
    assert "last_failure_reason:" in failed_mail[0].body and "attempts:" in failed_mail[0].body
    assert [h.status for h in history].count(Status.PENDING) >= 2 + 4

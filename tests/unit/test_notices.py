"""Which committed events become which notices, what a notice's JSON looks like, and `starting` going
out once, a minute ahead, on a fake clock over a real SQLite file (the agents' side: a hub stand-in)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kvmaint.clock import FakeClock
from kvmaint.notices import Notice, NoticeType, render
from kvmaint.v1 import agent_pb2
from server.domain.models import Event, EventType, Method, Reason, Role, ServerRef
from server.driver.notices import MaintenanceNotices, from_event
from server.service.bus import EventBus
from server.service.core import Context
from server.service.fleet import FleetService
from server.service.maintenance import MaintenanceService
from server.storage.sqlite import SqliteStore
from tests.support.eventually import eventually

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def event(type: EventType, **attributes: str) -> Event:
    return Event(7, type, NOW, "example-app", "redis-a", "m-1", "", attributes)


def test_render_puts_the_common_keys_first_and_never_lets_fields_override_them() -> None:
    text = render(Notice(NoticeType.FAILED_OVER, "m-1", "redis-a", {"new_primary": "h:2", "type": "x"}), NOW)
    assert text == (
        '{"type":"failed_over","maintenance_id":"m-1","addon":"redis-a",'
        '"time":"2026-12-01T10:00:00.000+00:00","new_primary":"h:2"}'
    )
    assert json.loads(text)["type"] == "failed_over"


def test_events_that_become_notices() -> None:
    (scheduled,) = from_event(event(EventType.MAINTENANCE_RESCHEDULED, scheduled_for="A", required_by="B"))
    assert scheduled.type is NoticeType.SCHEDULED
    assert scheduled.fields == {"scheduled_for": "A", "required_by": "B"}  # empty ones left out
    (completed,) = from_event(event(EventType.MAINTENANCE_COMPLETED, duration_seconds="1"))
    assert completed.type is NoticeType.COMPLETED
    failed, again = from_event(
        event(
            EventType.MAINTENANCE_FAILED, status="pending", step="catch_up", reason="lag", scheduled_for="C"
        )
    )
    assert (failed.type, failed.fields["status"], again.type, again.fields) == (
        NoticeType.FAILED, "pending", NoticeType.SCHEDULED, {"scheduled_for": "C"},
    )  # fmt: skip
    (ended,) = from_event(event(EventType.MAINTENANCE_FAILED, status="failed", step="finish", reason="x"))
    assert ended.type is NoticeType.FAILED
    assert from_event(event(EventType.MAINTENANCE_STEP, step="failover")) == []
    assert from_event(event(EventType.WINDOW_UPDATED)) == []


@dataclass
class Hub:
    """Records what would go to the agents."""

    calls: list[tuple[str, str, agent_pb2.PublishNoticeCommand]] = field(default_factory=list)
    advertised: dict[str, str] = field(default_factory=dict)

    def acting(self) -> bool:
        return True

    def is_connected(self, host: str) -> bool:
        return host == "db-1"

    async def call(self, host: str, command_id: str, action: str, message, timeout: float):
        self.calls.append((host, command_id, message))
        return agent_pb2.CommandResult(command_id=command_id, ok=True)


async def test_starting_goes_out_once_a_minute_ahead(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    clock = FakeClock(NOW)
    ctx = Context(store, clock, EventBus(), random.Random(1))
    fleet, maint = FleetService(ctx), MaintenanceService(ctx)
    await fleet.create_app("example-app", "o@example.com")
    await fleet.create_addon(
        "example-app", "premium-0", "redis-a", ["REDIS_URL"],
        ServerRef("db-1", 7001, Role.PRIMARY), ServerRef("db-2", 7002, Role.STANDBY),
    )  # fmt: skip
    await maint.update_window("example-app", "redis-a", "Tuesday", "12:00")
    created, _ = await fleet.require_maintenance(
        addons=["redis-a"], plan=None, all_addons=False, reason=Reason.SECURITY_PATCH,
        method=Method.FAILOVER, required_by=NOW + timedelta(days=20),
    )  # fmt: skip
    starts = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert created[0].scheduled_for == starts
    hub = Hub()
    notices = MaintenanceNotices(store, ctx.bus, hub)  # type: ignore[arg-type]
    try:
        clock.set(starts - timedelta(seconds=61))
        assert await notices.ahead(clock.now()) == 0
        clock.set(starts - timedelta(seconds=59))
        assert await notices.ahead(clock.now()) == 1
        assert await notices.ahead(clock.now() + timedelta(seconds=5)) == 0  # once
        await eventually(lambda: hub.calls, message="sent in the background")
        ((host, command_id, command),) = hub.calls
        assert (host, command.port, command.notice.type) == ("db-1", 7001, "starting")
        assert command.notice.fields["in_seconds"] == "59"
        assert command.notice.fields["starts_at"] == "2026-12-01T12:00:00.000+00:00"
        assert command_id.startswith(f"notice/{created[0].id}/starting/")
        # Rescheduled: a new `starting` for the new time when that comes.
        await maint.schedule("example-app", "redis-a", 1, None)
        clock.set(starts + timedelta(days=7, seconds=-30))
        assert await notices.ahead(clock.now()) == 1
    finally:
        await notices.close()
        await store.close()


async def test_the_next_follower_resumes_from_the_stored_position(tmp_path: Path) -> None:
    """A takeover in one process: the first follower sent up to a point and stopped; an event written
    after that (in the takeover's window) is sent by the next follower, and what was sent is not."""
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    ctx = Context(store, FakeClock(NOW), EventBus(), random.Random(1))
    fleet, maint = FleetService(ctx), MaintenanceService(ctx)
    await fleet.create_app("example-app", "o@example.com")
    await fleet.create_addon(
        "example-app", "premium-0", "redis-a", ["REDIS_URL"],
        ServerRef("db-1", 7001, Role.PRIMARY), ServerRef("db-2", 7002, Role.STANDBY),
    )  # fmt: skip
    hub = Hub()
    first = MaintenanceNotices(store, ctx.bus, hub)  # type: ignore[arg-type]
    second = MaintenanceNotices(store, ctx.bus, hub)  # type: ignore[arg-type]
    try:
        await first.start()  # a database without a position: from its end
        await fleet.require_maintenance(
            addons=["redis-a"], plan=None, all_addons=False, reason=Reason.SECURITY_PATCH,
            method=Method.FAILOVER, required_by=NOW + timedelta(days=20),
        )  # fmt: skip
        while await first.step():
            pass
        await eventually(lambda: hub.calls, message="the first follower's notice")
        assert [c.notice.type for _, _, c in hub.calls] == ["scheduled"]
        await maint.update_window("example-app", "redis-a", "Sunday", "03:00")  # nobody follows now
        await second.start()
        while await second.step():
            pass
        await eventually(lambda: len(hub.calls) >= 2, timeout=3, message="the takeover window's notice")
        sent = [(cid, c.notice.type) for _, cid, c in hub.calls]
        assert [t for _, t in sent] == ["scheduled", "scheduled"], sent
        assert len({cid for cid, _ in sent}) == 2
        assert "previously_scheduled_for" in hub.calls[1][2].notice.fields
    finally:
        await first.close()
        await second.close()
        await store.close()

"""Campaigns on a fake clock over a real SQLite file, with the real planner: waves, soaks, halts, resume
and cancel in milliseconds. The runner only records what it is asked to run; the test plays the driver
(completes a maintenance, or fails an attempt the way the runner does)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kvmaint.clock import FakeClock
from kvmaint.errors import FailedPrecondition
from server.domain import lifecycle
from server.domain.builds import HostBuild
from server.domain.campaigns import CampaignStatus, Spec
from server.domain.models import EventType, Maintenance, Method, Reason, Role, ServerRef, Status
from server.domain.planner import Limits
from server.driver.planner import Planner
from server.notify.outbox import Outbox
from server.service.bus import EventBus
from server.service.campaigns import CampaignService, Selection
from server.service.core import Context
from server.service.fleet import FleetService, NoPlacement
from server.service.maintenance import MaintenanceService
from server.storage.sqlite import SqliteStore

MONDAY_NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
APP = "example-app"
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class Builds(NoPlacement):
    def host_builds(self) -> list[HostBuild]:
        return [HostBuild(h, "valkey-8.1", "8.1.8") for h in ("db-1", "db-2", "db-3")]


@dataclass
class RecordingRunner:
    kicked: list[str] = field(default_factory=list)

    def kick(self, maintenance_id: str) -> None:
        self.kicked.append(maintenance_id)


@dataclass
class World:
    clock: FakeClock
    ctx: Context
    runner: RecordingRunner
    fleet: FleetService
    maint: MaintenanceService
    campaigns: CampaignService
    planner: Planner
    ports: int = 7000

    async def addons(self, n: int) -> list[str]:
        """n add-ons over 3 hosts, windows spread over the week's days at 10:00 and 20:00."""
        names = []
        hosts = ("db-1", "db-2", "db-3")
        for i in range(n):
            name = f"redis-{i:02d}"
            self.ports += 2
            a, b = hosts[i % 3], hosts[(i + 1) % 3]
            await self.fleet.create_addon(
                APP,
                "premium-0",
                name,
                [f"R{i}_URL"],
                ServerRef(a, self.ports, Role.PRIMARY),
                ServerRef(b, self.ports + 1, Role.STANDBY),
            )
            await self.maint.update_window(APP, name, DAYS[i % 7], "10:00" if i % 2 else "20:00")
            names.append(name)
        return names

    async def at(self, when: datetime) -> list[str]:
        self.clock.set(when)
        return await self.planner.tick()

    async def maintenance(self, mid: str) -> Maintenance:
        m = await self.maint.get(mid)
        assert m is not None
        return m

    async def finish(self, mid: str, pause_ms: int = 5) -> None:
        async with self.ctx.store.transaction() as tx:
            m = await tx.get_maintenance(mid)
            assert m is not None
            await tx.update_maintenance(
                replace(m, status=Status.COMPLETED, completed_at=self.clock.now(), write_pause_ms=pause_ms)
            )

    async def fail(self, mid: str) -> None:
        """What the runner does with a failure before the point of no return."""
        async with self.ctx.store.transaction() as tx:
            m = await tx.get_maintenance(mid)
            assert m is not None
            out = lifecycle.on_failure(
                m, lifecycle.Failure("catch_up", "standby stopped", False), self.clock.now()
            )
            await tx.update_maintenance(out.maintenance)

    async def fleet_events(self, type: EventType) -> list:
        async with self.ctx.store.transaction() as tx:
            return [e for e in await tx.events_after(0, "", "", 100_000) if e.type is type]

    async def run_wave(self) -> list[str]:
        """Ticks at each started maintenance's own scheduled time and completes it; returns their ids."""
        done = []
        for _ in range(50):
            async with self.ctx.store.transaction() as tx:
                pending = [m for m in await tx.pending_maintenances(None)]
            if not pending:
                return done
            first = min(pending, key=lambda m: m.scheduled_for or MONDAY_NOON)
            started = await self.at(max(self.clock.now(), first.scheduled_for or self.clock.now()))
            for mid in started:
                await self.finish(mid)
                done.append(mid)
            if not started:
                return done
        return done


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    clock = FakeClock(MONDAY_NOON)
    ctx = Context(
        store,
        clock,
        EventBus(),
        random.Random(7),
        notify=Outbox(email=True, operator_email="ops@example.com"),
    )
    runner = RecordingRunner()
    fleet = FleetService(ctx, Builds())
    w = World(
        clock,
        ctx,
        runner,
        fleet,
        MaintenanceService(ctx, runner),
        CampaignService(ctx, fleet.placement),
        Planner(ctx, runner, limits=Limits(max_running=100, max_per_host=100)),
    )
    await fleet.create_app(APP, "owner@example.com")
    yield w
    await store.close()


SPEC = Spec("valkey-8.1", "redis_upgrade", MONDAY_NOON + timedelta(days=30), 1, (25, 100), timedelta(hours=6))


async def test_dry_run_writes_nothing_and_the_real_run_files_the_same_windows(world: World) -> None:
    await world.addons(12)
    async with world.ctx.store.transaction() as tx:
        before = (await tx.events_after(0, "", "", 100_000), await tx.pending_maintenances(None))
    none, dry = await world.campaigns.create(SPEC, Selection(all=True), dry_run=True)
    assert none is None
    async with world.ctx.store.transaction() as tx:
        assert (await tx.events_after(0, "", "", 100_000), await tx.pending_maintenances(None)) == before
        assert await tx.list_campaigns() == []
    assert [sum(1 for e in dry.entries if e.wave == w) for w in range(3)] == [1, 3, 8]

    c, real = await world.campaigns.create(SPEC, Selection(all=True), dry_run=False)
    assert c is not None and real == dry
    # The canary is filed at once, into its planned window; nothing else yet.
    view = await world.campaigns.get(c.id)
    filed = {s.member.addon: s.scheduled_for for s in view.members if s.member.maintenance_id}
    planned = {e.addon: e.at for e in dry.entries}
    assert filed == {e.addon: e.at for e in dry.entries if e.wave == 0}

    for wave in range(3):
        ids = await world.run_wave()
        assert len(ids) == [1, 3, 8][wave]
        view = await world.campaigns.get(c.id)
        assert view.campaign.wave == wave and view.waves[wave].completed == len(ids)
        # Not released before the soak has passed since the wave's last maintenance ended.
        await world.at(world.clock.now() + timedelta(hours=5))
        assert (await world.campaigns.get(c.id)).campaign.wave == wave
        await world.at(world.clock.now() + timedelta(hours=1, seconds=1))
    view = await world.campaigns.get(c.id)
    assert view.campaign.status is CampaignStatus.COMPLETED
    # Every add-on was maintained in exactly the window the dry run gave it.
    assert {s.member.addon: s.scheduled_for for s in view.members} == planned
    assert all(s.status == "completed" for s in view.members)
    assert len(await world.fleet_events(EventType.CAMPAIGN_WAVE_RELEASED)) == 3
    assert len(await world.fleet_events(EventType.CAMPAIGN_COMPLETED)) == 1


async def test_a_failure_halts_the_wave_mails_the_operator_and_resume_goes_on(world: World) -> None:
    await world.addons(12)
    spec = replace(SPEC, canary=1, soak=timedelta(0))
    c, _ = await world.campaigns.create(spec, Selection(all=True), dry_run=False)
    assert c is not None
    await world.run_wave()  # canary
    await world.at(world.clock.now())  # releases wave 1 (no soak)
    view = await world.campaigns.get(c.id)
    assert view.campaign.wave == 1
    wave1 = sorted(
        (s for s in view.members if s.member.wave == 1), key=lambda s: s.scheduled_for or MONDAY_NOON
    )
    first = wave1[0]
    started = await world.at(first.scheduled_for or MONDAY_NOON)
    assert first.member.maintenance_id in started
    await world.fail(first.member.maintenance_id)
    await world.at(world.clock.now())
    view = await world.campaigns.get(c.id)
    assert view.campaign.status is CampaignStatus.HALTED
    assert view.campaign.halt_reason == "1 maintenance attempt(s) of wave 1 failed (--halt-on-failures 1)"
    assert (view.waves[1].failed, view.waves[1].pending) == (1, 2)
    [halted] = await world.fleet_events(EventType.CAMPAIGN_HALTED)
    assert "halted at wave 1" in halted.message
    async with world.ctx.store.transaction() as tx:
        mails = [o for o in await tx.list_outbox(0, 1000) if o.recipient == "ops@example.com"]
    assert len(mails) == 1 and "halted" in mails[0].subject and f"campaigns:resume {c.id}" in mails[0].body

    async with world.ctx.store.transaction() as tx:  # what the status page's calendar shows
        shown = await tx.campaign_memberships([first.member.addon, "redis-nope"])
    assert [(c.status, m.addon, m.wave) for c, m in shown] == [(CampaignStatus.HALTED, first.member.addon, 1)]

    # Halted: nothing more of the campaign starts, even in its windows.
    for s in wave1[1:]:
        assert await world.at(s.scheduled_for or MONDAY_NOON) == []
    await world.campaigns.resume(c.id)
    with pytest.raises(FailedPrecondition):  # running: nothing to resume
        await world.campaigns.resume(c.id)

    # Resumed: the failed one goes back into its window under way (or next) and the wave goes on.
    view = await world.campaigns.get(c.id)
    assert view.campaign.status is CampaignStatus.RUNNING and view.campaign.halt_reason == ""
    for _ in range(3):
        await world.run_wave()
        await world.at(world.clock.now())
    view = await world.campaigns.get(c.id)
    assert view.campaign.status is CampaignStatus.COMPLETED
    assert sum(w.completed for w in view.waves) == 12


async def test_a_long_write_pause_halts_and_cancel_cancels_what_is_pending(world: World) -> None:
    await world.addons(6)
    spec = replace(SPEC, canary=1, soak=timedelta(0), halt_on_pause_ms=100, waves=(100,))
    c, _ = await world.campaigns.create(spec, Selection(apps=(APP,)), dry_run=False)
    assert c is not None
    [canary] = [s for s in (await world.campaigns.get(c.id)).members if s.member.maintenance_id]
    [mid] = await world.at(canary.scheduled_for or MONDAY_NOON)
    await world.finish(mid, pause_ms=250)
    await world.at(world.clock.now())
    view = await world.campaigns.get(c.id)
    assert view.campaign.status is CampaignStatus.HALTED
    assert (
        view.campaign.halt_reason
        == f"{canary.member.addon} paused writes 250 ms in canary (--halt-on-pause-ms 100)"
    )
    await world.campaigns.resume(c.id)
    await world.at(world.clock.now())  # the pause seen before the resume no longer halts: wave 1 released
    view = await world.campaigns.get(c.id)
    assert view.campaign.wave == 1 and view.waves[1].pending == 5
    await world.campaigns.cancel(c.id)
    view = await world.campaigns.get(c.id)
    assert view.campaign.status is CampaignStatus.CANCELED
    assert [s.status for s in view.members if s.member.wave == 1] == ["canceled"] * 5
    with pytest.raises(FailedPrecondition):
        await world.campaigns.cancel(c.id)


async def test_an_addon_with_a_maintenance_of_its_own_is_skipped_and_the_wave_goes_on(world: World) -> None:
    names = await world.addons(3)
    spec = replace(SPEC, canary=1, soak=timedelta(0), waves=(100,))
    c, plan = await world.campaigns.create(spec, Selection(all=True), dry_run=False)
    assert c is not None
    later = next(e.addon for e in plan.entries if e.wave == 1)
    own, _ = await world.fleet.require_maintenance(
        addons=[later],
        plan=None,
        all_addons=False,
        reason=Reason.SECURITY_PATCH,
        method=Method.FAILOVER,
        required_by=MONDAY_NOON + timedelta(days=20),
    )
    for _ in range(3):
        await world.run_wave()
        await world.at(world.clock.now())
    view = await world.campaigns.get(c.id)
    skipped = {s.member.addon: s.member.note for s in view.members if s.member.note}
    assert skipped == {later: f"skipped: it already had maintenance {own[0].id} (pending)"}
    assert view.campaign.status is CampaignStatus.COMPLETED and view.waves[1].skipped == 1
    assert len(names) == 3

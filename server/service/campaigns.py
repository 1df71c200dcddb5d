"""Operators' campaigns: create (or dry-run), list, show, resume, cancel; and `advance`, the step the
planner takes for every running campaign each tick.

The dry run and the real run call the same `domain.campaigns.plan`; a real campaign stores that plan
(each member's wave and window) and files a wave's maintenances into those windows when it is released.
Every change of a campaign (release, halt, finish, resume, cancel) is one transaction with its event, so a
scheduler killed at any point resumes the campaign exactly where the database says it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kvmaint.clock import iso
from kvmaint.errors import ErrorReason, FailedPrecondition, InvalidArgument, NotFound, Resource
from server.domain import builds, lifecycle
from server.domain import campaigns as dc
from server.domain.campaigns import Campaign, CampaignStatus, Member, MemberState, Plan, Spec, WaveCounts
from server.domain.models import EventType, HistoryEntry, Method, Reason, Status
from server.domain.planning import Slot
from server.domain.plans import parse_plan
from server.service.core import Context, Write, get_app
from server.service.fleet import Placement, Target, file_maintenance
from server.service.maintenance import reschedule
from server.storage import Tx


@dataclass(frozen=True)
class Selection:
    """Which add-ons a campaign covers: all of them, one plan's, or some apps'."""

    all: bool = False
    plan: str = ""
    apps: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.all:
            return "all"
        if self.plan:
            return f"plan {self.plan}"
        return f"apps {', '.join(self.apps)}"


@dataclass(frozen=True)
class CampaignView:
    campaign: Campaign
    waves: tuple[WaveCounts, ...]
    members: tuple[MemberState, ...] = ()


class CampaignService:
    def __init__(self, ctx: Context, placement: Placement) -> None:
        self.ctx = ctx
        self.placement = placement

    async def _targets(
        self, w: Write, sel: Selection, with_servers: bool
    ) -> list[tuple[dc.Candidate, tuple[str, ...]]]:
        if sel.all:
            return await w.tx.campaign_candidates(None, None, with_servers)
        if sel.plan:
            return await w.tx.campaign_candidates(parse_plan(sel.plan).name, None, with_servers)
        if not sel.apps:
            raise InvalidArgument.field(
                "target", "Name apps (-a APP), a plan (--plan), or all add-ons (--all)."
            )
        for app in sel.apps:
            await get_app(w.tx, app)
        return await w.tx.campaign_candidates(None, list(sel.apps), with_servers)

    async def create(
        self, spec: Spec, sel: Selection, *, dry_run: bool, allow_downgrade: bool = False
    ) -> tuple[Campaign | None, Plan]:
        """The plan; unless `dry_run`, the campaign too, with its canary (or first wave) filed at once.
        A dry run writes nothing."""
        now = self.ctx.clock.now()
        dc.check(spec, now)
        try:
            Reason(spec.reason)
        except ValueError:
            raise InvalidArgument.field(
                "reason", f"Unknown maintenance reason {spec.reason[:40]!r}."
            ) from None
        version = builds.target_version(spec.build, self.placement.host_builds())
        # Only servers that run a newer version than the target can make it a downgrade: usually none,
        # and then no add-on's servers need reading.
        newer = {
            key: r
            for key, r in self.placement.running_servers().items()
            if r.version and builds.version_key(r.version) > builds.version_key(version)
        }
        async with self.ctx.write() as w:
            addons = await self._targets(w, sel, with_servers=bool(newer))
            if not addons:
                raise FailedPrecondition(
                    f"No add-on matches {sel.describe()}: there is nothing to roll out.",
                    reason=ErrorReason.CAMPAIGN_EMPTY,
                )
            for cand, keys in addons:
                if any(k in newer for k in keys):
                    builds.check_downgrade(cand.addon, keys, newer, spec.build, version, allow_downgrade)
            freezes = await w.tx.list_freezes(None, now)
            planned = dc.plan((cand for cand, _ in addons), spec, now, freezes)
            if dry_run:
                return None, planned
            c = Campaign(
                id=self.ctx.new_id(),
                spec=spec,
                target=sel.describe(),
                target_version=version,
                allow_downgrade=allow_downgrade,
                status=CampaignStatus.RUNNING,
                wave=0,
                waves=planned.waves,
                created_at=now,
                has_canary=spec.canary > 0,
            )
            members = [
                Member(e.addon, e.app, e.wave, e.at, e.window, e.meets_deadline) for e in planned.entries
            ]
            await w.tx.insert_campaign(c, members)
            late = sum(1 for e in planned.entries if not e.meets_deadline)
            await w.emit(
                EventType.CAMPAIGN_CREATED,
                self.ctx,
                "",
                message=(
                    f"Campaign {c.id} to build {spec.build} ({version}) over {len(members)} add-on(s) of "
                    f"{c.target} in {c.waves} wave(s), required by {iso(spec.required_by)}"
                    + (f"; {late} cannot meet the deadline in their windows" if late else "")
                ),
                campaign_id=c.id,
                build=spec.build,
                target_version=version,
            )
            await advance(self.ctx, w, c)
        return c, planned

    async def list(self) -> list[CampaignView]:
        async with self.ctx.store.read() as tx:
            out = []
            for c in await tx.list_campaigns():
                out.append(CampaignView(c, _waves(c, await tx.campaign_members(c.id))))
            return out

    async def get(self, id: str) -> CampaignView:
        async with self.ctx.store.read() as tx:
            c = await _get(tx, id)
            members = await tx.campaign_members(c.id)
        return CampaignView(c, _waves(c, members), tuple(members))

    async def resume(self, id: str) -> Campaign:
        """A halted campaign runs again: the failures seen so far no longer count, and the current wave's
        pending maintenances (a failed attempt's retry among them) go back to their window under way or
        next, from now."""
        now = self.ctx.clock.now()
        async with self.ctx.write() as w:
            c = await _get(w.tx, id)
            if c.status is not CampaignStatus.HALTED:
                raise FailedPrecondition(
                    f"Campaign {c.id} is {c.status.value}, not halted: there is nothing to resume.",
                    reason=ErrorReason.CAMPAIGN_NOT_HALTED,
                    resource=Resource("Campaign", c.id),
                    metadata={"status": c.status.value},
                )
            states = await w.tx.campaign_members(c.id, c.wave)
            counts = dc.counts(states, c.resumed_at)
            c = replace(
                c,
                status=CampaignStatus.RUNNING,
                halt_reason="",
                failure_baseline=counts.failed_attempts,
                resumed_at=now,
            )
            await w.tx.update_campaign(c)
            freezes = await w.tx.list_freezes(None, now)
            for s in states:
                if s.status != Status.PENDING.value or not s.member.maintenance_id:
                    continue
                m = await w.tx.get_maintenance(s.member.maintenance_id)
                if m is None:
                    continue
                found = dc.slot(m.window, now, m.required_by, freezes, m.app)
                if found.at != m.scheduled_for:
                    await reschedule(
                        self.ctx, w, m, found.at, f"campaign {c.id} resumed; {found.explanation}"
                    )
            await w.emit(
                EventType.CAMPAIGN_RESUMED,
                self.ctx,
                "",
                message=f"Campaign {c.id} resumed at {c.wave_label(c.wave)}",
                campaign_id=c.id,
                wave=str(c.wave),
            )
        return c

    async def cancel(self, id: str) -> Campaign:
        """Nothing more of the campaign starts: its pending maintenances are canceled, running ones
        finish, later waves are never filed."""
        now = self.ctx.clock.now()
        async with self.ctx.write() as w:
            c = await _get(w.tx, id)
            if c.status.ended:
                raise FailedPrecondition(
                    f"Campaign {c.id} has already {c.status.value}.",
                    reason=ErrorReason.CAMPAIGN_ENDED,
                    resource=Resource("Campaign", c.id),
                    metadata={"status": c.status.value},
                )
            c = replace(c, status=CampaignStatus.CANCELED, ended_at=now)
            await w.tx.update_campaign(c)
            canceled = 0
            for s in await w.tx.campaign_members(c.id):
                if s.status != Status.PENDING.value:
                    continue
                m = await w.tx.get_maintenance(s.member.maintenance_id)
                if m is None or m.status is not Status.PENDING:  # started since the member was read
                    continue
                why = f"Canceled: campaign {c.id} was canceled"
                await w.tx.update_maintenance(lifecycle.cancel(m, now))
                await w.tx.add_history(m.id, HistoryEntry(now, Status.CANCELED, "", why))
                await w.emit(EventType.MAINTENANCE_CANCELED, self.ctx, m.app, m.addon, m.id, why)
                canceled += 1
            await w.emit(
                EventType.CAMPAIGN_CANCELED,
                self.ctx,
                "",
                message=f"Campaign {c.id} canceled; {canceled} pending maintenance(s) canceled",
                campaign_id=c.id,
            )
        return c


async def _get(tx: Tx, id: str) -> Campaign:
    if not id or len(id) > 100:
        raise InvalidArgument.field("id", "A campaign id is required.")
    c = await tx.get_campaign(id)
    if c is None:
        raise NotFound(
            f"Couldn't find campaign {id[:80]}.",
            reason=ErrorReason.CAMPAIGN_NOT_FOUND,
            resource=Resource("Campaign", id[:80]),
        )
    return c


def _waves(c: Campaign, members: list[MemberState]) -> tuple[WaveCounts, ...]:
    by_wave: list[list[MemberState]] = [[] for _ in range(c.waves)]
    for s in members:
        by_wave[s.member.wave].append(s)
    # Failures and pauses before a resume still show in the counts; only halting ignores them.
    return tuple(dc.counts(states, None) for states in by_wave)


async def advance(ctx: Context, w: Write, c: Campaign) -> Campaign:
    """One step of a running campaign in the caller's transaction: release a wave, halt, finish, or
    nothing (soaking, or waiting for the wave to end)."""
    now = ctx.clock.now()
    states = await w.tx.campaign_members(c.id, c.wave)
    counts = dc.counts(states, c.resumed_at)
    action = dc.decide(
        c.status, c.wave, c.waves, counts, c.spec, c.failure_baseline, now, c.wave_label(c.wave)
    )
    if isinstance(action, dc.Release):
        if action.wave != c.wave:
            c = replace(c, wave=action.wave, failure_baseline=0, resumed_at=None)
            await w.tx.update_campaign(c)
            states = await w.tx.campaign_members(c.id, c.wave)
        await _release(ctx, w, c, states, action.why)
    elif isinstance(action, dc.Halt):
        c = replace(c, status=CampaignStatus.HALTED, halt_reason=action.reason)
        await w.tx.update_campaign(c)
        await w.emit(
            EventType.CAMPAIGN_HALTED,
            ctx,
            "",
            message=(
                f"Campaign {c.id} halted at {c.wave_label(c.wave)}: {action.reason}. Nothing more starts; "
                f"running maintenances finish. Resume with `kvmaint campaigns:resume {c.id}`."
            ),
            campaign_id=c.id,
            wave=str(c.wave),
            reason=action.reason,
        )
    elif isinstance(action, dc.Finish):
        c = replace(c, status=CampaignStatus.COMPLETED, ended_at=now)
        await w.tx.update_campaign(c)
        await w.emit(
            EventType.CAMPAIGN_COMPLETED,
            ctx,
            "",
            message=f"Campaign {c.id} completed: {action.why}",
            campaign_id=c.id,
        )
    return c


async def _release(ctx: Context, w: Write, c: Campaign, states: list[MemberState], why: str) -> None:
    """Files the wave's maintenances into their planned windows (re-planned from now only when a window
    has passed because the wave before ran late). An add-on that already has a maintenance of its own,
    or is gone, is skipped with a note."""
    now = ctx.clock.now()
    freezes = await w.tx.list_freezes(None, now)
    label = c.wave_label(c.wave)
    target = Target(c.spec.build, c.target_version, c.allow_downgrade)
    filed = skipped = 0
    for s in states:
        member = s.member
        if member.maintenance_id or member.note:
            continue
        addon = await w.tx.get_addon(member.addon)
        active = await w.tx.active_maintenance(member.addon) if addon else None
        note = (
            "the add-on no longer exists"
            if addon is None
            else f"it already had maintenance {active.id} ({active.status.value})"
            if active is not None
            else ""
        )
        if addon is None or note:
            await w.tx.set_campaign_member(c.id, member.addon, "", f"skipped: {note}")
            skipped += 1
            continue
        if dc.release_at(member.planned_at, member.window, now) and member.window == addon.window:
            slot = Slot(member.planned_at, f"campaign {c.id}, {label}: the window the campaign planned")
        else:
            found = dc.slot(addon.window, now, c.spec.required_by, freezes, addon.app)
            slot = Slot(found.at, f"campaign {c.id}, {label}: re-planned ({found.explanation})")
        m = await file_maintenance(
            ctx,
            w,
            addon,
            Reason(c.spec.reason),
            Method.FAILOVER,
            c.spec.required_by,
            target,
            slot=slot,
            why=f"campaign {c.id}, {label}",
        )
        await w.tx.set_campaign_member(c.id, member.addon, m.id, "")
        filed += 1
    await w.emit(
        EventType.CAMPAIGN_WAVE_RELEASED,
        ctx,
        "",
        message=f"Campaign {c.id}: {label} released ({why}): {filed} maintenance(s) filed"
        + (f", {skipped} skipped" if skipped else ""),
        campaign_id=c.id,
        wave=str(c.wave),
        filed=str(filed),
        skipped=str(skipped),
    )


async def advance_all(ctx: Context) -> int:
    """Steps every running campaign, each in its own transaction; returns how many changed state."""
    async with ctx.store.read() as tx:
        running = await tx.list_campaigns(CampaignStatus.RUNNING)
    changed = 0
    for c in running:
        async with ctx.write() as w:
            fresh = await w.tx.get_campaign(c.id)
            if fresh is None or fresh.status is not CampaignStatus.RUNNING:
                continue
            after = await advance(ctx, w, fresh)
            changed += int(after != fresh or bool(w.sequences))
    return changed

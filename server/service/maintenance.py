"""App owners' maintenance commands: info, window, schedule, run, history."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from kvmaint.clock import iso
from kvmaint.errors import ErrorReason, FailedPrecondition, InvalidArgument, Resource
from server.domain import lifecycle
from server.domain.health import Health, assess
from server.domain.models import Addon, EventType, HistoryEntry, Maintenance, Status
from server.domain.planning import Slot, avoid_freezes, delay_by_weeks, into_week_of, realign
from server.domain.plans import parse_plan, require_window_plan
from server.domain.windows import Window, parse_week, parse_window
from server.service import paging
from server.service.core import Context, Write, addon_resource, get_app, resolve_addon
from server.service.fleet import NoPlacement, Placement
from server.storage import Tx

NOT_IN_MAINTENANCE_MODE = (
    "Application is not in maintenance mode. To proceed, put the application into maintenance mode "
    "or re-run the command with --confirm {app}"
)
DEFAULT_HISTORY = 5
MAX_HISTORY = 20


class Runner(Protocol):
    """Executes started maintenances (the driver of agents)."""

    def kick(self, maintenance_id: str) -> None: ...


class NoRunner:
    def kick(self, maintenance_id: str) -> None:
        return None


@dataclass(frozen=True)
class WindowState:
    window: Window | None
    previous_window: Window | None
    scheduled_for: datetime | None
    previously_scheduled_for: datetime | None


@dataclass(frozen=True)
class AddonInfo:
    addon: Addon
    status: str
    required_by: datetime | None
    maintenance: Maintenance | None
    overdue: bool = False
    status_reason: str = ""


def health(placement: Placement, addon: Addon, in_maintenance: bool = False) -> Health:
    """The add-on's status from its agents' reports, read against the record (domain/health.py)."""
    return assess(addon, placement.observe, placement.endpoint, in_maintenance)


class MaintenanceService:
    def __init__(
        self, ctx: Context, runner: Runner | None = None, placement: Placement | None = None
    ) -> None:
        self.ctx = ctx
        self.runner: Runner = runner or NoRunner()
        self.placement: Placement = placement or NoPlacement()

    async def addon_info(self, app: str, ref: str) -> AddonInfo:
        async with self.ctx.store.read() as tx:
            addon = await resolve_addon(tx, app, ref)
            active = await tx.active_maintenance(addon.name)
        h = health(self.placement, addon, bool(active and active.status.in_progress))
        overdue = lifecycle.overdue(active, self.ctx.clock.now())
        required_by = active.required_by if active else None
        return AddonInfo(addon, h.status.value, required_by, active, overdue, h.reason)

    async def _refuse_unavailable(self, addon: Addon) -> None:
        """A maintenance does not start on an add-on whose primary is down: the failover needs it. A view
        that says so is refreshed once first (it may be a heartbeat older than the last failover)."""
        h = health(self.placement, addon)
        if h.unavailable:
            await self.placement.refresh({s.host for s in addon.servers})
            h = health(self.placement, addon)
        if h.unavailable:
            raise FailedPrecondition(
                f"{addon.name} is unavailable: {h.reason}. A maintenance does not start on an unavailable "
                "add-on; it stays pending and is tried again once the primary is back.",
                reason=ErrorReason.ADDON_UNAVAILABLE,
                resource=addon_resource(addon),
            )

    async def maintenance_info(self, app: str, ref: str) -> tuple[Addon, Maintenance | None]:
        """The active maintenance, else the most recent one."""
        async with self.ctx.store.read() as tx:
            addon = await resolve_addon(tx, app, ref)
            m = await tx.current_maintenance(addon.name)
        return addon, m

    async def get_window(self, app: str, ref: str) -> tuple[Addon, WindowState]:
        async with self.ctx.store.read() as tx:
            addon = await resolve_addon(tx, app, ref)
            m = await tx.active_maintenance(addon.name)
        return addon, self._state(addon, m)

    @staticmethod
    def _state(addon: Addon, m: Maintenance | None) -> WindowState:
        return WindowState(
            addon.window,
            addon.previous_window,
            m.scheduled_for if m else None,
            m.previously_scheduled_for if m else None,
        )

    async def update_window(self, app: str, ref: str, day: str, time: str) -> tuple[Addon, WindowState]:
        if len(day) > 40 or len(time) > 40:
            raise InvalidArgument.field("day" if len(day) > 40 else "time", "The value is too long.")
        window = parse_window(day, time)
        now = self.ctx.clock.now()
        async with self.ctx.write() as w:
            addon = await resolve_addon(w.tx, app, ref)
            require_window_plan(parse_plan(addon.plan), "set a maintenance window")
            addon = replace(addon, window=window, previous_window=addon.window)
            await w.tx.update_addon(addon)
            await w.emit(
                EventType.WINDOW_UPDATED,
                self.ctx,
                addon.app,
                addon.name,
                message=f"Maintenance window set to {window.describe()}",
                window=window.describe(),
                previous_window=addon.previous_window.describe() if addon.previous_window else "",
            )
            m = await w.tx.active_maintenance(addon.name)
            if m is not None and m.status is Status.PENDING and m.scheduled_for is not None:
                freezes = await w.tx.list_freezes(addon.app, now)
                slot = avoid_freezes(
                    realign(window, now, m.required_by, m.not_before),
                    window,
                    m.required_by,
                    freezes,
                    addon.app,
                    strict=False,
                )
                m = await self._reschedule(w, replace(m, window=window), slot)
        return addon, self._state(addon, m)

    async def _reschedule(self, w: Write, m: Maintenance, slot: Slot) -> Maintenance:
        return await reschedule(self.ctx, w, m, slot.at, slot.explanation)

    async def schedule(
        self, app: str, ref: str, weeks: int | None, week: str | None
    ) -> tuple[Maintenance, str]:
        day = parse_week(week) if week is not None else None
        now = self.ctx.clock.now()
        async with self.ctx.write() as w:
            addon = await resolve_addon(w.tx, app, ref)
            require_window_plan(parse_plan(addon.plan), "schedule maintenance")
            m = await w.tx.active_maintenance(addon.name)
            if m is None:
                raise FailedPrecondition(
                    f"No maintenance is required for {addon.name}.",
                    reason=ErrorReason.MAINTENANCE_NOT_REQUIRED,
                    resource=addon_resource(addon),
                )
            if m.status is not Status.PENDING or m.scheduled_for is None:
                raise FailedPrecondition(
                    f"The maintenance of {addon.name} is already {m.status.value}; it cannot be rescheduled.",
                    reason=ErrorReason.MAINTENANCE_ALREADY_STARTED,
                    resource=addon_resource(addon),
                    metadata={"status": m.status.value},
                )
            if day is not None:
                slot = into_week_of(addon.window, day, now, m.required_by)
            else:
                slot = delay_by_weeks(
                    addon.window, m.scheduled_for, 2 if weeks is None else weeks, now, m.required_by
                )
            freezes = await w.tx.list_freezes(addon.app, now)
            slot = avoid_freezes(slot, addon.window, m.required_by, freezes, addon.app, strict=True)
            m = await self._reschedule(w, replace(m, not_before=slot.not_before), slot)
        return m, slot.explanation

    async def run(self, app: str, ref: str, confirm: str) -> Maintenance:
        """Starts the pending maintenance now. Checked twice: once to refuse early (and, only for a
        request that would otherwise start, the add-on's health, which may wait for fresh reports), and
        again in the transaction that starts it."""
        async with self.ctx.store.read() as tx:
            addon, _ = await _runnable(tx, app, ref, confirm)
        await self._refuse_unavailable(addon)
        now = self.ctx.clock.now()
        async with self.ctx.write() as w:
            addon, m = await _runnable(w.tx, app, ref, confirm)
            m = await start_maintenance(self.ctx, w, m, now, "Started manually")
        self.runner.kick(m.id)
        return m

    async def history(self, app: str, ref: str, limit: int) -> list[Maintenance]:
        if limit < 0 or limit > MAX_HISTORY:
            raise InvalidArgument.field("limit", f"limit must be between 1 and {MAX_HISTORY} (got {limit}).")
        async with self.ctx.store.read() as tx:
            addon = await resolve_addon(tx, app, ref)
            return await tx.latest_maintenances(addon.name, limit or DEFAULT_HISTORY)

    async def list(self, app: str, size: int, token: str) -> tuple[list[Maintenance], str]:
        limit = paging.page_size(size)
        after = paging.decode("maintenances", token)
        async with self.ctx.store.read() as tx:
            await get_app(tx, app)
            items = await tx.list_maintenances(app, after, limit + 1)
        more = len(items) > limit
        items = items[:limit]
        last = items[-1] if items else None
        token_out = (
            paging.encode("maintenances", f"{last.created_at.isoformat(timespec='microseconds')}|{last.id}")
            if more and last
            else ""
        )
        return items, token_out

    async def get(self, maintenance_id: str) -> Maintenance | None:
        async with self.ctx.store.read() as tx:
            return await tx.get_maintenance(maintenance_id)


async def _runnable(tx: Tx, app: str, ref: str, confirm: str) -> tuple[Addon, Maintenance]:
    """The add-on and its pending maintenance, or the error that refuses `run`."""
    addon = await resolve_addon(tx, app, ref)
    owner = await get_app(tx, addon.app)
    require_window_plan(parse_plan(addon.plan), "run maintenance")
    if not owner.maintenance_mode and confirm != owner.name:
        if confirm:
            raise FailedPrecondition(
                f"Confirmation {confirm[:80]!r} does not match the app name {owner.name}. "
                + NOT_IN_MAINTENANCE_MODE.format(app=owner.name),
                reason=ErrorReason.APP_NOT_IN_MAINTENANCE_MODE,
                resource=Resource("App", owner.name),
            )
        raise FailedPrecondition(
            NOT_IN_MAINTENANCE_MODE.format(app=owner.name),
            reason=ErrorReason.APP_NOT_IN_MAINTENANCE_MODE,
            resource=Resource("App", owner.name),
        )
    m = await tx.active_maintenance(addon.name)
    if m is None:
        raise FailedPrecondition(
            f"No maintenance is required for {addon.name}.",
            reason=ErrorReason.MAINTENANCE_NOT_REQUIRED,
            resource=addon_resource(addon),
        )
    if m.status is not Status.PENDING:
        raise FailedPrecondition(
            f"The maintenance of {addon.name} is already {m.status.value}.",
            reason=ErrorReason.MAINTENANCE_ALREADY_STARTED,
            resource=addon_resource(addon),
            metadata={"status": m.status.value},
        )
    return addon, m


async def start_maintenance(ctx: Context, w: Write, m: Maintenance, now: datetime, why: str) -> Maintenance:
    """pending -> preparing, in the caller's transaction; the runner takes it from there."""
    m = lifecycle.start(m, now)
    await w.tx.update_maintenance(m)
    text = f"{why}: preparing"
    await w.tx.add_history(m.id, HistoryEntry(now, Status.PREPARING, "", text))
    await w.emit(EventType.MAINTENANCE_STARTED, ctx, m.app, m.addon, m.id, text, method=m.method.value)
    return m


async def reschedule(
    ctx: Context, w: Write, m: Maintenance, at: datetime, why: str, **extra: str
) -> Maintenance:
    """Moves a pending maintenance, in the caller's transaction: state, history and event together."""
    moved = replace(m, previously_scheduled_for=m.scheduled_for, scheduled_for=at)
    await w.tx.update_maintenance(moved)
    text = f"Rescheduled for {iso(at)}: {why}"
    await w.tx.add_history(m.id, HistoryEntry(ctx.clock.now(), m.status, "", text))
    await w.emit(
        EventType.MAINTENANCE_RESCHEDULED,
        ctx,
        m.app,
        m.addon,
        m.id,
        text,
        scheduled_for=iso(at),
        previously_scheduled_for=iso(m.scheduled_for),
        required_by=iso(m.required_by),
        window=m.window.describe() if m.window else "",
        **extra,
    )
    return moved

"""Freezes: an operator (fleet-wide or any app) or an app owner (their app) blocks starts for a while."""

from __future__ import annotations

from datetime import datetime

from kvmaint.clock import iso
from kvmaint.errors import ErrorReason, FailedPrecondition, InvalidArgument, NotFound, Resource
from server.domain.freezes import MAX_FREEZE, Freeze, blocking, next_allowed_start
from server.domain.models import EventType, Reason
from server.domain.windows import WINDOW
from server.service.core import Context, get_app
from server.service.maintenance import reschedule

MAX_REASON = 200


class FreezeService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def list(self, app: str) -> list[Freeze]:
        """An app's freezes and the fleet's (app ""), still in force."""
        async with self.ctx.store.read() as tx:
            if app:
                await get_app(tx, app)
            return await tx.list_freezes(app or None, self.ctx.clock.now())

    async def create(self, app: str, starts_at: datetime, ends_at: datetime, reason: str) -> Freeze:
        now = self.ctx.clock.now()
        if ends_at <= starts_at:
            raise InvalidArgument.field("ends_at", "The freeze must end after it starts (--to after --from).")
        if ends_at <= now:
            raise InvalidArgument.field("ends_at", f"The freeze would end in the past ({iso(ends_at)}).")
        if ends_at - max(starts_at, now) > MAX_FREEZE:
            raise InvalidArgument.field("ends_at", f"A freeze lasts at most {MAX_FREEZE.days} days.")
        if len(reason) > MAX_REASON:
            raise InvalidArgument.field("reason", f"The reason is longer than {MAX_REASON} characters.")
        freeze = Freeze(self.ctx.new_id()[:8], app, starts_at, ends_at, reason, now)
        async with self.ctx.write() as w:
            if app:
                await get_app(w.tx, app)
            existing = await w.tx.list_freezes(app or None, now)
            freezes = [*existing, freeze]
            moves = []
            for m in await w.tx.pending_maintenances(app or None):
                if m.reason is Reason.EMERGENCY or m.scheduled_for is None:
                    continue
                if blocking([freeze], m.app, m.scheduled_for, m.scheduled_for + WINDOW) is None:
                    continue
                at = next_allowed_start(m.window, max(now, m.scheduled_for), m.required_by, freezes, m.app)
                if at is None:
                    raise FailedPrecondition(
                        f"This freeze would push the maintenance of {m.addon} past its deadline: it is "
                        f"required by {iso(m.required_by)}. Freeze a shorter period, or run the maintenance "
                        "first.",
                        reason=ErrorReason.PAST_REQUIRED_BY,
                        resource=Resource("Addon", m.addon, f"apps/{m.app}"),
                        metadata={"requiredBy": iso(m.required_by)},
                    )
                moves.append((m, at))
            await w.tx.insert_freeze(freeze)
            scope = app or ""
            await w.emit(
                EventType.FREEZE_ADDED,
                self.ctx,
                scope,
                message=f"Added {freeze.describe()}",
                freeze=freeze.id,
                starts_at=iso(starts_at),
                ends_at=iso(ends_at),
            )
            for m, at in moves:
                await reschedule(self.ctx, w, m, at, f"moved past {freeze.describe()}")
        return freeze

    async def delete(self, app: str, freeze_id: str) -> None:
        now = self.ctx.clock.now()
        async with self.ctx.write() as w:
            found = [f for f in await w.tx.list_freezes(app or None, now) if f.id == freeze_id]
            if not found or found[0].app != app:
                raise NotFound(
                    f"Couldn't find freeze {freeze_id[:40]}" + (f" on app {app}." if app else "."),
                    reason=ErrorReason.FREEZE_NOT_FOUND,
                    resource=Resource("Freeze", freeze_id[:40], f"apps/{app}" if app else ""),
                )
            await w.tx.delete_freeze(freeze_id)
            await w.emit(
                EventType.FREEZE_REMOVED,
                self.ctx,
                app,
                message=f"Removed {found[0].describe()}",
                freeze=freeze_id,
            )

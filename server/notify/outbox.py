"""Writes notifications into the outbox inside the transaction of the event that causes them, and gives
the 24-hour reminders. What is in the outbox after a commit is delivered by `sender.py`; what a rolled
back transaction enqueued never existed."""

from __future__ import annotations

import logging

from kvmaint.clock import iso
from server.domain.models import Event, EventType
from server.notify import policy
from server.service.core import Context
from server.storage import Tx

log = logging.getLogger(__name__)


class Outbox:
    """The `Context.notify` hook. `email` is whether an SMTP server is configured: without one no email
    row is written (it could never leave), while webhooks are always enqueued."""

    def __init__(self, email: bool, operator_email: str = "") -> None:
        self.email = email
        self.operator_email = operator_email

    async def __call__(self, tx: Tx, event: Event) -> None:
        if event.type in policy.OPERATOR_NOTIFYING:
            item = policy.operator_email(event, self.operator_email) if self.email else None
            if item is not None:
                await tx.enqueue(item)
            return
        if event.type not in policy.NOTIFYING:
            return
        try:
            m = await tx.get_maintenance(event.maintenance_id) if event.maintenance_id else None
            if m is not None and m.scheduled_for is not None and policy.covers_reminder(event, m):
                await tx.mark_reminded(m.id, m.scheduled_for)
            app = await tx.get_app(event.app)
            addon = await tx.get_addon(event.addon) if event.addon else None
            notice = policy.notice(event, app, addon, m)
            if notice is None:
                return
            hooks = await tx.list_webhooks(event.app)
            for item in policy.deliveries(notice, app, hooks, self.email, event.time):
                await tx.enqueue(item)
        except Exception:
            # A notification must never undo the maintenance step that caused it: log, and let the
            # step's transaction commit without it.
            log.exception("could not enqueue the notifications of event %d (%s)", event.sequence, event.type)


async def remind(ctx: Context) -> list[str]:
    """Emits `maintenance_reminder` for each pending maintenance starting within 24 hours, once per
    (maintenance, scheduled_for); the event's own hook enqueues the emails and webhooks. Returns the
    maintenance ids reminded of."""
    now = ctx.clock.now()
    reminded: list[str] = []
    async with ctx.write() as w:
        for m in await w.tx.starting_between(now, now + policy.REMIND_BEFORE):
            if m.scheduled_for is None or not policy.reminder_due(m, now):
                continue
            if not await w.tx.mark_reminded(m.id, m.scheduled_for):
                continue
            hours = max(1, round((m.scheduled_for - now).total_seconds() / 3600))
            await w.emit(
                EventType.MAINTENANCE_REMINDER,
                ctx,
                m.app,
                m.addon,
                m.id,
                f"Maintenance starts in about {hours} hours, at {iso(m.scheduled_for)}",
                scheduled_for=iso(m.scheduled_for),
                required_by=iso(m.required_by),
                window=m.window.describe() if m.window else "",
            )
            reminded.append(m.id)
    return reminded

"""Writes notifications into the outbox inside the transaction of the event that causes them, and gives
the 24-hour reminders. What is in the outbox after a commit is delivered by `sender.py`; what a rolled
back transaction enqueued never existed."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from kvmaint.clock import iso
from server.domain.models import App, Event, EventType, Maintenance, Status
from server.notify import policy
from server.notify.models import OutboxItem, ReminderDue, Webhook
from server.service import pacing
from server.service.core import Context, Subject, Write, event_for
from server.storage import Tx

log = logging.getLogger(__name__)


class Outbox:
    """The `Context.notify` hook. `email` is whether an SMTP server is configured: without one no email
    row is written (it could never leave), while webhooks are always enqueued."""

    def __init__(self, email: bool, operator_email: str = "") -> None:
        self.email = email
        self.operator_email = operator_email
        # Sequence numbers of written events that may have moved a reminder (`ReminderPass`), committed
        # or not yet: the pass takes those the bus says committed.
        self.schedule_changes: list[int] = []

    async def __call__(self, tx: Tx, event: Event, subject: Subject | None = None) -> None:
        await self.all(tx, [(event, subject)])

    async def all(self, tx: Tx, events: list[tuple[Event, Subject | None]]) -> None:
        """The hook for events written together (`Write.emit_all`), in order: their notifications are
        enqueued in one statement (a fleet-wide filing's batch, one round trip, not one per row)."""
        items: list[OutboxItem] = []
        for event, subject in events:
            items += await self._items(tx, event, subject)
        if items:
            await tx.enqueue_all(items)

    async def _items(self, tx: Tx, event: Event, subject: Subject | None) -> list[OutboxItem]:
        if event.type in SCHEDULE_EVENTS:
            # Bounded where no pass takes them (a process that sends nothing): the oldest go, and
            # 0 stands for "some, long committed".
            if len(self.schedule_changes) >= 1024:
                self.schedule_changes = [0, *self.schedule_changes[-512:]]
            self.schedule_changes.append(event.sequence)
        if event.type in policy.OPERATOR_NOTIFYING:
            item = policy.operator_email(event, self.operator_email) if self.email else None
            return [item] if item is not None else []
        if event.type not in policy.NOTIFYING:
            return []
        try:
            about = subject.maintenance.id if subject is not None else None
            known = subject if about is not None and about == event.maintenance_id else None
            m = known.maintenance if known is not None else None
            if m is None and event.maintenance_id:
                m = await tx.get_maintenance(event.maintenance_id)
            if m is not None and m.scheduled_for is not None and policy.covers_reminder(event, m):
                await tx.mark_reminded(m.id, m.scheduled_for)
            app = known.app if known is not None and known.app is not None else await tx.get_app(event.app)
            addon = known.addon if known is not None and known.addon is not None else None
            if addon is None and event.addon:
                addon = await tx.get_addon(event.addon)
            notice = policy.notice(event, app, addon, m)
            if notice is None:
                return []
            hooks = known.webhooks if known is not None and known.webhooks is not None else None
            if hooks is None:
                hooks = await tx.list_webhooks(event.app)
            return list(policy.deliveries(notice, app, hooks, self.email, event.time))
        except Exception:
            # A notification must never undo the maintenance step that caused it: log, and let the
            # step's transaction commit without it.
            log.exception("could not enqueue the notifications of event %d (%s)", event.sequence, event.type)
            return []


# Events written with a maintenance's schedule (or its pending state) changing: a reminder may have
# been set or moved earlier than the one the reminder pass remembers.
SCHEDULE_EVENTS = frozenset(
    {
        EventType.MAINTENANCE_REQUIRED,
        EventType.MAINTENANCE_SCHEDULED,
        EventType.MAINTENANCE_RESCHEDULED,
        EventType.WINDOW_UPDATED,
        EventType.MAINTENANCE_FAILED,
        EventType.CAMPAIGN_WAVE_RELEASED,
        EventType.CAMPAIGN_RESUMED,
    }
)


async def remind(ctx: Context) -> list[str]:
    """Emits `maintenance_reminder` for each pending maintenance starting within 24 hours, once per
    (maintenance, scheduled_for); the event's own hook enqueues the emails and webhooks. Returns the
    maintenance ids reminded of.

    Reads only the reminders due (the remind_at index, migration 11), first beside the writer: the write
    lock is taken only when there is one to give. A maintenance whose start came before its reminder
    was given (it was scheduled late, or the scheduler was down) gets none: its reminder is dropped."""
    now = ctx.clock.now()
    async with ctx.store.read() as tx:
        due = await tx.reminders_due(now)
    reminded: list[str] = []
    # In transactions that hold the loop about pacing.STEP_SECONDS (and the lock HOLD_SECONDS) at most, each
    # followed by a rest as long (`pacing`): a burst (a fleet-wide filing puts thousands within 24 hours
    # at once) must not hold them for its whole length (2,000 took 22 s on PostgreSQL at 100k under API
    # load, every other write waiting; one 0.8 s transaction on SQLite left an API call waiting 459 ms).
    # Each reminder stands alone (mark_reminded gives it once), so a crash between them loses none.
    pending = list(due)

    async def step_of(step: pacing.Step) -> None:
        nonlocal pending
        async with ctx.write() as w:
            while True:  # one chunk at least, however long taking the lock took
                chunk, pending = pending[:REMIND_CHUNK], pending[REMIND_CHUNK:]
                await _remind_chunk(ctx, w, chunk, now, reminded)
                if not pending or pacing.over(ctx.clock, step):
                    break

    while pending:
        step = pacing.begin(ctx.clock)
        await pacing.run(ctx.clock, step, step_of(step))
        if pending:
            await pacing.rest(ctx.clock, step)
    return reminded


async def _remind_chunk(
    ctx: Context, w: Write, chunk: list[ReminderDue], now: datetime, out: list[str]
) -> None:
    # Again, under the lock: the decision's input. A pending maintenance is its add-on's latest, so one
    # query reads the chunk again (by id only when the add-on has a newer one).
    latest = await w.tx.latest_of(sorted({m.addon for m in chunk}))
    # What each reminder's notifications need, read once for the chunk (a burst is thousands, and each
    # read is a round trip on PostgreSQL): the add-ons in one query, each app and its webhooks once.
    addons = {a.name: a for a in await w.tx.addons_named(sorted({m.addon for m in chunk}))}
    apps: dict[str, tuple[App | None, list[Webhook]]] = {}
    dropped: list[str] = []  # written together at the end (a burst's late ones are thousands)
    due: list[tuple[Maintenance, datetime]] = []  # with its scheduled_for
    for seen in chunk:
        m = latest.get(seen.addon)
        if m is None or m.id != seen.id:
            m = await w.tx.get_maintenance(seen.id)
        if m is None:
            continue
        if m.status is not Status.PENDING or m.scheduled_for is None or m.scheduled_for <= now:
            dropped.append(m.id)
        elif policy.reminder_due(m, now):  # (remind_at is kept to the millisecond: due in under one)
            due.append((m, m.scheduled_for))
    # Given once per (maintenance, scheduled_for), the chunk in one statement, then its events in one
    # or two: on PostgreSQL each reminder was four round trips, each waiting a loop turn behind the API
    # (2,000 at 100k did not end within the bench's 11 s window).
    given = await w.tx.mark_reminded_all([(m.id, at) for m, at in due])
    events: list[tuple[Event, Subject | None]] = []
    for m, at in due:
        if m.id not in given:
            dropped.append(m.id)  # given already
            continue
        hours = max(1, round((at - now).total_seconds() / 3600))
        if m.app not in apps:
            apps[m.app] = (await w.tx.get_app(m.app), await w.tx.list_webhooks(m.app))
        app, hooks = apps[m.app]
        events.append(
            event_for(
                ctx,
                Subject(m, app, addons.get(m.addon), hooks),
                EventType.MAINTENANCE_REMINDER,
                f"Maintenance starts in about {hours} hours, at {iso(at)}",
                scheduled_for=iso(at),
                required_by=iso(m.required_by),
                window=m.window.describe() if m.window else "",
            )
        )
        out.append(m.id)
    if events:
        await w.emit_all(ctx, events)
    if dropped:
        await w.tx.drop_reminders(dropped)


# How many reminders the pass reads again at a time (under the lock), and gives in one statement.
REMIND_CHUNK = 25


class ReminderPass:
    """The reminder pass of the sender's loop, which runs every few seconds and after every commit: it
    remembers when the next reminder falls due (`next_reminder`, one index probe) and reads again only
    when that time comes, when an event that may move a schedule has committed since (`Outbox`), or
    after `recheck` at the latest (a write this process did not see: another scheduler's)."""

    def __init__(self, ctx: Context, recheck: timedelta = timedelta(minutes=5)) -> None:
        self.ctx = ctx
        self.recheck = recheck
        self.next_at: datetime | None = None

    def _changed(self) -> bool:
        outbox = self.ctx.notify
        if not isinstance(outbox, Outbox):
            return True  # nothing tells this pass of new schedules: it looks every time
        committed = self.ctx.bus.last_sequence
        fresh = [seq for seq in outbox.schedule_changes if seq <= committed]
        if fresh:
            outbox.schedule_changes = [seq for seq in outbox.schedule_changes if seq > committed]
        return bool(fresh)

    async def __call__(self) -> list[str] | None:
        """The reminders given, or None when the pass had no reason to read."""
        now = self.ctx.clock.now()
        changed = self._changed()  # before the read: what commits during it is looked at next time
        if not changed and self.next_at is not None and now < self.next_at:
            return None
        reminded = await remind(self.ctx)
        async with self.ctx.store.read() as tx:
            at = await tx.next_reminder()
        self.next_at = min(at, now + self.recheck) if at is not None else now + self.recheck
        return reminded

"""Which events notify the app owner, what the notice says, and who gets it. Pure: tested with tables.

One notice per event; each becomes one outbox row per destination (the owner's email, each webhook),
with a dedupe key naming the fact it reports, so re-enqueueing the same fact writes nothing:

| event                     | fact (dedupe key part)               | says                                |
| ------------------------- | ------------------------------------ | ----------------------------------- |
| maintenance_scheduled     | MID:maintenance_scheduled            | when, window, deadline, commands    |
| maintenance_rescheduled   | MID:maintenance_rescheduled:SEQ      | from when to when, why, commands    |
| maintenance_reminder      | MID:maintenance_reminder:SCHEDULED   | starts within 24 hours, commands    |
| maintenance_started       | MID:maintenance_started              | started, how to follow it           |
| maintenance_completed     | MID:maintenance_completed            | completed, duration, write pause    |
| maintenance_failed        | MID:maintenance_failed[:ATTEMPTS]    | failed, why, primary left unchanged,|
|                           |                                      | pending again for when (or operator)|

A reschedule is a new fact each time (the event's sequence), so moving A -> B -> A tells all three.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kvmaint.clock import iso
from kvmaint.errors import KvmaintError
from server.domain.models import Addon, App, Event, EventType, Maintenance, Method, Status
from server.domain.plans import parse_plan
from server.domain.windows import Window
from server.notify.models import Channel, OutboxItem, Webhook

NOTIFYING = (
    EventType.MAINTENANCE_SCHEDULED,
    EventType.MAINTENANCE_RESCHEDULED,
    EventType.MAINTENANCE_REMINDER,
    EventType.MAINTENANCE_STARTED,
    EventType.MAINTENANCE_COMPLETED,
    EventType.MAINTENANCE_FAILED,
    EventType.CONFIG_VAR_CHANGED,
)
REMIND_BEFORE = timedelta(hours=24)
# Webhook payload shape; a receiver can branch on it if it ever changes.
PAYLOAD_VERSION = 1


@dataclass(frozen=True)
class Notice:
    """What one event tells an app owner: the email's subject and text, the webhook's JSON."""

    fact: str
    subject: str
    text: str
    payload: dict[str, Any]
    email: bool = True  # False: webhooks only


def commands(addon: str, app: str) -> dict[str, str]:
    """The exact commands an owner can run on a pending maintenance."""
    return {
        "schedule": f"kvmaint data:maintenances:schedule {addon} -a {app} --weeks 1",
        "run": f"kvmaint data:maintenances:run {addon} -a {app} --confirm {app}",
        "window_update": f"kvmaint data:maintenances:window:update {addon} DAY TIME -a {app}",
    }


def _when(dt: datetime | None) -> str:
    """ISO as the CLI prints it, plus the weekday and clock time a person reads."""
    if dt is None:
        return "(not scheduled)"
    return f"{iso(dt)} ({dt.strftime('%A %d %B %Y, %H:%M UTC')})"


def _has_window(addon: Addon | None) -> bool:
    if addon is None:
        return False
    try:
        return parse_plan(addon.plan).has_window
    except KvmaintError:
        return False


def _fact(event: Event, m: Maintenance) -> str:
    if event.type is EventType.MAINTENANCE_RESCHEDULED:
        return f"{m.id}:{event.type.value}:{event.sequence}"
    if event.type is EventType.MAINTENANCE_REMINDER:
        return f"{m.id}:{event.type.value}:{iso(m.scheduled_for)}"
    if event.type is EventType.MAINTENANCE_FAILED and m.attempts > 0:  # each failed attempt is told
        return f"{m.id}:{event.type.value}:{m.attempts}"
    return f"{m.id}:{event.type.value}"


def _maintenance_payload(m: Maintenance, window: Window | None) -> dict[str, Any]:
    return {
        "id": m.id,
        "status": m.status.value,
        "reason": m.reason.value,
        "method": m.method.value,
        "window": window.describe() if window is not None else "",
        "scheduled_for": iso(m.scheduled_for),
        "previously_scheduled_for": iso(m.previously_scheduled_for),
        "required_by": iso(m.required_by),
        "started_at": iso(m.started_at),
        "completed_at": iso(m.completed_at),
        "failure_reason": m.failure_reason,
        "attempts": m.attempts,
        "last_failure_reason": m.last_failure_reason,
        "needs_operator": m.needs_operator,
    }


def _envelope(event: Event, app: str, addon: str, subject: str) -> dict[str, Any]:
    """What every webhook payload starts with."""
    return {
        "version": PAYLOAD_VERSION,
        "type": event.type.value,
        "sequence": event.sequence,
        "time": iso(event.time),
        "app": app,
        "addon": addon,
        "subject": subject,
        "message": event.message,
        "attributes": dict(sorted(event.attributes.items())),
    }


def config_notice(event: Event, m: Maintenance | None) -> Notice:
    """A config var's new value, for webhooks: `config_var` names it; `maintenance` is the one whose
    repoint changed it (null when an add-on was created)."""
    name, value = event.attributes.get("key", ""), event.attributes.get("value", "")
    subject = f"Config var {name} of {event.app} changed"
    payload: dict[str, Any] = {
        **_envelope(event, event.app, event.addon, subject),
        "config_var": {"name": name, "value": value},
        "maintenance": _maintenance_payload(m, m.window) if m is not None else None,
        "commands": {},
    }
    text = f"{subject}: {event.message.rstrip('.')}.\n"
    return Notice(f"{event.app}:{event.type.value}:{event.sequence}", subject, text, payload, email=False)


def notice(event: Event, app: App | None, addon: Addon | None, m: Maintenance | None) -> Notice | None:
    """The notice of `event`, or None when the event notifies nobody. `m` and `addon` are as the event's
    own transaction left them."""
    if event.type is EventType.CONFIG_VAR_CHANGED:
        return config_notice(event, m)
    if event.type not in NOTIFYING or m is None:
        return None
    name = m.addon
    attached = f" ({', '.join(addon.attachments)})" if addon and addon.attachments else ""
    window = addon.window if addon is not None and addon.window is not None else m.window
    window_text = window.describe() if window is not None else "none (mini plans have no window)"
    retried = event.type is EventType.MAINTENANCE_FAILED and m.status is Status.PENDING
    pending = retried or event.type in (
        EventType.MAINTENANCE_SCHEDULED,
        EventType.MAINTENANCE_RESCHEDULED,
        EventType.MAINTENANCE_REMINDER,
    )
    short = m.scheduled_for.strftime("%a %Y-%m-%d %H:%M UTC") if m.scheduled_for else ""
    where = f"{name} on {m.app}"

    if event.type is EventType.MAINTENANCE_SCHEDULED:
        subject = f"Maintenance scheduled for {where}: {short}"
        lead = (
            f"Maintenance is required on your Redis add-on {name}{attached} of app {m.app}, "
            f"and it is scheduled for {_when(m.scheduled_for)}."
        )
    elif event.type is EventType.MAINTENANCE_RESCHEDULED:
        subject = f"Maintenance rescheduled for {where}: {short}"
        lead = (
            f"The maintenance of your Redis add-on {name}{attached} of app {m.app} moved from "
            f"{_when(m.previously_scheduled_for)} to {_when(m.scheduled_for)}."
        )
    elif event.type is EventType.MAINTENANCE_REMINDER:
        hours = max(1, round(((m.scheduled_for or event.time) - event.time).total_seconds() / 3600))
        subject = f"Reminder: maintenance of {where} starts in about {hours} hours ({short})"
        lead = (
            f"The maintenance of your Redis add-on {name}{attached} of app {m.app} starts in about "
            f"{hours} hours, at {_when(m.scheduled_for)}."
        )
    elif event.type is EventType.MAINTENANCE_STARTED:
        subject = f"Maintenance of {where} started"
        lead = (
            f"The maintenance of your Redis add-on {name}{attached} of app {m.app} started at "
            f"{_when(m.started_at or event.time)}."
        )
    elif event.type is EventType.MAINTENANCE_COMPLETED:
        subject = f"Maintenance of {where} completed"
        lead = (
            f"The maintenance of your Redis add-on {name}{attached} of app {m.app} completed at "
            f"{_when(m.completed_at or event.time)}."
        )
    elif retried:
        then = "waits for an operator" if m.needs_operator else f"is pending again for {short}"
        subject = f"Maintenance of {where} failed (attempt {m.attempts}); it {then}"
        lead = (
            f"An attempt at the maintenance of your Redis add-on {name}{attached} of app {m.app} failed "
            f"at {_when(event.time)}. It is still required by {_when(m.required_by)}."
        )
    else:
        subject = f"Maintenance of {where} failed"
        lead = (
            f"The maintenance of your Redis add-on {name}{attached} of app {m.app} failed at "
            f"{_when(m.completed_at or event.time)}."
        )

    facts = [
        ("add-on", f"{name}{f' ({addon.plan})' if addon else ''}"),
        ("app", m.app),
        ("window", window_text),
        ("scheduled_for", iso(m.scheduled_for)),
        ("required_by", iso(m.required_by)),
        ("reason", m.reason.value),
        ("method", m.method.value),
        ("status", m.status.value),
    ]
    if m.previously_scheduled_for is not None and event.type is EventType.MAINTENANCE_RESCHEDULED:
        facts.insert(4, ("previously_scheduled_for", iso(m.previously_scheduled_for)))
    if m.started_at is not None:
        facts.append(("started_at", iso(m.started_at)))
    if m.completed_at is not None:
        facts.append(("completed_at", iso(m.completed_at)))
        facts.append(("duration_seconds", str(m.duration_seconds)))
    if m.failure_reason:
        facts.append(("failure_reason", m.failure_reason))
    if m.attempts:
        facts.append(("attempts", str(m.attempts)))
        facts.append(("last_failure_reason", m.last_failure_reason))
    if m.needs_operator:
        facts.append(("needs_operator", "true"))
    facts.append(("maintenance_id", m.id))
    width = max(len(k) for k, _ in facts) + 2

    lines = ["Hello,", "", lead]
    if event.message:
        lines += ["", f"{event.message.rstrip('.')}."]
    lines += ["", *(f"  {k + ':':<{width}}{v}" for k, v in facts), ""]
    cmds = commands(name, m.app) if pending and _has_window(addon) else {}
    if cmds:
        how = (
            "the add-on fails over to a caught-up standby, and your app's config var then names the new "
            "primary"
            if m.method is Method.FAILOVER
            else "the server restarts in place, and the add-on is unavailable while it does"
        )
        starts = (
            "It no longer starts automatically after repeated failures: an operator looks into it"
            if m.needs_operator
            else f"It starts automatically at scheduled_for: {how}"
        )
        lines += [
            f"{starts}.",
            "",
            "To postpone it by a week:",
            f"  {cmds['schedule']}",
            "To run it now, without maintenance mode (the app's name confirms it):",
            f"  {cmds['run']}",
            "To move the maintenance window (DAY is Monday to Sunday, TIME the start in UTC, e.g. 14:30):",
            f"  {cmds['window_update']}",
        ]
    elif pending:
        lines += [
            (
                "An operator looks into it after repeated failures. "
                if m.needs_operator
                else "It starts automatically at scheduled_for. "
            )
            + "Mini plans have no maintenance window: it cannot be rescheduled or run by hand.",
        ]
    elif event.type is EventType.MAINTENANCE_STARTED:
        lines += ["To follow it:", f"  kvmaint data:maintenances:wait {name} -a {m.app}"]
    if event.type in (EventType.MAINTENANCE_COMPLETED, EventType.MAINTENANCE_FAILED):
        details = ["Details:", f"  kvmaint data:maintenances:info {name} -a {m.app}"]
        lines += ["", *details] if retried else details
    lines += ["", "-- ", "kvmaint, planned maintenance for your Redis add-ons"]

    payload: dict[str, Any] = {
        **_envelope(event, m.app, name, subject),
        "maintenance": _maintenance_payload(m, window),
        "commands": cmds,
    }
    return Notice(_fact(event, m), subject, "\n".join(lines) + "\n", payload)


# Events that mail the operators (`--operator-email`), not an app owner.
OPERATOR_NOTIFYING = (EventType.CAMPAIGN_HALTED,)


def operator_email(event: Event, recipient: str) -> OutboxItem | None:
    """The operators' email about a fleet event (a campaign that halted itself), one per event."""
    if event.type not in OPERATOR_NOTIFYING or not recipient:
        return None
    campaign = event.attributes.get("campaign_id", "")
    subject = f"Campaign {campaign} halted: {event.attributes.get('reason', '')}"
    text = (
        f"{event.message}\n\n"
        f"See it with `kvmaint campaigns:info {campaign}`; once the cause is repaired, "
        f"`kvmaint campaigns:resume {campaign}`, or stop it with `kvmaint campaigns:cancel {campaign}`.\n"
    )
    return OutboxItem(
        Channel.EMAIL,
        f"email:operator:{event.type.value}:{event.sequence}",
        "",
        recipient,
        subject,
        text,
        created_at=event.time,
        next_attempt_at=event.time,
    )


def deliveries(
    n: Notice, app: App | None, webhooks: list[Webhook], email: bool, now: datetime
) -> list[OutboxItem]:
    """One outbox row per destination: the owner's email (when email is configured and the app has an
    owner email), then each webhook. All due at once."""
    out: list[OutboxItem] = []
    app_name = str(n.payload["app"])
    if n.email and email and app is not None and app.owner_email:
        out.append(
            OutboxItem(
                Channel.EMAIL,
                f"email:{n.fact}",
                app_name,
                app.owner_email,
                n.subject,
                n.text,
                created_at=now,
                next_attempt_at=now,
            )
        )
    body = json.dumps(n.payload, sort_keys=True, separators=(",", ":"))
    for hook in webhooks:
        out.append(
            OutboxItem(
                Channel.WEBHOOK,
                f"webhook:{hook.id}:{n.fact}",
                app_name,
                hook.url,
                n.subject,
                body,
                created_at=now,
                next_attempt_at=now,
                webhook_id=hook.id,
            )
        )
    return out


def reminder_due(m: Maintenance, now: datetime) -> bool:
    """A pending maintenance that starts within 24 hours and has not started yet."""
    return (
        m.status is Status.PENDING
        and m.scheduled_for is not None
        and now < m.scheduled_for <= now + REMIND_BEFORE
    )


def covers_reminder(event: Event, m: Maintenance | None) -> bool:
    """A (re)scheduling notice sent within 24 hours of the start already is the reminder."""
    return (
        event.type in (EventType.MAINTENANCE_SCHEDULED, EventType.MAINTENANCE_RESCHEDULED)
        and m is not None
        and m.scheduled_for is not None
        and m.scheduled_for - event.time <= REMIND_BEFORE
    )

"""Rows to domain objects and back, and the SQL fragments several concerns share."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kvmaint.clock import utc
from server.domain.campaigns import Campaign, CampaignStatus, Spec
from server.domain.models import (
    Addon,
    App,
    Maintenance,
    Role,
    ServerRef,
)
from server.domain.windows import Window
from server.notify.models import Channel, OutboxItem, Webhook

if TYPE_CHECKING:
    from server.storage.sqlite.base import Conn

log = logging.getLogger(__name__)


def _remind_ts(dt: datetime) -> str:
    """A time as migration 11 writes remind_at (UTC, milliseconds, no offset), so text compares."""
    u = utc(dt)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}"


async def _index_servers(db: Conn, addon: Addon) -> None:
    await db.execute("DELETE FROM addon_servers WHERE addon = ?", (addon.name,))
    await db.executemany(
        "INSERT INTO addon_servers (host, port, addon) VALUES (?, ?, ?)",
        [(ref.host, ref.port, addon.name) for ref in addon.servers],
    )


# Recomputes an add-on's `maintained_at` from its completed maintenances (few per add-on: indexed).
# Through the add-on's maintenances (INDEXED BY): left to itself, SQLite's planner walked every completed
# maintenance by status instead (100,000 rows at 100k add-ons: 50 ms a CreateAddon, all in the loop).
_MAINTAINED = (
    "UPDATE addons SET maintained_at = COALESCE((SELECT MAX(m.completed_at) FROM maintenances AS m "
    "INDEXED BY maintenances_addon WHERE m.addon = addons.name AND m.status = 'completed'), created_at) "
    "WHERE name = ?"
)


def _ts(dt: datetime | None) -> str | None:
    return utc(dt).isoformat(timespec="microseconds") if dt else None


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _window(day: int | None, minute: int | None) -> Window | None:
    return Window(day, minute) if day is not None and minute is not None else None


def _servers_json(servers: tuple[ServerRef, ...]) -> str:
    return json.dumps([{"host": s.host, "port": s.port, "role": s.role.value} for s in servers])


def _servers(text: str) -> tuple[ServerRef, ...]:
    return tuple(ServerRef(s["host"], int(s["port"]), Role(s["role"])) for s in json.loads(text))


def _app(row: sqlite3.Row) -> App:
    return App(row["name"], row["owner_email"], bool(row["maintenance_mode"]), _req(row["created_at"]))


def _req(text: str) -> datetime:
    dt = _dt(text)
    assert dt is not None
    return dt


def _addon(row: sqlite3.Row) -> Addon:
    return Addon(
        name=row["name"],
        app=row["app"],
        plan=row["plan"],
        kind=row["kind"],
        description=row["description"],
        attachments=tuple(json.loads(row["attachments"])),
        created_at=_req(row["created_at"]),
        servers=_servers(row["servers"]),
        window=_window(row["window_day"], row["window_minute"]),
        previous_window=_window(row["prev_window_day"], row["prev_window_minute"]),
    )


def _webhook(row: sqlite3.Row) -> Webhook:
    return Webhook(row["id"], row["app"], row["url"], row["secret"], _req(row["created_at"]))


def _outbox(row: sqlite3.Row) -> OutboxItem:
    return OutboxItem(
        kind=Channel(row["kind"]),
        dedupe_key=row["dedupe_key"],
        app=row["app"],
        recipient=row["recipient"],
        subject=row["subject"],
        body=row["body"],
        created_at=_req(row["created_at"]),
        next_attempt_at=_req(row["next_attempt_at"]),
        webhook_id=row["webhook_id"],
        id=row["id"],
        attempts=row["attempts"],
        sent_at=_dt(row["sent_at"]),
        dropped_at=_dt(row["dropped_at"]),
        last_error=row["last_error"],
    )


_MAINT_COLS = (
    "id, addon, app, reason, method, status, required_by, created_at, scheduled_for, "
    "previously_scheduled_for, started_at, completed_at, window_day, window_minute, current_step, "
    "failure_reason, write_pause_ms, state, attempts, last_failure_reason, needs_operator, "
    "target_build, target_version, allow_downgrade, redirect_ms, not_before"
)


def _maint_params(m: Maintenance) -> tuple[Any, ...]:
    return (
        m.id,
        m.addon,
        m.app,
        m.reason.value,
        m.method.value,
        m.status.value,
        _ts(m.required_by),
        _ts(m.created_at),
        _ts(m.scheduled_for),
        _ts(m.previously_scheduled_for),
        _ts(m.started_at),
        _ts(m.completed_at),
        m.window.day if m.window else None,
        m.window.start_minute if m.window else None,
        m.current_step,
        m.failure_reason,
        m.write_pause_ms,
        json.dumps(m.state.to_json(), sort_keys=True),
        m.attempts,
        m.last_failure_reason,
        int(m.needs_operator),
        m.target_build,
        m.target_version,
        int(m.allow_downgrade),
        m.redirect_ms,
        _ts(m.not_before),
    )


_CAMPAIGN_COLS = (
    "id, build, target_version, allow_downgrade, reason, required_by, target, canary, waves, soak_seconds, "
    "halt_on_failures, halt_on_pause_ms, status, wave, wave_count, has_canary, halt_reason, "
    "failure_baseline, resumed_at, ended_at, created_at"
)


_CAMPAIGN_N = len(_CAMPAIGN_COLS.split(","))


def _campaign_params(c: Campaign) -> tuple[Any, ...]:
    s = c.spec
    return (
        c.id,
        s.build,
        c.target_version,
        int(c.allow_downgrade),
        s.reason,
        _ts(s.required_by),
        c.target,
        s.canary,
        json.dumps(list(s.waves)),
        s.soak.total_seconds(),
        s.halt_on_failures,
        s.halt_on_pause_ms,
        c.status.value,
        c.wave,
        c.waves,
        int(c.has_canary),
        c.halt_reason,
        c.failure_baseline,
        _ts(c.resumed_at),
        _ts(c.ended_at),
        _ts(c.created_at),
    )


def _campaign(r: sqlite3.Row) -> Campaign:
    spec = Spec(
        build=r["build"],
        reason=r["reason"],
        required_by=_req(r["required_by"]),
        canary=r["canary"],
        waves=tuple(json.loads(r["waves"])),
        soak=timedelta(seconds=r["soak_seconds"]),
        halt_on_failures=r["halt_on_failures"],
        halt_on_pause_ms=r["halt_on_pause_ms"],
    )
    return Campaign(
        id=r["id"],
        spec=spec,
        target=r["target"],
        target_version=r["target_version"],
        allow_downgrade=bool(r["allow_downgrade"]),
        status=CampaignStatus(r["status"]),
        wave=r["wave"],
        waves=r["wave_count"],
        created_at=_req(r["created_at"]),
        has_canary=bool(r["has_canary"]),
        halt_reason=r["halt_reason"],
        failure_baseline=r["failure_baseline"],
        resumed_at=_dt(r["resumed_at"]),
        ended_at=_dt(r["ended_at"]),
    )

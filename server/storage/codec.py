"""Rows to domain objects and back, once for both stores: the columns are the same, and what differs
is how a store writes a time and a flag and what it reads back (SQLite: ISO text and 0/1; PostgreSQL:
timestamptz and boolean, which asyncpg gives as datetimes and bools). Each store's `rows` module makes
its `Codec` and names its pieces as before."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from server.domain.campaigns import Campaign, CampaignStatus, Spec
from server.domain.models import Addon, App, Maintenance, Role, ServerRef
from server.domain.windows import Window
from server.notify.models import Channel, OutboxItem, Webhook

MAINT_COLS = (
    "id, addon, app, reason, method, status, required_by, created_at, scheduled_for, "
    "previously_scheduled_for, started_at, completed_at, window_day, window_minute, current_step, "
    "failure_reason, write_pause_ms, state, attempts, last_failure_reason, needs_operator, "
    "target_build, target_version, allow_downgrade, redirect_ms, not_before"
)
MAINT_NAMES = [c.strip() for c in MAINT_COLS.split(",")]

CAMPAIGN_COLS = (
    "id, build, target_version, allow_downgrade, reason, required_by, target, canary, waves, soak_seconds, "
    "halt_on_failures, halt_on_pause_ms, status, wave, wave_count, has_canary, halt_reason, "
    "failure_baseline, resumed_at, ended_at, created_at"
)
CAMPAIGN_N = len(CAMPAIGN_COLS.split(","))


class Row(Protocol):
    """A result row by column name: sqlite3.Row and asyncpg.Record both are."""

    def __getitem__(self, key: str, /) -> Any: ...


def window(day: int | None, minute: int | None) -> Window | None:
    return Window(day, minute) if day is not None and minute is not None else None


def servers_json(servers: tuple[ServerRef, ...]) -> str:
    return json.dumps([{"host": s.host, "port": s.port, "role": s.role.value} for s in servers])


def servers(text: str) -> tuple[ServerRef, ...]:
    return tuple(ServerRef(s["host"], int(s["port"]), Role(s["role"])) for s in json.loads(text))


@dataclass(frozen=True)
class Codec:
    ts: Callable[[datetime | None], Any]  # a time (or None) as the store writes it
    at: Callable[[Any], datetime | None]  # a time column as read back
    flag: Callable[[bool], Any]  # a boolean as the store writes it

    def req(self, value: Any) -> datetime:
        """A NOT NULL time column."""
        dt = self.at(value)
        assert dt is not None
        return dt

    def maint_params(self, m: Maintenance) -> tuple[Any, ...]:
        """A maintenance's values in `MAINT_COLS` order."""
        ts = self.ts
        return (
            m.id,
            m.addon,
            m.app,
            m.reason.value,
            m.method.value,
            m.status.value,
            ts(m.required_by),
            ts(m.created_at),
            ts(m.scheduled_for),
            ts(m.previously_scheduled_for),
            ts(m.started_at),
            ts(m.completed_at),
            m.window.day if m.window else None,
            m.window.start_minute if m.window else None,
            m.current_step,
            m.failure_reason,
            m.write_pause_ms,
            json.dumps(m.state.to_json(), sort_keys=True),
            m.attempts,
            m.last_failure_reason,
            self.flag(m.needs_operator),
            m.target_build,
            m.target_version,
            self.flag(m.allow_downgrade),
            m.redirect_ms,
            ts(m.not_before),
        )

    def campaign_params(self, c: Campaign) -> tuple[Any, ...]:
        """A campaign's values in `CAMPAIGN_COLS` order."""
        s, ts = c.spec, self.ts
        return (
            c.id,
            s.build,
            c.target_version,
            self.flag(c.allow_downgrade),
            s.reason,
            ts(s.required_by),
            c.target,
            s.canary,
            json.dumps(list(s.waves)),
            s.soak.total_seconds(),
            s.halt_on_failures,
            s.halt_on_pause_ms,
            c.status.value,
            c.wave,
            c.waves,
            self.flag(c.has_canary),
            c.halt_reason,
            c.failure_baseline,
            ts(c.resumed_at),
            ts(c.ended_at),
            ts(c.created_at),
        )

    def app(self, row: Row) -> App:
        return App(
            row["name"], row["owner_email"], bool(row["maintenance_mode"]), self.req(row["created_at"])
        )

    def addon(self, row: Row) -> Addon:
        return Addon(
            name=row["name"],
            app=row["app"],
            plan=row["plan"],
            kind=row["kind"],
            description=row["description"],
            attachments=tuple(json.loads(row["attachments"])),
            created_at=self.req(row["created_at"]),
            servers=servers(row["servers"]),
            window=window(row["window_day"], row["window_minute"]),
            previous_window=window(row["prev_window_day"], row["prev_window_minute"]),
        )

    def webhook(self, row: Row) -> Webhook:
        return Webhook(row["id"], row["app"], row["url"], row["secret"], self.req(row["created_at"]))

    def outbox(self, row: Row) -> OutboxItem:
        return OutboxItem(
            kind=Channel(row["kind"]),
            dedupe_key=row["dedupe_key"],
            app=row["app"],
            recipient=row["recipient"],
            subject=row["subject"],
            body=row["body"],
            created_at=self.req(row["created_at"]),
            next_attempt_at=self.req(row["next_attempt_at"]),
            webhook_id=row["webhook_id"],
            id=row["id"],
            attempts=row["attempts"],
            sent_at=self.at(row["sent_at"]),
            dropped_at=self.at(row["dropped_at"]),
            last_error=row["last_error"],
        )

    def campaign(self, r: Row) -> Campaign:
        spec = Spec(
            build=r["build"],
            reason=r["reason"],
            required_by=self.req(r["required_by"]),
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
            created_at=self.req(r["created_at"]),
            has_canary=bool(r["has_canary"]),
            halt_reason=r["halt_reason"],
            failure_baseline=r["failure_baseline"],
            resumed_at=self.at(r["resumed_at"]),
            ended_at=self.at(r["ended_at"]),
        )

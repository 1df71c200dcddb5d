"""SQLite storage through aiosqlite: WAL, versioned migrations, one transaction per change."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from kvmaint.clock import utc
from kvmaint.errors import FailedPrecondition
from server.domain.campaigns import Campaign, CampaignStatus, Candidate, Member, MemberState, Spec
from server.domain.credentials import AddonCredentials
from server.domain.driverstate import DriverState
from server.domain.freezes import Freeze
from server.domain.models import (
    Addon,
    App,
    Event,
    EventType,
    HistoryEntry,
    Maintenance,
    Method,
    Reason,
    Role,
    ServerRef,
    Status,
)
from server.domain.windows import Window
from server.notify.models import Channel, OutboxItem, Webhook
from server.replica.models import SCHEDULER_LEASE, LeaderInfo, SchedulerInfo
from server.storage.sqlite_bulk import SqliteBulk

log = logging.getLogger(__name__)

MIGRATIONS: list[str] = [
    # 1: the control plane.
    """
    CREATE TABLE apps (
        name TEXT PRIMARY KEY,
        owner_email TEXT NOT NULL,
        maintenance_mode INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE config_vars (
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (app, key)
    );
    CREATE TABLE addons (
        name TEXT PRIMARY KEY,
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        plan TEXT NOT NULL,
        kind TEXT NOT NULL,
        description TEXT NOT NULL,
        attachments TEXT NOT NULL,
        created_at TEXT NOT NULL,
        servers TEXT NOT NULL,
        window_day INTEGER,
        window_minute INTEGER,
        prev_window_day INTEGER,
        prev_window_minute INTEGER
    );
    CREATE INDEX addons_app ON addons(app, name);
    CREATE TABLE maintenances (
        id TEXT PRIMARY KEY,
        addon TEXT NOT NULL,
        app TEXT NOT NULL,
        reason TEXT NOT NULL,
        method TEXT NOT NULL,
        status TEXT NOT NULL,
        required_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        scheduled_for TEXT,
        previously_scheduled_for TEXT,
        started_at TEXT,
        completed_at TEXT,
        window_day INTEGER,
        window_minute INTEGER,
        current_step TEXT NOT NULL DEFAULT '',
        failure_reason TEXT NOT NULL DEFAULT '',
        write_pause_ms INTEGER NOT NULL DEFAULT -1,
        state TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX maintenances_addon ON maintenances(addon, created_at);
    CREATE INDEX maintenances_app ON maintenances(app, created_at);
    CREATE INDEX maintenances_status ON maintenances(status, scheduled_for);
    CREATE TABLE maintenance_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        maintenance_id TEXT NOT NULL REFERENCES maintenances(id) ON DELETE CASCADE,
        time TEXT NOT NULL,
        status TEXT NOT NULL,
        step TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX history_maintenance ON maintenance_history(maintenance_id, id);
    CREATE TABLE events (
        sequence INTEGER PRIMARY KEY AUTOINCREMENT,
        type TEXT NOT NULL,
        time TEXT NOT NULL,
        app TEXT NOT NULL,
        addon TEXT NOT NULL,
        maintenance_id TEXT NOT NULL,
        message TEXT NOT NULL,
        attributes TEXT NOT NULL
    );
    CREATE INDEX events_app ON events(app, sequence);
    """,
    # 2: agents' advertised hosts, so config vars keep naming servers correctly across restarts.
    """
    CREATE TABLE agents (
        host_id TEXT PRIMARY KEY,
        advertise_host TEXT NOT NULL,
        agent_version TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    """,
    # 3: notifications. The outbox is written in the same transaction as the event that causes it and
    # drained by server/notify/sender.py (dedupe_key makes enqueueing idempotent); apps' webhook
    # endpoints; the 24-hour reminders already given, once per (maintenance, scheduled_for).
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        dedupe_key TEXT NOT NULL UNIQUE,
        app TEXT NOT NULL,
        recipient TEXT NOT NULL,
        webhook_id TEXT NOT NULL DEFAULT '',
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        sent_at TEXT,
        dropped_at TEXT,
        last_error TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    );
    CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE sent_at IS NULL AND dropped_at IS NULL;
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX webhooks_app ON webhooks(app, created_at);
    CREATE TABLE reminders (
        maintenance_id TEXT NOT NULL,
        scheduled_for TEXT NOT NULL,
        PRIMARY KEY (maintenance_id, scheduled_for)
    );
    """,
    # 4: freezes (deny periods) of an app, or of the whole fleet (app = '').
    """
    CREATE TABLE freezes (
        id TEXT PRIMARY KEY,
        app TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX freezes_app ON freezes(app, ends_at);
    """,
    # 5: failed attempts of a maintenance that went back to pending (server/domain/lifecycle.py).
    """
    ALTER TABLE maintenances ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE maintenances ADD COLUMN last_failure_reason TEXT NOT NULL DEFAULT '';
    ALTER TABLE maintenances ADD COLUMN needs_operator INTEGER NOT NULL DEFAULT 0;
    """,
    # 6: the build a maintenance installs (server/domain/builds.py).
    """
    ALTER TABLE maintenances ADD COLUMN target_build TEXT NOT NULL DEFAULT '';
    ALTER TABLE maintenances ADD COLUMN target_version TEXT NOT NULL DEFAULT '';
    ALTER TABLE maintenances ADD COLUMN allow_downgrade INTEGER NOT NULL DEFAULT 0;
    """,
    # 7: what applications saw of a failover (redirect_ms), and the week the owner scheduled into.
    """
    ALTER TABLE maintenances ADD COLUMN redirect_ms INTEGER NOT NULL DEFAULT -1;
    ALTER TABLE maintenances ADD COLUMN not_before TEXT;
    """,
    # 8: the Redis users of add-ons whose servers kvmaint placed (server/domain/credentials.py).
    """
    CREATE TABLE addon_credentials (
        addon TEXT PRIMARY KEY,
        app_user TEXT NOT NULL,
        app_password TEXT NOT NULL,
        agent_user TEXT NOT NULL,
        agent_password TEXT NOT NULL,
        tls INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 9: campaigns (server/domain/campaigns.py): a build rolled out in waves; each member's planned
    # wave and window, and its maintenance once its wave is released.
    """
    CREATE TABLE campaigns (
        id TEXT PRIMARY KEY,
        build TEXT NOT NULL,
        target_version TEXT NOT NULL,
        allow_downgrade INTEGER NOT NULL,
        reason TEXT NOT NULL,
        required_by TEXT NOT NULL,
        target TEXT NOT NULL,
        canary INTEGER NOT NULL,
        waves TEXT NOT NULL,
        soak_seconds REAL NOT NULL,
        halt_on_failures INTEGER NOT NULL,
        halt_on_pause_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        wave INTEGER NOT NULL,
        wave_count INTEGER NOT NULL,
        has_canary INTEGER NOT NULL,
        halt_reason TEXT NOT NULL DEFAULT '',
        failure_baseline INTEGER NOT NULL DEFAULT 0,
        resumed_at TEXT,
        ended_at TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX campaigns_status ON campaigns(status, created_at);
    CREATE TABLE campaign_members (
        campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        addon TEXT NOT NULL,
        app TEXT NOT NULL,
        wave INTEGER NOT NULL,
        planned_at TEXT NOT NULL,
        window_day INTEGER,
        window_minute INTEGER,
        meets_deadline INTEGER NOT NULL,
        maintenance_id TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (campaign_id, addon)
    );
    CREATE INDEX campaign_members_wave ON campaign_members(campaign_id, wave);
    CREATE INDEX campaign_members_maintenance ON campaign_members(maintenance_id) WHERE maintenance_id != '';
    """,
    # 10: each add-on's last maintenance (its latest completed one, else its creation), indexed, so the
    # planner's 90-day pass reads only the add-ons nearing the mark instead of the whole fleet.
    """
    ALTER TABLE addons ADD COLUMN maintained_at TEXT;
    UPDATE addons SET maintained_at = COALESCE((SELECT MAX(m.completed_at) FROM maintenances AS m
        WHERE m.addon = addons.name AND m.status = 'completed'), created_at);
    CREATE INDEX addons_maintained ON addons(maintained_at);
    CREATE TABLE addon_servers (
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        addon TEXT NOT NULL REFERENCES addons(name) ON DELETE CASCADE
    );
    CREATE INDEX addon_servers_key ON addon_servers(host, port);
    CREATE INDEX addon_servers_addon ON addon_servers(addon);
    INSERT INTO addon_servers (host, port, addon) SELECT json_extract(s.value, '$.host'),
        json_extract(s.value, '$.port'), a.name FROM addons AS a, json_each(a.servers) AS s
    """,
    # 11: when each pending maintenance's 24-hour reminder falls due (scheduled_for - 1 day, the
    # REMIND_BEFORE of server/notify/policy.py), NULL once given or when not pending, kept by triggers
    # so every write path keeps it; indexed, so the reminder pass reads only the reminders due. The
    # format is SQLite's strftime('%Y-%m-%dT%H:%M:%f') in UTC (`_remind_ts`), compared as text.
    """
    ALTER TABLE maintenances ADD COLUMN remind_at TEXT;
    UPDATE maintenances SET remind_at = CASE WHEN status = 'pending' AND scheduled_for IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM reminders AS r WHERE r.maintenance_id = maintenances.id
        AND r.scheduled_for = maintenances.scheduled_for)
        THEN strftime('%Y-%m-%dT%H:%M:%f', scheduled_for, '-1 day') END;
    CREATE INDEX maintenances_remind ON maintenances(remind_at) WHERE remind_at IS NOT NULL;
    CREATE TRIGGER maintenances_remind_insert AFTER INSERT ON maintenances BEGIN
        UPDATE maintenances SET remind_at = CASE WHEN NEW.status = 'pending' AND NEW.scheduled_for IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM reminders AS r WHERE r.maintenance_id = NEW.id
            AND r.scheduled_for = NEW.scheduled_for)
            THEN strftime('%Y-%m-%dT%H:%M:%f', NEW.scheduled_for, '-1 day') END WHERE id = NEW.id;
    END;
    CREATE TRIGGER maintenances_remind_update AFTER UPDATE OF status, scheduled_for ON maintenances BEGIN
        UPDATE maintenances SET remind_at = CASE WHEN NEW.status = 'pending' AND NEW.scheduled_for IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM reminders AS r WHERE r.maintenance_id = NEW.id
            AND r.scheduled_for = NEW.scheduled_for)
            THEN strftime('%Y-%m-%dT%H:%M:%f', NEW.scheduled_for, '-1 day') END WHERE id = NEW.id;
    END;
    CREATE TRIGGER reminders_given AFTER INSERT ON reminders BEGIN
        UPDATE maintenances SET remind_at = NULL
            WHERE id = NEW.maintenance_id AND scheduled_for = NEW.scheduled_for;
    END
    """,
    # 12: scheduler replicas: the leader's lease (a term that only grows) and each replica's heartbeat.
    # One process per SQLite file, so it is always the leader, but its term is kept for agents' fencing.
    """
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        term INTEGER NOT NULL,
        address TEXT NOT NULL,
        agent_address TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE TABLE schedulers (
        id TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        agent_address TEXT NOT NULL,
        started_at TEXT NOT NULL,
        seen_at TEXT NOT NULL,
        version TEXT NOT NULL
    )
    """,
    # 13: the fleet-wide request (RequireMaintenance for all or a plan) that filed a maintenance, so
    # its reply can stay small and page through what it filed instead of carrying every maintenance.
    """
    ALTER TABLE maintenances ADD COLUMN filing TEXT NOT NULL DEFAULT '';
    CREATE INDEX maintenances_filing ON maintenances(filing, id) WHERE filing != ''
    """,
]


def _statements(script: str) -> list[str]:
    """A migration's statements: split at semicolons, except those inside a trigger's body."""
    out, buf = [], ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                out.append(buf.strip())
            buf = ""
    if buf.strip(" \n;"):
        out.append(buf.strip())
    return out


def _remind_ts(dt: datetime) -> str:
    """A time as migration 11 writes remind_at (UTC, milliseconds, no offset), so text compares."""
    u = utc(dt)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}"

# addon_servers (migration 10) indexes add-ons by server, so `CreateAddon` checks uniqueness without a scan.


async def _index_servers(db: aiosqlite.Connection, addon: Addon) -> None:
    await db.execute("DELETE FROM addon_servers WHERE addon = ?", (addon.name,))
    await db.executemany(
        "INSERT INTO addon_servers (host, port, addon) VALUES (?, ?, ?)",
        [(ref.host, ref.port, addon.name) for ref in addon.servers],
    )


# Recomputes an add-on's `maintained_at` from its completed maintenances (few per add-on: indexed).
_MAINTAINED = (
    "UPDATE addons SET maintained_at = COALESCE((SELECT MAX(m.completed_at) FROM maintenances AS m "
    "WHERE m.addon = addons.name AND m.status = 'completed'), created_at) WHERE name = ?"
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


def _app(row: aiosqlite.Row) -> App:
    return App(row["name"], row["owner_email"], bool(row["maintenance_mode"]), _req(row["created_at"]))


def _req(text: str) -> datetime:
    dt = _dt(text)
    assert dt is not None
    return dt


def _addon(row: aiosqlite.Row) -> Addon:
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


def _webhook(row: aiosqlite.Row) -> Webhook:
    return Webhook(row["id"], row["app"], row["url"], row["secret"], _req(row["created_at"]))


def _outbox(row: aiosqlite.Row) -> OutboxItem:
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


class SqliteTx(SqliteBulk):
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def _one(self, sql: str, *params: Any) -> aiosqlite.Row | None:
        async with self._db.execute(sql, params) as cur:
            row: aiosqlite.Row | None = await cur.fetchone()
            return row

    async def _all(self, sql: str, *params: Any) -> list[aiosqlite.Row]:
        async with self._db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    # apps
    async def get_app(self, name: str) -> App | None:
        row = await self._one("SELECT * FROM apps WHERE name = ?", name)
        return _app(row) if row else None

    async def list_apps(self, after: str, limit: int) -> list[App]:
        rows = await self._all("SELECT * FROM apps WHERE name > ? ORDER BY name LIMIT ?", after, limit)
        return [_app(r) for r in rows]

    async def insert_app(self, app: App) -> None:
        await self._db.execute(
            "INSERT INTO apps (name, owner_email, maintenance_mode, created_at) VALUES (?, ?, ?, ?)",
            (app.name, app.owner_email, int(app.maintenance_mode), _ts(app.created_at)),
        )

    async def update_app(self, app: App) -> None:
        await self._db.execute(
            "UPDATE apps SET owner_email = ?, maintenance_mode = ? WHERE name = ?",
            (app.owner_email, int(app.maintenance_mode), app.name),
        )

    async def delete_app(self, name: str) -> None:
        # Credentials have no foreign key to cascade along: the add-ons' passwords go first.
        await self._db.execute(
            "DELETE FROM addon_credentials WHERE addon IN (SELECT name FROM addons WHERE app = ?)", (name,)
        )
        await self._db.execute("DELETE FROM apps WHERE name = ?", (name,))

    # config vars
    async def get_config(self, app: str) -> dict[str, str]:
        rows = await self._all("SELECT key, value FROM config_vars WHERE app = ? ORDER BY key", app)
        return {r["key"]: r["value"] for r in rows}

    async def set_config(self, app: str, key: str, value: str | None) -> None:
        if value is None:
            await self._db.execute("DELETE FROM config_vars WHERE app = ? AND key = ?", (app, key))
        else:
            await self._db.execute(
                "INSERT INTO config_vars (app, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (app, key) DO UPDATE SET value = excluded.value",
                (app, key, value),
            )

    # add-ons
    async def get_addon(self, name: str) -> Addon | None:
        row = await self._one("SELECT * FROM addons WHERE name = ?", name)
        return _addon(row) if row else None

    async def list_addons(self, app: str | None, after: str, limit: int) -> list[Addon]:
        if app:
            rows = await self._all(
                "SELECT * FROM addons WHERE app = ? AND name > ? ORDER BY name LIMIT ?", app, after, limit
            )
        else:
            rows = await self._all("SELECT * FROM addons WHERE name > ? ORDER BY name LIMIT ?", after, limit)
        return [_addon(r) for r in rows]

    async def list_addons_by_plan(self, plan: str | None) -> list[Addon]:
        if plan:
            rows = await self._all("SELECT * FROM addons WHERE plan = ? ORDER BY name", plan)
        else:
            rows = await self._all("SELECT * FROM addons ORDER BY name")
        return [_addon(r) for r in rows]

    async def insert_addon(self, addon: Addon) -> None:
        await self._db.execute(
            "INSERT INTO addons (name, app, plan, kind, description, attachments, created_at, servers, "
            "window_day, window_minute, prev_window_day, prev_window_minute) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self._addon_params(addon),
        )
        await self._db.execute(_MAINTAINED, (addon.name,))
        await _index_servers(self._db, addon)

    async def update_addon(self, addon: Addon) -> None:
        params = self._addon_params(addon)
        await self._db.execute(
            "UPDATE addons SET app = ?, plan = ?, kind = ?, description = ?, attachments = ?, "
            "created_at = ?, servers = ?, window_day = ?, window_minute = ?, prev_window_day = ?, "
            "prev_window_minute = ? WHERE name = ?",
            (*params[1:], params[0]),
        )
        await self._db.execute(_MAINTAINED, (addon.name,))
        await _index_servers(self._db, addon)

    async def server_owners(self, servers: list[tuple[str, int]]) -> dict[str, str]:
        """ "host:port" -> the add-on registered on it, for those of `servers` that are taken."""
        out: dict[str, str] = {}
        for host, port in servers:
            row = await self._one(
                "SELECT addon FROM addon_servers WHERE host = ? AND port = ? LIMIT 1", host, port
            )
            if row is not None:
                out[f"{host}:{port}"] = row["addon"]
        return out

    async def routine_candidates(self, maintained_before: datetime) -> list[tuple[Addon, datetime]]:
        """Add-ons last maintained at or before the cutoff with no active maintenance, and that time."""
        rows = await self._all(
            "SELECT * FROM addons AS a WHERE a.maintained_at <= ? AND NOT EXISTS (SELECT 1 FROM "
            "maintenances AS m WHERE m.addon = a.name AND m.status IN ('pending', 'preparing', 'ready', "
            "'running')) ORDER BY a.name",
            _ts(maintained_before),
        )
        return [(_addon(r), _req(r["maintained_at"])) for r in rows]

    @staticmethod
    def _addon_params(a: Addon) -> tuple[Any, ...]:
        return (
            a.name,
            a.app,
            a.plan,
            a.kind,
            a.description,
            json.dumps(list(a.attachments)),
            _ts(a.created_at),
            _servers_json(a.servers),
            a.window.day if a.window else None,
            a.window.start_minute if a.window else None,
            a.previous_window.day if a.previous_window else None,
            a.previous_window.start_minute if a.previous_window else None,
        )

    async def delete_addon(self, name: str) -> None:
        await self._db.execute("DELETE FROM addons WHERE name = ?", (name,))
        await self._db.execute("DELETE FROM addon_credentials WHERE addon = ?", (name,))

    async def get_credentials(self, addon: str) -> AddonCredentials | None:
        r = await self._one("SELECT * FROM addon_credentials WHERE addon = ?", addon)
        if r is None:
            return None
        return AddonCredentials(
            app_user=r["app_user"],
            app_password=r["app_password"],
            agent_password=r["agent_password"],
            agent_user=r["agent_user"],
            tls=bool(r["tls"]),
        )

    async def set_credentials(self, addon: str, creds: AddonCredentials) -> None:
        await self._db.execute(
            "INSERT INTO addon_credentials (addon, app_user, app_password, agent_user, agent_password, tls) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (addon) DO UPDATE SET app_user = excluded.app_user, "
            "app_password = excluded.app_password, agent_user = excluded.agent_user, "
            "agent_password = excluded.agent_password, tls = excluded.tls",
            (
                addon,
                creds.app_user,
                creds.app_password,
                creds.agent_user,
                creds.agent_password,
                int(creds.tls),
            ),
        )

    # maintenances
    async def _load(self, rows: list[aiosqlite.Row], history: bool = True) -> list[Maintenance]:
        """Maintenances with their histories (unless `history` is False: the periodic passes never print
        them), read in one query per 500 of them (not one each)."""
        hist: dict[str, list[HistoryEntry]] = {r["id"]: [] for r in rows}
        ids = list(hist) if history else []
        for k in range(0, len(ids), 500):
            chunk = ids[k : k + 500]
            for h in await self._all(
                "SELECT maintenance_id, time, status, step, message FROM maintenance_history "
                f"WHERE maintenance_id IN ({', '.join('?' * len(chunk))}) ORDER BY id",
                *chunk,
            ):
                hist[h["maintenance_id"]].append(
                    HistoryEntry(_req(h["time"]), Status(h["status"]), h["step"], h["message"])
                )
        out = []
        for r in rows:
            out.append(
                Maintenance(
                    id=r["id"],
                    addon=r["addon"],
                    app=r["app"],
                    reason=Reason(r["reason"]),
                    method=Method(r["method"]),
                    status=Status(r["status"]),
                    required_by=_req(r["required_by"]),
                    created_at=_req(r["created_at"]),
                    scheduled_for=_dt(r["scheduled_for"]),
                    previously_scheduled_for=_dt(r["previously_scheduled_for"]),
                    started_at=_dt(r["started_at"]),
                    completed_at=_dt(r["completed_at"]),
                    window=_window(r["window_day"], r["window_minute"]),
                    current_step=r["current_step"],
                    failure_reason=r["failure_reason"],
                    write_pause_ms=r["write_pause_ms"],
                    state=DriverState.from_json(json.loads(r["state"])),
                    attempts=r["attempts"],
                    last_failure_reason=r["last_failure_reason"],
                    needs_operator=bool(r["needs_operator"]),
                    target_build=r["target_build"],
                    target_version=r["target_version"],
                    allow_downgrade=bool(r["allow_downgrade"]),
                    redirect_ms=r["redirect_ms"],
                    not_before=_dt(r["not_before"]),
                    history=tuple(hist[r["id"]]),
                )
            )
        return out

    async def get_maintenance(self, id: str) -> Maintenance | None:
        rows = await self._all(f"SELECT {_MAINT_COLS} FROM maintenances WHERE id = ?", id)
        found = await self._load(rows)
        return found[0] if found else None

    async def insert_maintenance(self, m: Maintenance) -> None:
        marks = ", ".join("?" * len(_MAINT_COLS.split(",")))
        await self._db.execute(f"INSERT INTO maintenances ({_MAINT_COLS}) VALUES ({marks})", _maint_params(m))
        for h in m.history:
            await self.add_history(m.id, h)
        if m.status is Status.COMPLETED:
            await self._db.execute(_MAINTAINED, (m.addon,))

    async def update_maintenance(self, m: Maintenance) -> None:
        cols = [c.strip() for c in _MAINT_COLS.split(",")][1:]
        sets = ", ".join(f"{c} = ?" for c in cols)
        params = _maint_params(m)
        await self._db.execute(f"UPDATE maintenances SET {sets} WHERE id = ?", (*params[1:], params[0]))
        if m.status is Status.COMPLETED:
            await self._db.execute(_MAINTAINED, (m.addon,))

    async def add_history(self, maintenance_id: str, entry: HistoryEntry) -> None:
        await self._db.execute(
            "INSERT INTO maintenance_history (maintenance_id, time, status, step, message) "
            "VALUES (?, ?, ?, ?, ?)",
            (maintenance_id, _ts(entry.time), entry.status.value, entry.step, entry.message),
        )

    async def active_maintenance(self, addon: str) -> Maintenance | None:
        rows = await self._all(
            f"SELECT {_MAINT_COLS} FROM maintenances WHERE addon = ? AND status IN "
            "('pending', 'preparing', 'ready', 'running') ORDER BY created_at DESC LIMIT 1",
            addon,
        )
        found = await self._load(rows)
        return found[0] if found else None

    async def latest_maintenances(self, addon: str, limit: int) -> list[Maintenance]:
        rows = await self._all(
            f"SELECT {_MAINT_COLS} FROM maintenances WHERE addon = ? "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            addon,
            limit,
        )
        return await self._load(rows)

    async def list_maintenances(self, app: str, after: str, limit: int) -> list[Maintenance]:
        # `after` is "created_at|id" of the last row of the previous page (newest first).
        if after:
            created, _, mid = after.partition("|")
            rows = await self._all(
                f"SELECT {_MAINT_COLS} FROM maintenances WHERE app = ? AND (created_at < ? OR "
                "(created_at = ? AND id < ?)) ORDER BY created_at DESC, id DESC LIMIT ?",
                app,
                created,
                created,
                mid,
                limit,
            )
        else:
            rows = await self._all(
                f"SELECT {_MAINT_COLS} FROM maintenances WHERE app = ? "
                "ORDER BY created_at DESC, id DESC LIMIT ?",
                app,
                limit,
            )
        return await self._load(rows)

    async def in_progress_maintenances(self) -> list[Maintenance]:
        rows = await self._all(
            f"SELECT {_MAINT_COLS} FROM maintenances WHERE status IN ('preparing', 'ready', 'running') "
            "ORDER BY started_at"
        )
        return await self._load(rows, history=False)

    async def due_maintenances(self, now: datetime) -> list[Maintenance]:
        rows = await self._all(
            f"SELECT {_MAINT_COLS} FROM maintenances WHERE status = 'pending' AND scheduled_for <= ? "
            "AND needs_operator = 0 AND NOT EXISTS (SELECT 1 FROM campaign_members AS cm "
            "JOIN campaigns AS c ON c.id = cm.campaign_id WHERE cm.maintenance_id = maintenances.id "
            "AND cm.maintenance_id != '' AND c.status != 'running') ORDER BY required_by, scheduled_for",
            _ts(now),
        )
        return await self._load(rows, history=False)

    async def latest_of(self, addons: list[str]) -> dict[str, Maintenance]:
        """Each of `addons`' most recent maintenance (as `latest_maintenances(a, 1)`), without history."""
        out: dict[str, Maintenance] = {}
        for k in range(0, len(addons), 500):
            chunk = addons[k : k + 500]
            rows = await self._all(
                f"SELECT {_MAINT_COLS} FROM (SELECT {_MAINT_COLS}, ROW_NUMBER() OVER (PARTITION BY addon "
                "ORDER BY created_at DESC, id DESC) AS rn FROM maintenances "
                f"WHERE addon IN ({', '.join('?' * len(chunk))})) WHERE rn = 1",
                *chunk,
            )
            out.update((m.addon, m) for m in await self._load(rows, history=False))
        return out

    # freezes
    async def list_freezes(self, app: str | None, ending_after: datetime) -> list[Freeze]:
        """Freezes still in force after `ending_after`: of `app` and of the fleet, or all when app is None."""
        if app is None:
            rows = await self._all(
                "SELECT * FROM freezes WHERE ends_at > ? ORDER BY starts_at, id", _ts(ending_after)
            )
        else:
            rows = await self._all(
                "SELECT * FROM freezes WHERE ends_at > ? AND app IN (?, '') ORDER BY starts_at, id",
                _ts(ending_after),
                app,
            )
        return [
            Freeze(
                r["id"],
                r["app"],
                _req(r["starts_at"]),
                _req(r["ends_at"]),
                r["reason"],
                _req(r["created_at"]),
            )
            for r in rows
        ]

    async def insert_freeze(self, f: Freeze) -> None:
        await self._db.execute(
            "INSERT INTO freezes (id, app, starts_at, ends_at, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (f.id, f.app, _ts(f.starts_at), _ts(f.ends_at), f.reason, _ts(f.created_at)),
        )

    async def delete_freeze(self, id: str) -> bool:
        cur = await self._db.execute("DELETE FROM freezes WHERE id = ?", (id,))
        deleted = cur.rowcount > 0
        await cur.close()
        return deleted

    async def pending_maintenances(self, app: str | None) -> list[Maintenance]:
        if app is None:
            rows = await self._all(f"SELECT {_MAINT_COLS} FROM maintenances WHERE status = 'pending'")
        else:
            rows = await self._all(
                f"SELECT {_MAINT_COLS} FROM maintenances WHERE status = 'pending' AND app = ?", app
            )
        return await self._load(rows)

    async def last_completed(self) -> dict[str, datetime]:
        """Each add-on's latest completed maintenance."""
        rows = await self._all(
            "SELECT addon, MAX(completed_at) AS at FROM maintenances "
            "WHERE status = 'completed' GROUP BY addon"
        )
        return {r["addon"]: _req(r["at"]) for r in rows}

    async def maintenance_counts(self) -> dict[str, int]:
        """How many maintenances are in each status (for metrics)."""
        rows = await self._all("SELECT status, COUNT(*) AS n FROM maintenances GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    async def outbox_backlog(self) -> dict[str, int]:
        """Notifications neither delivered nor dropped, by kind (for metrics)."""
        rows = await self._all(
            "SELECT kind, COUNT(*) AS n FROM outbox WHERE sent_at IS NULL AND dropped_at IS NULL "
            "GROUP BY kind"
        )
        return {r["kind"]: r["n"] for r in rows}

    # agents
    async def upsert_agent(self, host_id: str, advertise_host: str, version: str, seen: datetime) -> None:
        await self._db.execute(
            "INSERT INTO agents (host_id, advertise_host, agent_version, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (host_id) DO UPDATE SET advertise_host = excluded.advertise_host, "
            "agent_version = excluded.agent_version, last_seen = excluded.last_seen",
            (host_id, advertise_host, version, _ts(seen)),
        )

    async def list_agents(self) -> dict[str, str]:
        rows = await self._all("SELECT host_id, advertise_host FROM agents")
        return {r["host_id"]: r["advertise_host"] for r in rows}

    # leases and replicas: "the database's clock" is this host's (one process per file, StateLock).
    async def acquire_lease(
        self, name: str, holder: str, address: str, agent_address: str, duration: timedelta
    ) -> int | None:
        now = datetime.now(UTC)
        row = await self._one("SELECT holder, term, expires_at FROM leases WHERE name = ?", name)
        if row is None:
            term = 1
        else:
            live = _req(row["expires_at"]) > now
            if live and row["holder"] != holder:
                return None
            term = int(row["term"]) if live else int(row["term"]) + 1
        await self._put_lease(name, holder, term, address, agent_address, now + duration)
        return term

    async def take_lease(
        self, name: str, holder: str, address: str, agent_address: str, duration: timedelta
    ) -> int:
        row = await self._one("SELECT term FROM leases WHERE name = ?", name)
        term = 1 if row is None else int(row["term"]) + 1
        await self._put_lease(name, holder, term, address, agent_address, datetime.now(UTC) + duration)
        return term

    async def _put_lease(
        self, name: str, holder: str, term: int, address: str, agent_address: str, expires: datetime
    ) -> None:
        await self._db.execute(
            "INSERT INTO leases (name, holder, term, address, agent_address, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "term = excluded.term, address = excluded.address, agent_address = excluded.agent_address, "
            "expires_at = excluded.expires_at",
            (name, holder, term, address, agent_address, _ts(expires)),
        )

    async def release_lease(self, name: str, holder: str, term: int) -> None:
        now = datetime.now(UTC)
        row = await self._one("SELECT expires_at FROM leases WHERE name = ? AND holder = ? AND term = ?",
                              name, holder, term)
        if row is not None and _req(row["expires_at"]) > now:
            await self._db.execute("UPDATE leases SET expires_at = ? WHERE name = ?", (_ts(now), name))

    async def get_leader(self, name: str = SCHEDULER_LEASE) -> LeaderInfo | None:
        row = await self._one("SELECT * FROM leases WHERE name = ?", name)
        if row is None or _req(row["expires_at"]) <= datetime.now(UTC):
            return None
        return LeaderInfo(
            row["holder"], int(row["term"]), row["address"], row["agent_address"], _req(row["expires_at"])
        )

    async def upsert_scheduler(self, id: str, address: str, agent_address: str, version: str) -> None:
        now = _ts(datetime.now(UTC))
        await self._db.execute(
            "INSERT INTO schedulers (id, address, agent_address, started_at, seen_at, version) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET address = excluded.address, "
            "agent_address = excluded.agent_address, seen_at = excluded.seen_at, version = excluded.version",
            (id, address, agent_address, now, now, version),
        )

    async def delete_scheduler(self, id: str) -> None:
        await self._db.execute("DELETE FROM schedulers WHERE id = ?", (id,))

    async def list_schedulers(self) -> list[SchedulerInfo]:
        rows = await self._all("SELECT * FROM schedulers ORDER BY id")
        return [
            SchedulerInfo(
                r["id"], r["address"], r["agent_address"], _req(r["started_at"]), _req(r["seen_at"]),
                r["version"],
            )
            for r in rows
        ]

    # events
    async def append_event(self, event: Event) -> int:
        cur = await self._db.execute(
            "INSERT INTO events (type, time, app, addon, maintenance_id, message, attributes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                event.type.value,
                _ts(event.time),
                event.app,
                event.addon,
                event.maintenance_id,
                event.message,
                json.dumps(event.attributes, sort_keys=True),
            ),
        )
        seq = cur.lastrowid
        await cur.close()
        assert seq is not None
        return seq

    async def events_after(self, sequence: int, app: str, addon: str, limit: int) -> list[Event]:
        sql = "SELECT * FROM events WHERE sequence > ?"
        params: list[Any] = [sequence]
        if app:
            sql += " AND app = ?"
            params.append(app)
        if addon:
            sql += " AND addon = ?"
            params.append(addon)
        sql += " ORDER BY sequence LIMIT ?"
        params.append(limit)
        rows = await self._all(sql, *params)
        return [
            Event(
                sequence=r["sequence"],
                type=EventType(r["type"]),
                time=_req(r["time"]),
                app=r["app"],
                addon=r["addon"],
                maintenance_id=r["maintenance_id"],
                message=r["message"],
                attributes=json.loads(r["attributes"]),
            )
            for r in rows
        ]

    # notifications
    async def insert_webhook(self, hook: Webhook) -> None:
        await self._db.execute(
            "INSERT INTO webhooks (id, app, url, secret, created_at) VALUES (?, ?, ?, ?, ?)",
            (hook.id, hook.app, hook.url, hook.secret, _ts(hook.created_at)),
        )

    async def get_webhook(self, id: str) -> Webhook | None:
        row = await self._one("SELECT * FROM webhooks WHERE id = ?", id)
        return _webhook(row) if row else None

    async def list_webhooks(self, app: str) -> list[Webhook]:
        rows = await self._all("SELECT * FROM webhooks WHERE app = ? ORDER BY created_at, id", app)
        return [_webhook(r) for r in rows]

    async def delete_webhook(self, id: str) -> None:
        await self._db.execute("DELETE FROM webhooks WHERE id = ?", (id,))

    async def enqueue(self, item: OutboxItem) -> bool:
        """False when an item with the same dedupe key is already there (then nothing is written)."""
        cur = await self._db.execute(
            "INSERT INTO outbox (kind, dedupe_key, app, recipient, webhook_id, subject, body, attempts, "
            "next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?) "
            "ON CONFLICT (dedupe_key) DO NOTHING",
            (
                item.kind.value,
                item.dedupe_key,
                item.app,
                item.recipient,
                item.webhook_id,
                item.subject,
                item.body,
                _ts(item.next_attempt_at),
                _ts(item.created_at),
            ),
        )
        inserted = cur.rowcount == 1
        await cur.close()
        return inserted

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Rows due now, oldest first, except those behind an earlier undelivered row to the same
        destination that is not due yet: each recipient (or webhook) gets its notices in order."""
        rows = await self._all(
            "SELECT * FROM outbox AS o WHERE sent_at IS NULL AND dropped_at IS NULL AND next_attempt_at <= ? "
            "AND NOT EXISTS (SELECT 1 FROM outbox AS p WHERE p.sent_at IS NULL AND p.dropped_at IS NULL "
            "AND p.id < o.id AND p.kind = o.kind AND p.recipient = o.recipient "
            "AND p.webhook_id = o.webhook_id AND p.next_attempt_at > ?) "
            "ORDER BY id LIMIT ?",
            _ts(now),
            _ts(now),
            limit,
        )
        return [_outbox(r) for r in rows]

    async def list_outbox(self, after_id: int, limit: int) -> list[OutboxItem]:
        rows = await self._all("SELECT * FROM outbox WHERE id > ? ORDER BY id LIMIT ?", after_id, limit)
        return [_outbox(r) for r in rows]

    async def mark_sent(self, id: int, now: datetime) -> None:
        await self._db.execute(
            "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = '' WHERE id = ?",
            (_ts(now), id),
        )

    async def mark_retry(self, id: int, error: str, next_attempt_at: datetime) -> None:
        await self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
            (error, _ts(next_attempt_at), id),
        )

    async def mark_dropped(self, id: int, error: str, now: datetime) -> None:
        await self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, dropped_at = ? WHERE id = ?",
            (error, _ts(now), id),
        )

    async def prune_outbox(self, before: datetime) -> int:
        cur = await self._db.execute(
            "DELETE FROM outbox WHERE COALESCE(sent_at, dropped_at) < ?",
            (_ts(before),),
        )
        count = cur.rowcount
        await cur.close()
        return count

    async def starting_between(self, after: datetime, until: datetime) -> list[Maintenance]:
        """Pending maintenances with after < scheduled_for <= until (the reminders' candidates)."""
        rows = await self._all(
            f"SELECT {_MAINT_COLS} FROM maintenances WHERE status = 'pending' AND scheduled_for > ? "
            "AND scheduled_for <= ? ORDER BY scheduled_for",
            _ts(after),
            _ts(until),
        )
        return await self._load(rows, history=False)

    async def reminders_due(self, now: datetime) -> list[Maintenance]:
        """Maintenances whose reminder fell due by `now` and was not given (nor dropped), without
        history: through the remind_at index, so as many as are due, not the fleet."""
        rows = await self._all(
            f"SELECT {_MAINT_COLS} FROM maintenances WHERE remind_at IS NOT NULL AND remind_at <= ? "
            "ORDER BY remind_at",
            _remind_ts(now),
        )
        return await self._load(rows, history=False)

    async def next_reminder(self) -> datetime | None:
        """When the earliest reminder not yet given falls due (one index probe)."""
        row = await self._one("SELECT MIN(remind_at) FROM maintenances WHERE remind_at IS NOT NULL")
        return datetime.fromisoformat(row[0]).replace(tzinfo=UTC) if row and row[0] else None

    async def drop_reminder(self, maintenance_id: str) -> None:
        """No reminder for this schedule any more (it is too late for one); a new schedule sets another."""
        await self._db.execute("UPDATE maintenances SET remind_at = NULL WHERE id = ?", (maintenance_id,))

    async def mark_reminded(self, maintenance_id: str, scheduled_for: datetime) -> bool:
        """False when the reminder for this (maintenance, scheduled_for) was already given."""
        cur = await self._db.execute(
            "INSERT INTO reminders (maintenance_id, scheduled_for) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (maintenance_id, _ts(scheduled_for)),
        )
        inserted = cur.rowcount == 1
        await cur.close()
        return inserted

    # campaigns
    async def insert_campaign(self, c: Campaign, members: list[Member]) -> None:
        await self._db.execute(
            f"INSERT INTO campaigns ({_CAMPAIGN_COLS}) VALUES ({', '.join('?' * _CAMPAIGN_N)})",
            _campaign_params(c),
        )
        await self._db.executemany(
            "INSERT INTO campaign_members (campaign_id, addon, app, wave, planned_at, window_day, "
            "window_minute, meets_deadline, maintenance_id, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    c.id,
                    m.addon,
                    m.app,
                    m.wave,
                    _ts(m.planned_at),
                    m.window.day if m.window else None,
                    m.window.start_minute if m.window else None,
                    int(m.meets_deadline),
                    m.maintenance_id,
                    m.note,
                )
                for m in members
            ],
        )

    async def update_campaign(self, c: Campaign) -> None:
        cols = [x.strip() for x in _CAMPAIGN_COLS.split(",")][1:]
        params = _campaign_params(c)
        await self._db.execute(
            f"UPDATE campaigns SET {', '.join(f'{x} = ?' for x in cols)} WHERE id = ?",
            (*params[1:], params[0]),
        )

    async def get_campaign(self, id: str) -> Campaign | None:
        row = await self._one(f"SELECT {_CAMPAIGN_COLS} FROM campaigns WHERE id = ?", id)
        return _campaign(row) if row else None

    async def list_campaigns(self, status: CampaignStatus | None = None) -> list[Campaign]:
        if status is None:
            rows = await self._all(f"SELECT {_CAMPAIGN_COLS} FROM campaigns ORDER BY created_at, id")
        else:
            rows = await self._all(
                f"SELECT {_CAMPAIGN_COLS} FROM campaigns WHERE status = ? ORDER BY created_at, id",
                status.value,
            )
        return [_campaign(r) for r in rows]

    async def campaign_members(self, campaign_id: str, wave: int | None = None) -> list[MemberState]:
        """Members (of one wave, or all), each with its maintenance as it stands, in planned order."""
        sql = (
            "SELECT cm.*, m.status AS m_status, m.attempts AS m_attempts, m.write_pause_ms AS m_pause, "
            "m.completed_at AS m_completed, m.scheduled_for AS m_scheduled FROM campaign_members AS cm "
            "LEFT JOIN maintenances AS m ON m.id = cm.maintenance_id AND cm.maintenance_id != '' "
            "WHERE cm.campaign_id = ?"
        )
        params: list[Any] = [campaign_id]
        if wave is not None:
            sql += " AND cm.wave = ?"
            params.append(wave)
        rows = await self._all(sql + " ORDER BY cm.wave, cm.planned_at, cm.addon", *params)
        return [
            MemberState(
                Member(
                    r["addon"],
                    r["app"],
                    r["wave"],
                    _req(r["planned_at"]),
                    _window(r["window_day"], r["window_minute"]),
                    bool(r["meets_deadline"]),
                    r["maintenance_id"],
                    r["note"],
                ),
                r["m_status"],
                r["m_attempts"] or 0,
                r["m_pause"] if r["m_pause"] is not None else -1,
                _dt(r["m_completed"]),
                _dt(r["m_scheduled"]),
            )
            for r in rows
        ]

    async def campaign_candidates(
        self, plan: str | None, apps: list[str] | None, with_servers: bool = False
    ) -> list[tuple[Candidate, tuple[str, ...]]]:
        """Add-ons as a campaign plans them (name, app, window), with their servers' host:port only when
        asked: only the columns planning reads, so 100,000 add-ons load in a fraction of a second."""
        sql = "SELECT name, app, window_day, window_minute" + (", servers" if with_servers else "")
        sql += " FROM addons"
        params: list[Any] = []
        if plan:
            sql += " WHERE plan = ?"
            params.append(plan)
        elif apps is not None:
            sql += f" WHERE app IN ({', '.join('?' * len(apps))})"
            params.extend(apps)
        async with self._db.execute(sql + " ORDER BY name", params) as cur:
            rows = await cur.fetchall()
        windows: dict[tuple[int, int], Window] = {}

        def window(day: int | None, minute: int | None) -> Window | None:
            if day is None or minute is None:
                return None
            w = windows.get((day, minute))
            if w is None:
                w = windows[(day, minute)] = Window(day, minute)
            return w

        return [
            (
                Candidate(r[0], r[1], window(r[2], r[3])),
                tuple(f"{s['host']}:{s['port']}" for s in json.loads(r[4])) if with_servers else (),
            )
            for r in rows
        ]

    async def campaign_memberships(self, addons: list[str]) -> list[tuple[Campaign, Member]]:
        """The running or halted campaigns these add-ons belong to, with each one's member row."""
        if not addons:
            return []
        rows = await self._all(
            f"SELECT {', '.join('c.' + x.strip() for x in _CAMPAIGN_COLS.split(','))}, cm.addon AS m_addon, "
            "cm.app AS m_app, cm.wave AS m_wave, cm.planned_at AS m_planned, cm.window_day AS m_day, "
            "cm.window_minute AS m_minute, cm.meets_deadline AS m_meets, cm.maintenance_id AS m_mid, "
            "cm.note AS m_note FROM campaign_members AS cm JOIN campaigns AS c ON c.id = cm.campaign_id "
            f"WHERE c.status IN ('running', 'halted') AND cm.addon IN ({', '.join('?' * len(addons))}) "
            "ORDER BY c.created_at, c.id",
            *addons,
        )
        return [
            (
                _campaign(r),
                Member(
                    r["m_addon"],
                    r["m_app"],
                    r["m_wave"],
                    _req(r["m_planned"]),
                    _window(r["m_day"], r["m_minute"]),
                    bool(r["m_meets"]),
                    r["m_mid"],
                    r["m_note"],
                ),
            )
            for r in rows
        ]

    async def set_campaign_member(self, campaign_id: str, addon: str, maintenance_id: str, note: str) -> None:
        await self._db.execute(
            "UPDATE campaign_members SET maintenance_id = ?, note = ? WHERE campaign_id = ? AND addon = ?",
            (maintenance_id, note, campaign_id, addon),
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


def _campaign(r: aiosqlite.Row) -> Campaign:
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


async def _settle(db: aiosqlite.Connection, sql: str) -> None:
    """Runs `sql` to its end even if the caller is cancelled meanwhile, then re-raises the cancellation."""
    task = asyncio.ensure_future(_execute(db, sql))
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
        except Exception:
            break
    if cancelled:
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s failed while its caller was cancelled: %s", sql, task.exception())
        raise asyncio.CancelledError
    task.result()


async def _execute(db: aiosqlite.Connection, sql: str) -> None:
    await db.execute(sql)


# Read-only connections beside the writer's (WAL lets them read while it writes); a read waits only for
# a free one of these, never for the write lock.
READERS = 3


class SqliteStore:
    """One writing connection, whose transactions are serialised by a lock (which SQLite would do for
    writers anyway), and `READERS` read-only ones for `read()`. An in-memory database has only the
    writer (another connection would open another database), so there `read()` takes the lock too."""

    def __init__(self, path: str | Path, readers: int = READERS) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._reader_count = readers
        self._readers: list[aiosqlite.Connection] = []
        self._idle: asyncio.Queue[aiosqlite.Connection] | None = None

    async def open(self) -> None:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA busy_timeout=5000")
        self._db = db
        try:
            await self._migrate()
            await self._open_readers()
        except BaseException:
            await self.close()  # its thread would keep a refused start from exiting
            raise

    async def _open_readers(self) -> None:
        if str(self.path) == ":memory:" or self._reader_count < 1:
            return
        idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for _ in range(self._reader_count):
            r = await aiosqlite.connect(self.path, isolation_level=None)
            self._readers.append(r)
            r.row_factory = aiosqlite.Row
            await r.execute("PRAGMA query_only=ON")  # a write through read() fails instead of locking
            await r.execute("PRAGMA busy_timeout=5000")
            idle.put_nowait(r)
        self._idle = idle

    async def _migrate(self) -> None:
        db = self._conn
        await db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        current = await self.schema_version()
        if current > len(MIGRATIONS):
            # A downgrade: this code does not know the newer tables and columns, so it must not write.
            raise FailedPrecondition(
                f"the state database {self.path} has schema version {current}, written by a newer "
                f"kvmaint (this one knows up to {len(MIGRATIONS)}): run that version, or restore the "
                "backup taken before the upgrade (kvmaint-scheduler restore)."
            )
        for version, script in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            await db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(script):
                    await db.execute(statement)
                await db.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            log.info("database migrated to schema version %d", version)

    async def schema_version(self) -> int:
        async with self._conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def close(self) -> None:
        self._idle = None
        readers, self._readers = self._readers, []
        for r in readers:
            await r.close()
        if self._db is not None:
            await self._db.close()
            self._db = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTx]:
        """One transaction, committed when the body returns and rolled back otherwise.

        Cancellation-safe: aiosqlite runs each statement in its own thread, where a cancelled await does
        not stop it, so BEGIN, COMMIT and ROLLBACK are awaited to their end (`_settle`) and the lock is
        released only once the connection is outside any transaction. A cancellation that arrived
        meanwhile is raised afterwards.
        """
        async with self._lock:
            db = self._conn
            try:
                await _settle(db, "BEGIN IMMEDIATE")
                yield SqliteTx(db)
                await _settle(db, "COMMIT")
            finally:
                if db.in_transaction:
                    await _settle(db, "ROLLBACK")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqliteTx]:
        """A read-only transaction on a reader connection: one snapshot (a deferred `BEGIN` takes it at
        its first read), never the write lock, so it does not wait behind a writer and a writer does
        not wait behind it. It sees every transaction committed before it began. Writing through it
        fails (`PRAGMA query_only`)."""
        idle = self._idle
        if idle is None:
            async with self.transaction() as tx:
                yield tx
            return
        db = await idle.get()
        try:
            await _settle(db, "BEGIN")
            yield SqliteTx(db)
        finally:
            try:
                if db.in_transaction:
                    await _settle(db, "ROLLBACK")  # nothing to keep: it wrote nothing
            finally:
                if self._idle is idle:
                    idle.put_nowait(db)

    def lease_transaction(self) -> AbstractAsyncContextManager[SqliteTx]:
        """The lease rows' transaction: on one process per file, just a transaction."""
        return self.transaction()

    async def last_sequence(self) -> int:
        async with self.read() as tx:
            row = await tx._one("SELECT COALESCE(MAX(sequence), 0) FROM events")
        return int(row[0]) if row else 0

"""PostgreSQL storage through asyncpg's pool: versioned migrations, one transaction per change.

The same contract as `server/storage/sqlite.py` (tests/storage/test_contract.py runs both): every
`transaction()` first takes one transaction-scoped advisory lock, so read-write transactions are
serialised as SQLite's `BEGIN IMMEDIATE` serialises them (the services' read-check-write steps rely on
it), across processes too. Event sequence numbers come from a one-row counter updated under that
transaction, so they are gapless (a rolled-back transaction gives its number back) and commit in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import asyncpg

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
from server.storage.pgnotify import EVENTS_CHANNEL
from server.storage.postgres_bulk import PostgresBulk

log = logging.getLogger(__name__)

# Advisory lock keys (any bigint; these spell "kvmaint" plus a role).
WRITE_LOCK = 0x6B766D61696E7401  # held by every read-write transaction until it ends
MIGRATE_LOCK = 0x6B766D61696E7402  # held while migrating, so two starting processes do not race

# Connections of the read-only pool (`read()`), beside the read-write pool's.
READERS = 4

# Names kvmaint's sessions in pg_stat_activity.
SESSION_SETTINGS = {"application_name": "kvmaint-scheduler"}

# Index i is schema version i + 1 and means the same as SQLite's MIGRATIONS[i] (the contract suite
# checks both lists have the same length): a migration added to one store is added to the other.
MIGRATIONS: list[str] = [
    # 1: the control plane.
    """
    CREATE TABLE apps (
        name TEXT PRIMARY KEY,
        owner_email TEXT NOT NULL,
        maintenance_mode BOOLEAN NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
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
        attachments JSONB NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        servers JSONB NOT NULL,
        window_day INTEGER,
        window_minute INTEGER,
        prev_window_day INTEGER,
        prev_window_minute INTEGER
    );
    CREATE INDEX addons_app ON addons(app, name);
    CREATE INDEX addons_plan ON addons(plan, name);
    CREATE TABLE maintenances (
        id TEXT PRIMARY KEY,
        addon TEXT NOT NULL,
        app TEXT NOT NULL,
        reason TEXT NOT NULL,
        method TEXT NOT NULL,
        status TEXT NOT NULL,
        required_by TIMESTAMPTZ NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        scheduled_for TIMESTAMPTZ,
        previously_scheduled_for TIMESTAMPTZ,
        started_at TIMESTAMPTZ,
        completed_at TIMESTAMPTZ,
        window_day INTEGER,
        window_minute INTEGER,
        current_step TEXT NOT NULL DEFAULT '',
        failure_reason TEXT NOT NULL DEFAULT '',
        write_pause_ms INTEGER NOT NULL DEFAULT -1,
        state JSONB NOT NULL DEFAULT '{}'
    );
    CREATE INDEX maintenances_addon ON maintenances(addon, created_at);
    CREATE INDEX maintenances_app ON maintenances(app, created_at);
    CREATE INDEX maintenances_status ON maintenances(status, scheduled_for);
    CREATE TABLE maintenance_history (
        id BIGSERIAL PRIMARY KEY,
        maintenance_id TEXT NOT NULL REFERENCES maintenances(id) ON DELETE CASCADE,
        time TIMESTAMPTZ NOT NULL,
        status TEXT NOT NULL,
        step TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX history_maintenance ON maintenance_history(maintenance_id, id);
    CREATE TABLE events (
        sequence BIGINT PRIMARY KEY,
        type TEXT NOT NULL,
        time TIMESTAMPTZ NOT NULL,
        app TEXT NOT NULL,
        addon TEXT NOT NULL,
        maintenance_id TEXT NOT NULL,
        message TEXT NOT NULL,
        attributes JSONB NOT NULL
    );
    CREATE INDEX events_app ON events(app, sequence);
    CREATE TABLE event_sequence (one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), last BIGINT NOT NULL);
    INSERT INTO event_sequence (last) VALUES (0);
    """,
    # 2: agents' advertised hosts, so config vars keep naming servers correctly across restarts.
    """
    CREATE TABLE agents (
        host_id TEXT PRIMARY KEY,
        advertise_host TEXT NOT NULL,
        agent_version TEXT NOT NULL,
        last_seen TIMESTAMPTZ NOT NULL
    );
    """,
    # 3: notifications: the outbox (dedupe_key makes enqueueing idempotent), webhooks, given reminders.
    """
    CREATE TABLE outbox (
        id BIGSERIAL PRIMARY KEY,
        kind TEXT NOT NULL,
        dedupe_key TEXT NOT NULL UNIQUE,
        app TEXT NOT NULL,
        recipient TEXT NOT NULL,
        webhook_id TEXT NOT NULL DEFAULT '',
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TIMESTAMPTZ NOT NULL,
        sent_at TIMESTAMPTZ,
        dropped_at TIMESTAMPTZ,
        last_error TEXT NOT NULL DEFAULT '',
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE sent_at IS NULL AND dropped_at IS NULL;
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX webhooks_app ON webhooks(app, created_at);
    CREATE TABLE reminders (
        maintenance_id TEXT NOT NULL,
        scheduled_for TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (maintenance_id, scheduled_for)
    );
    """,
    # 4: freezes (deny periods) of an app, or of the whole fleet (app = '').
    """
    CREATE TABLE freezes (
        id TEXT PRIMARY KEY,
        app TEXT NOT NULL,
        starts_at TIMESTAMPTZ NOT NULL,
        ends_at TIMESTAMPTZ NOT NULL,
        reason TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX freezes_app ON freezes(app, ends_at);
    """,
    # 5: failed attempts of a maintenance that went back to pending (server/domain/lifecycle.py).
    """
    ALTER TABLE maintenances ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE maintenances ADD COLUMN last_failure_reason TEXT NOT NULL DEFAULT '';
    ALTER TABLE maintenances ADD COLUMN needs_operator BOOLEAN NOT NULL DEFAULT FALSE;
    """,
    # 6: the build a maintenance installs (server/domain/builds.py).
    """
    ALTER TABLE maintenances ADD COLUMN target_build TEXT NOT NULL DEFAULT '';
    ALTER TABLE maintenances ADD COLUMN target_version TEXT NOT NULL DEFAULT '';
    ALTER TABLE maintenances ADD COLUMN allow_downgrade BOOLEAN NOT NULL DEFAULT FALSE;
    """,
    # 7: what applications saw of a failover (redirect_ms), and the week the owner scheduled into.
    """
    ALTER TABLE maintenances ADD COLUMN redirect_ms INTEGER NOT NULL DEFAULT -1;
    ALTER TABLE maintenances ADD COLUMN not_before TIMESTAMPTZ;
    """,
    # 8: the Redis users of add-ons whose servers kvmaint placed (server/domain/credentials.py).
    """
    CREATE TABLE addon_credentials (
        addon TEXT PRIMARY KEY,
        app_user TEXT NOT NULL,
        app_password TEXT NOT NULL,
        agent_user TEXT NOT NULL,
        agent_password TEXT NOT NULL,
        tls BOOLEAN NOT NULL DEFAULT FALSE
    );
    """,
    # 9: campaigns (server/domain/campaigns.py): a build rolled out in waves; each member's planned
    # wave and window, and its maintenance once its wave is released.
    """
    CREATE TABLE campaigns (
        id TEXT PRIMARY KEY,
        build TEXT NOT NULL,
        target_version TEXT NOT NULL,
        allow_downgrade BOOLEAN NOT NULL,
        reason TEXT NOT NULL,
        required_by TIMESTAMPTZ NOT NULL,
        target TEXT NOT NULL,
        canary INTEGER NOT NULL,
        waves JSONB NOT NULL,
        soak_seconds DOUBLE PRECISION NOT NULL,
        halt_on_failures INTEGER NOT NULL,
        halt_on_pause_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        wave INTEGER NOT NULL,
        wave_count INTEGER NOT NULL,
        has_canary BOOLEAN NOT NULL,
        halt_reason TEXT NOT NULL DEFAULT '',
        failure_baseline INTEGER NOT NULL DEFAULT 0,
        resumed_at TIMESTAMPTZ,
        ended_at TIMESTAMPTZ,
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX campaigns_status ON campaigns(status, created_at);
    CREATE TABLE campaign_members (
        campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        addon TEXT NOT NULL,
        app TEXT NOT NULL,
        wave INTEGER NOT NULL,
        planned_at TIMESTAMPTZ NOT NULL,
        window_day INTEGER,
        window_minute INTEGER,
        meets_deadline BOOLEAN NOT NULL,
        maintenance_id TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (campaign_id, addon)
    );
    CREATE INDEX campaign_members_wave ON campaign_members(campaign_id, wave);
    CREATE INDEX campaign_members_maintenance ON campaign_members(maintenance_id) WHERE maintenance_id != '';
    """,
    # 10: each add-on's last maintenance (its latest completed one, else its creation), indexed.
    """
    ALTER TABLE addons ADD COLUMN maintained_at TIMESTAMPTZ;
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
    INSERT INTO addon_servers (host, port, addon) SELECT s->>'host', (s->>'port')::integer, a.name
        FROM addons AS a, jsonb_array_elements(a.servers) AS s;
    """,
    # 11: when each pending maintenance's 24-hour reminder falls due, kept by triggers, indexed.
    """
    ALTER TABLE maintenances ADD COLUMN remind_at TIMESTAMPTZ;
    UPDATE maintenances SET remind_at = CASE WHEN status = 'pending' AND scheduled_for IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM reminders AS r WHERE r.maintenance_id = maintenances.id
        AND r.scheduled_for = maintenances.scheduled_for) THEN scheduled_for - interval '1 day' END;
    CREATE INDEX maintenances_remind ON maintenances(remind_at) WHERE remind_at IS NOT NULL;
    CREATE FUNCTION kvmaint_remind_at() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.remind_at := CASE WHEN NEW.status = 'pending' AND NEW.scheduled_for IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM reminders AS r WHERE r.maintenance_id = NEW.id
            AND r.scheduled_for = NEW.scheduled_for) THEN NEW.scheduled_for - interval '1 day' END;
        RETURN NEW;
    END $$;
    CREATE TRIGGER maintenances_remind BEFORE INSERT OR UPDATE OF status, scheduled_for ON maintenances
        FOR EACH ROW EXECUTE FUNCTION kvmaint_remind_at();
    CREATE FUNCTION kvmaint_reminded() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE maintenances SET remind_at = NULL
            WHERE id = NEW.maintenance_id AND scheduled_for = NEW.scheduled_for;
        RETURN NULL;
    END $$;
    CREATE TRIGGER reminders_given AFTER INSERT ON reminders FOR EACH ROW EXECUTE FUNCTION kvmaint_reminded();
    """,
    # 12: scheduler replicas: the leader's lease (a term that only grows) and each replica's heartbeat.
    """
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        term BIGINT NOT NULL,
        address TEXT NOT NULL,
        agent_address TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE schedulers (
        id TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        agent_address TEXT NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        seen_at TIMESTAMPTZ NOT NULL,
        version TEXT NOT NULL
    );
    """,
    # 13: the fleet-wide request (RequireMaintenance for all or a plan) that filed a maintenance, so
    # its reply can stay small and page through what it filed instead of carrying every maintenance.
    """
    ALTER TABLE maintenances ADD COLUMN filing TEXT NOT NULL DEFAULT '';
    CREATE INDEX maintenances_filing ON maintenances(filing, id) WHERE filing != ''
    """,
]

# Recomputes an add-on's `maintained_at` from its completed maintenances (few per add-on: indexed).
_MAINTAINED = (
    "UPDATE addons SET maintained_at = COALESCE((SELECT MAX(m.completed_at) FROM maintenances AS m "
    "WHERE m.addon = addons.name AND m.status = 'completed'), created_at) WHERE name = $1"
)


def is_postgres_url(db: str) -> bool:
    """`--db` names a PostgreSQL database (libpq URL) rather than a SQLite file."""
    return db.startswith(("postgresql://", "postgres://"))


def _ts(dt: datetime | None) -> datetime | None:
    return utc(dt) if dt else None


def _window(day: int | None, minute: int | None) -> Window | None:
    return Window(day, minute) if day is not None and minute is not None else None


def _servers_json(servers: tuple[ServerRef, ...]) -> str:
    return json.dumps([{"host": s.host, "port": s.port, "role": s.role.value} for s in servers])


def _servers(text: str) -> tuple[ServerRef, ...]:
    return tuple(ServerRef(s["host"], int(s["port"]), Role(s["role"])) for s in json.loads(text))


def _count(status: str) -> int:
    """Rows touched, from asyncpg's command tag ("INSERT 0 1", "DELETE 3", "UPDATE 2")."""
    return int(status.rsplit(" ", 1)[-1])


def _app(row: asyncpg.Record) -> App:
    return App(row["name"], row["owner_email"], row["maintenance_mode"], row["created_at"])


def _addon(row: asyncpg.Record) -> Addon:
    return Addon(
        name=row["name"],
        app=row["app"],
        plan=row["plan"],
        kind=row["kind"],
        description=row["description"],
        attachments=tuple(json.loads(row["attachments"])),
        created_at=row["created_at"],
        servers=_servers(row["servers"]),
        window=_window(row["window_day"], row["window_minute"]),
        previous_window=_window(row["prev_window_day"], row["prev_window_minute"]),
    )


def _webhook(row: asyncpg.Record) -> Webhook:
    return Webhook(row["id"], row["app"], row["url"], row["secret"], row["created_at"])


def _outbox(row: asyncpg.Record) -> OutboxItem:
    return OutboxItem(
        kind=Channel(row["kind"]),
        dedupe_key=row["dedupe_key"],
        app=row["app"],
        recipient=row["recipient"],
        subject=row["subject"],
        body=row["body"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"],
        webhook_id=row["webhook_id"],
        id=row["id"],
        attempts=row["attempts"],
        sent_at=row["sent_at"],
        dropped_at=row["dropped_at"],
        last_error=row["last_error"],
    )


_MAINT_COLS = (
    "id, addon, app, reason, method, status, required_by, created_at, scheduled_for, "
    "previously_scheduled_for, started_at, completed_at, window_day, window_minute, current_step, "
    "failure_reason, write_pause_ms, state, attempts, last_failure_reason, needs_operator, "
    "target_build, target_version, allow_downgrade, redirect_ms, not_before"
)
_MAINT_NAMES = [c.strip() for c in _MAINT_COLS.split(",")]


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
        m.needs_operator,
        m.target_build,
        m.target_version,
        m.allow_downgrade,
        m.redirect_ms,
        _ts(m.not_before),
    )


_INSERT_MAINT = (
    f"INSERT INTO maintenances ({_MAINT_COLS}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, len(_MAINT_NAMES) + 1))})"
)
_UPDATE_MAINT = (
    "UPDATE maintenances SET "
    + ", ".join(f"{c} = ${i}" for i, c in enumerate(_MAINT_NAMES[1:], start=2))
    + " WHERE id = $1"
)


class PostgresTx(PostgresBulk):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._db = conn
        # The highest sequence this transaction appended; notified to every replica on commit.
        self.last_event = 0

    async def _one(self, sql: str, *params: Any) -> asyncpg.Record | None:
        return await self._db.fetchrow(sql, *params)

    async def _all(self, sql: str, *params: Any) -> list[asyncpg.Record]:
        return list(await self._db.fetch(sql, *params))

    async def _exec(self, sql: str, *params: Any) -> int:
        return _count(await self._db.execute(sql, *params))

    # apps
    async def get_app(self, name: str) -> App | None:
        row = await self._one("SELECT * FROM apps WHERE name = $1", name)
        return _app(row) if row else None

    async def list_apps(self, after: str, limit: int) -> list[App]:
        rows = await self._all("SELECT * FROM apps WHERE name > $1 ORDER BY name LIMIT $2", after, limit)
        return [_app(r) for r in rows]

    async def insert_app(self, app: App) -> None:
        await self._exec(
            "INSERT INTO apps (name, owner_email, maintenance_mode, created_at) VALUES ($1, $2, $3, $4)",
            app.name,
            app.owner_email,
            app.maintenance_mode,
            _ts(app.created_at),
        )

    async def update_app(self, app: App) -> None:
        await self._exec(
            "UPDATE apps SET owner_email = $1, maintenance_mode = $2 WHERE name = $3",
            app.owner_email,
            app.maintenance_mode,
            app.name,
        )

    async def delete_app(self, name: str) -> None:
        # Credentials have no foreign key to cascade along: the add-ons' passwords go first.
        await self._exec(
            "DELETE FROM addon_credentials WHERE addon IN (SELECT name FROM addons WHERE app = $1)", name
        )
        await self._exec("DELETE FROM apps WHERE name = $1", name)

    # config vars
    async def get_config(self, app: str) -> dict[str, str]:
        rows = await self._all("SELECT key, value FROM config_vars WHERE app = $1 ORDER BY key", app)
        return {r["key"]: r["value"] for r in rows}

    async def set_config(self, app: str, key: str, value: str | None) -> None:
        if value is None:
            await self._exec("DELETE FROM config_vars WHERE app = $1 AND key = $2", app, key)
        else:
            await self._exec(
                "INSERT INTO config_vars (app, key, value) VALUES ($1, $2, $3) "
                "ON CONFLICT (app, key) DO UPDATE SET value = excluded.value",
                app,
                key,
                value,
            )

    # add-ons
    async def get_addon(self, name: str) -> Addon | None:
        row = await self._one("SELECT * FROM addons WHERE name = $1", name)
        return _addon(row) if row else None

    async def list_addons(self, app: str | None, after: str, limit: int) -> list[Addon]:
        if app:
            rows = await self._all(
                "SELECT * FROM addons WHERE app = $1 AND name > $2 ORDER BY name LIMIT $3", app, after, limit
            )
        else:
            rows = await self._all(
                "SELECT * FROM addons WHERE name > $1 ORDER BY name LIMIT $2", after, limit
            )
        return [_addon(r) for r in rows]

    async def list_addons_by_plan(self, plan: str | None) -> list[Addon]:
        if plan:
            rows = await self._all("SELECT * FROM addons WHERE plan = $1 ORDER BY name", plan)
        else:
            rows = await self._all("SELECT * FROM addons ORDER BY name")
        return [_addon(r) for r in rows]

    async def insert_addon(self, addon: Addon) -> None:
        await self._exec(
            "INSERT INTO addons (name, app, plan, kind, description, attachments, created_at, servers, "
            "window_day, window_minute, prev_window_day, prev_window_minute) "
            "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb, $9, $10, $11, $12)",
            *self._addon_params(addon),
        )
        await self._exec(_MAINTAINED, addon.name)
        await self._index_servers(addon)

    async def update_addon(self, addon: Addon) -> None:
        await self._exec(
            "UPDATE addons SET app = $2, plan = $3, kind = $4, description = $5, attachments = $6::jsonb, "
            "created_at = $7, servers = $8::jsonb, window_day = $9, window_minute = $10, "
            "prev_window_day = $11, prev_window_minute = $12 WHERE name = $1",
            *self._addon_params(addon),
        )
        await self._exec(_MAINTAINED, addon.name)
        await self._index_servers(addon)

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

    async def _index_servers(self, addon: Addon) -> None:
        """addon_servers (migration 10) indexes add-ons by server: `CreateAddon` checks without a scan."""
        await self._exec("DELETE FROM addon_servers WHERE addon = $1", addon.name)
        for ref in addon.servers:
            await self._exec(
                "INSERT INTO addon_servers (host, port, addon) VALUES ($1, $2, $3)",
                ref.host,
                ref.port,
                addon.name,
            )

    async def server_owners(self, servers: list[tuple[str, int]]) -> dict[str, str]:
        """ "host:port" -> the add-on registered on it, for those of `servers` that are taken."""
        out: dict[str, str] = {}
        for host, port in servers:
            row = await self._one(
                "SELECT addon FROM addon_servers WHERE host = $1 AND port = $2 LIMIT 1", host, port
            )
            if row is not None:
                out[f"{host}:{port}"] = row["addon"]
        return out

    async def routine_candidates(self, maintained_before: datetime) -> list[tuple[Addon, datetime]]:
        """Add-ons last maintained at or before the cutoff with no active maintenance, and that time."""
        rows = await self._all(
            "SELECT * FROM addons AS a WHERE a.maintained_at <= $1 AND NOT EXISTS (SELECT 1 FROM "
            "maintenances AS m WHERE m.addon = a.name AND m.status IN ('pending', 'preparing', 'ready', "
            "'running')) ORDER BY a.name",
            _ts(maintained_before),
        )
        return [(_addon(r), r["maintained_at"]) for r in rows]

    async def delete_addon(self, name: str) -> None:
        await self._exec("DELETE FROM addons WHERE name = $1", name)
        await self._exec("DELETE FROM addon_credentials WHERE addon = $1", name)

    async def get_credentials(self, addon: str) -> AddonCredentials | None:
        r = await self._one("SELECT * FROM addon_credentials WHERE addon = $1", addon)
        if r is None:
            return None
        return AddonCredentials(
            app_user=r["app_user"],
            app_password=r["app_password"],
            agent_user=r["agent_user"],
            agent_password=r["agent_password"],
            tls=bool(r["tls"]),
        )

    async def set_credentials(self, addon: str, creds: AddonCredentials) -> None:
        await self._exec(
            "INSERT INTO addon_credentials (addon, app_user, app_password, agent_user, agent_password, tls) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (addon) DO UPDATE SET app_user = excluded.app_user, "
            "app_password = excluded.app_password, agent_user = excluded.agent_user, "
            "agent_password = excluded.agent_password, tls = excluded.tls",
            addon,
            creds.app_user,
            creds.app_password,
            creds.agent_user,
            creds.agent_password,
            creds.tls,
        )

    # maintenances
    async def _load(self, rows: list[asyncpg.Record], history: bool = True) -> list[Maintenance]:
        """Maintenances with their histories (unless `history` is False: the periodic passes never print
        them), read in one query for all of them."""
        if not rows:
            return []
        hist: dict[str, list[HistoryEntry]] = {r["id"]: [] for r in rows}
        for h in await self._all(
            "SELECT maintenance_id, time, status, step, message FROM maintenance_history "
            "WHERE maintenance_id = ANY($1::text[]) ORDER BY id",
            list(hist) if history else [],
        ):
            entry = HistoryEntry(h["time"], Status(h["status"]), h["step"], h["message"])
            hist[h["maintenance_id"]].append(entry)
        return [
            Maintenance(
                id=r["id"],
                addon=r["addon"],
                app=r["app"],
                reason=Reason(r["reason"]),
                method=Method(r["method"]),
                status=Status(r["status"]),
                required_by=r["required_by"],
                created_at=r["created_at"],
                scheduled_for=r["scheduled_for"],
                previously_scheduled_for=r["previously_scheduled_for"],
                started_at=r["started_at"],
                completed_at=r["completed_at"],
                window=_window(r["window_day"], r["window_minute"]),
                current_step=r["current_step"],
                failure_reason=r["failure_reason"],
                write_pause_ms=r["write_pause_ms"],
                state=DriverState.from_json(json.loads(r["state"])),
                attempts=r["attempts"],
                last_failure_reason=r["last_failure_reason"],
                needs_operator=r["needs_operator"],
                target_build=r["target_build"],
                target_version=r["target_version"],
                allow_downgrade=r["allow_downgrade"],
                redirect_ms=r["redirect_ms"],
                not_before=r["not_before"],
                history=tuple(hist[r["id"]]),
            )
            for r in rows
        ]

    async def _maints(self, where: str, *params: Any) -> list[Maintenance]:
        return await self._load(await self._all(f"SELECT {_MAINT_COLS} FROM maintenances {where}", *params))

    async def _bare(self, where: str, *params: Any) -> list[Maintenance]:
        """As `_maints`, without histories."""
        rows = await self._all(f"SELECT {_MAINT_COLS} FROM maintenances {where}", *params)
        return await self._load(rows, history=False)

    async def get_maintenance(self, id: str) -> Maintenance | None:
        found = await self._maints("WHERE id = $1", id)
        return found[0] if found else None

    async def insert_maintenance(self, m: Maintenance) -> None:
        await self._exec(_INSERT_MAINT, *_maint_params(m))
        for h in m.history:
            await self.add_history(m.id, h)
        if m.status is Status.COMPLETED:
            await self._exec(_MAINTAINED, m.addon)

    async def update_maintenance(self, m: Maintenance) -> None:
        await self._exec(_UPDATE_MAINT, *_maint_params(m))
        if m.status is Status.COMPLETED:
            await self._exec(_MAINTAINED, m.addon)

    async def add_history(self, maintenance_id: str, entry: HistoryEntry) -> None:
        await self._exec(
            "INSERT INTO maintenance_history (maintenance_id, time, status, step, message) "
            "VALUES ($1, $2, $3, $4, $5)",
            maintenance_id,
            _ts(entry.time),
            entry.status.value,
            entry.step,
            entry.message,
        )

    async def active_maintenance(self, addon: str) -> Maintenance | None:
        found = await self._maints(
            "WHERE addon = $1 AND status IN ('pending', 'preparing', 'ready', 'running') "
            "ORDER BY created_at DESC LIMIT 1",
            addon,
        )
        return found[0] if found else None

    async def latest_maintenances(self, addon: str, limit: int) -> list[Maintenance]:
        return await self._maints("WHERE addon = $1 ORDER BY created_at DESC, id DESC LIMIT $2", addon, limit)

    async def list_maintenances(self, app: str, after: str, limit: int) -> list[Maintenance]:
        # `after` is "created_at|id" of the last row of the previous page (newest first).
        if after:
            created, _, mid = after.partition("|")
            return await self._maints(
                "WHERE app = $1 AND (created_at < $2 OR (created_at = $2 AND id < $3)) "
                "ORDER BY created_at DESC, id DESC LIMIT $4",
                app,
                utc(datetime.fromisoformat(created)),
                mid,
                limit,
            )
        return await self._maints("WHERE app = $1 ORDER BY created_at DESC, id DESC LIMIT $2", app, limit)

    async def in_progress_maintenances(self) -> list[Maintenance]:
        return await self._bare("WHERE status IN ('preparing', 'ready', 'running') ORDER BY started_at")

    async def due_maintenances(self, now: datetime) -> list[Maintenance]:
        return await self._bare(
            "WHERE status = 'pending' AND scheduled_for <= $1 AND NOT needs_operator "
            "AND NOT EXISTS (SELECT 1 FROM campaign_members AS cm JOIN campaigns AS c "
            "ON c.id = cm.campaign_id WHERE cm.maintenance_id = maintenances.id "
            "AND cm.maintenance_id != '' AND c.status != 'running') "
            "ORDER BY required_by, scheduled_for",
            _ts(now),
        )

    async def latest_of(self, addons: list[str]) -> dict[str, Maintenance]:
        """Each of `addons`' most recent maintenance (as `latest_maintenances(a, 1)`), without history."""
        if not addons:
            return {}
        found = await self._bare(
            "WHERE id IN (SELECT DISTINCT ON (addon) id FROM maintenances WHERE addon = ANY($1::text[]) "
            "ORDER BY addon, created_at DESC, id DESC)",
            addons,
        )
        return {m.addon: m for m in found}

    # freezes
    async def list_freezes(self, app: str | None, ending_after: datetime) -> list[Freeze]:
        """Freezes still in force after `ending_after`: of `app` and of the fleet, or all when app is None."""
        if app is None:
            rows = await self._all(
                "SELECT * FROM freezes WHERE ends_at > $1 ORDER BY starts_at, id", _ts(ending_after)
            )
        else:
            rows = await self._all(
                "SELECT * FROM freezes WHERE ends_at > $1 AND app IN ($2, '') ORDER BY starts_at, id",
                _ts(ending_after),
                app,
            )
        return [
            Freeze(r["id"], r["app"], r["starts_at"], r["ends_at"], r["reason"], r["created_at"])
            for r in rows
        ]

    async def insert_freeze(self, f: Freeze) -> None:
        await self._exec(
            "INSERT INTO freezes (id, app, starts_at, ends_at, reason, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            f.id,
            f.app,
            _ts(f.starts_at),
            _ts(f.ends_at),
            f.reason,
            _ts(f.created_at),
        )

    async def delete_freeze(self, id: str) -> bool:
        return await self._exec("DELETE FROM freezes WHERE id = $1", id) > 0

    async def pending_maintenances(self, app: str | None) -> list[Maintenance]:
        if app is None:
            return await self._maints("WHERE status = 'pending'")
        return await self._maints("WHERE status = 'pending' AND app = $1", app)

    async def last_completed(self) -> dict[str, datetime]:
        """Each add-on's latest completed maintenance."""
        rows = await self._all(
            "SELECT addon, MAX(completed_at) AS at FROM maintenances "
            "WHERE status = 'completed' GROUP BY addon"
        )
        return {r["addon"]: r["at"] for r in rows}

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
        await self._exec(
            "INSERT INTO agents (host_id, advertise_host, agent_version, last_seen) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (host_id) DO UPDATE SET advertise_host = excluded.advertise_host, "
            "agent_version = excluded.agent_version, last_seen = excluded.last_seen",
            host_id,
            advertise_host,
            version,
            _ts(seen),
        )

    async def list_agents(self) -> dict[str, str]:
        rows = await self._all("SELECT host_id, advertise_host FROM agents")
        return {r["host_id"]: r["advertise_host"] for r in rows}

    # leases and replicas: expiry is judged on the database's clock (clock_timestamp(), not the
    # transaction's start time now(): the write lock may have been waited for), so replicas' clocks
    # never matter.
    async def acquire_lease(
        self, name: str, holder: str, address: str, agent_address: str, duration: timedelta
    ) -> int | None:
        term = await self._db.fetchval(
            "INSERT INTO leases AS l (name, holder, term, address, agent_address, expires_at) "
            "VALUES ($1, $2, 1, $3, $4, clock_timestamp() + $5::interval) "
            "ON CONFLICT (name) DO UPDATE SET "
            "term = CASE WHEN l.holder = excluded.holder AND l.expires_at > clock_timestamp() "
            "THEN l.term ELSE l.term + 1 END, holder = excluded.holder, address = excluded.address, "
            "agent_address = excluded.agent_address, expires_at = excluded.expires_at "
            "WHERE l.holder = excluded.holder OR l.expires_at <= clock_timestamp() RETURNING term",
            name,
            holder,
            address,
            agent_address,
            duration,
        )
        return None if term is None else int(term)

    async def take_lease(
        self, name: str, holder: str, address: str, agent_address: str, duration: timedelta
    ) -> int:
        term = await self._db.fetchval(
            "INSERT INTO leases AS l (name, holder, term, address, agent_address, expires_at) "
            "VALUES ($1, $2, 1, $3, $4, clock_timestamp() + $5::interval) "
            "ON CONFLICT (name) DO UPDATE SET term = l.term + 1, holder = excluded.holder, "
            "address = excluded.address, agent_address = excluded.agent_address, "
            "expires_at = excluded.expires_at RETURNING term",
            name,
            holder,
            address,
            agent_address,
            duration,
        )
        return int(term)

    async def release_lease(self, name: str, holder: str, term: int) -> None:
        await self._exec(
            "UPDATE leases SET expires_at = clock_timestamp() WHERE name = $1 AND holder = $2 AND term = $3 "
            "AND expires_at > clock_timestamp()",
            name,
            holder,
            term,
        )

    async def get_leader(self, name: str = SCHEDULER_LEASE) -> LeaderInfo | None:
        row = await self._one(
            "SELECT * FROM leases WHERE name = $1 AND expires_at > clock_timestamp()", name
        )
        if row is None:
            return None
        return LeaderInfo(
            row["holder"], int(row["term"]), row["address"], row["agent_address"], utc(row["expires_at"])
        )

    async def upsert_scheduler(self, id: str, address: str, agent_address: str, version: str) -> None:
        await self._exec(
            "INSERT INTO schedulers (id, address, agent_address, started_at, seen_at, version) "
            "VALUES ($1, $2, $3, clock_timestamp(), clock_timestamp(), $4) ON CONFLICT (id) DO UPDATE SET "
            "address = excluded.address, agent_address = excluded.agent_address, "
            "seen_at = excluded.seen_at, version = excluded.version",
            id,
            address,
            agent_address,
            version,
        )

    async def delete_scheduler(self, id: str) -> None:
        await self._exec("DELETE FROM schedulers WHERE id = $1", id)

    async def list_schedulers(self) -> list[SchedulerInfo]:
        rows = await self._all("SELECT * FROM schedulers ORDER BY id")
        return [
            SchedulerInfo(
                r["id"], r["address"], r["agent_address"], utc(r["started_at"]), utc(r["seen_at"]),
                r["version"],
            )
            for r in rows
        ]

    # events
    async def append_event(self, event: Event) -> int:
        seq: int = await self._db.fetchval(
            "WITH next AS (UPDATE event_sequence SET last = last + 1 RETURNING last) "
            "INSERT INTO events (sequence, type, time, app, addon, maintenance_id, message, attributes) "
            "SELECT last, $1, $2, $3, $4, $5, $6, $7::jsonb FROM next RETURNING sequence",
            event.type.value,
            _ts(event.time),
            event.app,
            event.addon,
            event.maintenance_id,
            event.message,
            json.dumps(event.attributes, sort_keys=True),
        )
        self.last_event = max(self.last_event, seq)
        return seq

    async def events_after(self, sequence: int, app: str, addon: str, limit: int) -> list[Event]:
        sql = "SELECT * FROM events WHERE sequence > $1"
        params: list[Any] = [sequence]
        if app:
            params.append(app)
            sql += f" AND app = ${len(params)}"
        if addon:
            params.append(addon)
            sql += f" AND addon = ${len(params)}"
        params.append(limit)
        sql += f" ORDER BY sequence LIMIT ${len(params)}"
        return [
            Event(
                sequence=r["sequence"],
                type=EventType(r["type"]),
                time=r["time"],
                app=r["app"],
                addon=r["addon"],
                maintenance_id=r["maintenance_id"],
                message=r["message"],
                attributes=json.loads(r["attributes"]),
            )
            for r in await self._all(sql, *params)
        ]

    # notifications
    async def insert_webhook(self, hook: Webhook) -> None:
        await self._exec(
            "INSERT INTO webhooks (id, app, url, secret, created_at) VALUES ($1, $2, $3, $4, $5)",
            hook.id,
            hook.app,
            hook.url,
            hook.secret,
            _ts(hook.created_at),
        )

    async def get_webhook(self, id: str) -> Webhook | None:
        row = await self._one("SELECT * FROM webhooks WHERE id = $1", id)
        return _webhook(row) if row else None

    async def list_webhooks(self, app: str) -> list[Webhook]:
        rows = await self._all("SELECT * FROM webhooks WHERE app = $1 ORDER BY created_at, id", app)
        return [_webhook(r) for r in rows]

    async def delete_webhook(self, id: str) -> None:
        await self._exec("DELETE FROM webhooks WHERE id = $1", id)

    async def enqueue(self, item: OutboxItem) -> bool:
        """False when an item with the same dedupe key is already there (then nothing is written)."""
        inserted = await self._exec(
            "INSERT INTO outbox (kind, dedupe_key, app, recipient, webhook_id, subject, body, attempts, "
            "next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9) "
            "ON CONFLICT (dedupe_key) DO NOTHING",
            item.kind.value,
            item.dedupe_key,
            item.app,
            item.recipient,
            item.webhook_id,
            item.subject,
            item.body,
            _ts(item.next_attempt_at),
            _ts(item.created_at),
        )
        return inserted == 1

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Rows due now, oldest first, except those behind an earlier undelivered row to the same
        destination that is not due yet: each recipient (or webhook) gets its notices in order."""
        rows = await self._all(
            "SELECT * FROM outbox AS o "
            "WHERE sent_at IS NULL AND dropped_at IS NULL AND next_attempt_at <= $1 "
            "AND NOT EXISTS (SELECT 1 FROM outbox AS p WHERE p.sent_at IS NULL AND p.dropped_at IS NULL "
            "AND p.id < o.id AND p.kind = o.kind AND p.recipient = o.recipient "
            "AND p.webhook_id = o.webhook_id AND p.next_attempt_at > $1) "
            "ORDER BY id LIMIT $2",
            _ts(now),
            limit,
        )
        return [_outbox(r) for r in rows]

    async def list_outbox(self, after_id: int, limit: int) -> list[OutboxItem]:
        rows = await self._all("SELECT * FROM outbox WHERE id > $1 ORDER BY id LIMIT $2", after_id, limit)
        return [_outbox(r) for r in rows]

    async def mark_sent(self, id: int, now: datetime) -> None:
        await self._exec(
            "UPDATE outbox SET sent_at = $1, attempts = attempts + 1, last_error = '' WHERE id = $2",
            _ts(now),
            id,
        )

    async def mark_retry(self, id: int, error: str, next_attempt_at: datetime) -> None:
        await self._exec(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 WHERE id = $3",
            error,
            _ts(next_attempt_at),
            id,
        )

    async def mark_dropped(self, id: int, error: str, now: datetime) -> None:
        await self._exec(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, dropped_at = $2 WHERE id = $3",
            error,
            _ts(now),
            id,
        )

    async def prune_outbox(self, before: datetime) -> int:
        return await self._exec("DELETE FROM outbox WHERE COALESCE(sent_at, dropped_at) < $1", _ts(before))

    async def starting_between(self, after: datetime, until: datetime) -> list[Maintenance]:
        """Pending maintenances with after < scheduled_for <= until (the reminders' candidates)."""
        return await self._bare(
            "WHERE status = 'pending' AND scheduled_for > $1 AND scheduled_for <= $2 ORDER BY scheduled_for",
            _ts(after),
            _ts(until),
        )

    async def reminders_due(self, now: datetime) -> list[Maintenance]:
        """Maintenances whose reminder fell due by `now` and was not given (nor dropped), without
        history: through the remind_at index, so as many as are due, not the fleet."""
        return await self._bare(
            "WHERE remind_at IS NOT NULL AND remind_at <= $1 ORDER BY remind_at", _ts(now)
        )

    async def next_reminder(self) -> datetime | None:
        """When the earliest reminder not yet given falls due (one index probe)."""
        at: datetime | None = await self._db.fetchval(
            "SELECT MIN(remind_at) FROM maintenances WHERE remind_at IS NOT NULL"
        )
        return at

    async def drop_reminder(self, maintenance_id: str) -> None:
        """No reminder for this schedule any more (it is too late for one); a new schedule sets another."""
        await self._exec("UPDATE maintenances SET remind_at = NULL WHERE id = $1", maintenance_id)

    async def mark_reminded(self, maintenance_id: str, scheduled_for: datetime) -> bool:
        """False when the reminder for this (maintenance, scheduled_for) was already given."""
        inserted = await self._exec(
            "INSERT INTO reminders (maintenance_id, scheduled_for) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            maintenance_id,
            _ts(scheduled_for),
        )
        return inserted == 1

    # campaigns
    async def insert_campaign(self, c: Campaign, members: list[Member]) -> None:
        await self._exec(
            f"INSERT INTO campaigns ({_CAMPAIGN_COLS}) VALUES "
            f"({', '.join(f'${i}' for i in range(1, _CAMPAIGN_N + 1))})",
            *_campaign_params(c),
        )
        await self._db.executemany(
            "INSERT INTO campaign_members (campaign_id, addon, app, wave, planned_at, window_day, "
            "window_minute, meets_deadline, maintenance_id, note) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            [
                (
                    c.id,
                    m.addon,
                    m.app,
                    m.wave,
                    _ts(m.planned_at),
                    m.window.day if m.window else None,
                    m.window.start_minute if m.window else None,
                    m.meets_deadline,
                    m.maintenance_id,
                    m.note,
                )
                for m in members
            ],
        )

    async def update_campaign(self, c: Campaign) -> None:
        cols = [x.strip() for x in _CAMPAIGN_COLS.split(",")]
        sets = ", ".join(f"{x} = ${i}" for i, x in enumerate(cols[1:], start=2))
        await self._exec(f"UPDATE campaigns SET {sets} WHERE id = $1", *_campaign_params(c))

    async def get_campaign(self, id: str) -> Campaign | None:
        row = await self._one(f"SELECT {_CAMPAIGN_COLS} FROM campaigns WHERE id = $1", id)
        return _campaign(row) if row else None

    async def list_campaigns(self, status: CampaignStatus | None = None) -> list[Campaign]:
        if status is None:
            rows = await self._all(f"SELECT {_CAMPAIGN_COLS} FROM campaigns ORDER BY created_at, id")
        else:
            rows = await self._all(
                f"SELECT {_CAMPAIGN_COLS} FROM campaigns WHERE status = $1 ORDER BY created_at, id",
                status.value,
            )
        return [_campaign(r) for r in rows]

    async def campaign_members(self, campaign_id: str, wave: int | None = None) -> list[MemberState]:
        """Members (of one wave, or all), each with its maintenance as it stands, in planned order."""
        sql = (
            "SELECT cm.*, m.status AS m_status, m.attempts AS m_attempts, m.write_pause_ms AS m_pause, "
            "m.completed_at AS m_completed, m.scheduled_for AS m_scheduled FROM campaign_members AS cm "
            "LEFT JOIN maintenances AS m ON m.id = cm.maintenance_id AND cm.maintenance_id != '' "
            "WHERE cm.campaign_id = $1"
        )
        params: list[Any] = [campaign_id]
        if wave is not None:
            sql += " AND cm.wave = $2"
            params.append(wave)
        rows = await self._all(sql + " ORDER BY cm.wave, cm.planned_at, cm.addon", *params)
        return [
            MemberState(
                _member(r),
                r["m_status"],
                r["m_attempts"] or 0,
                r["m_pause"] if r["m_pause"] is not None else -1,
                r["m_completed"],
                r["m_scheduled"],
            )
            for r in rows
        ]

    async def campaign_candidates(
        self, plan: str | None, apps: list[str] | None, with_servers: bool = False
    ) -> list[tuple[Candidate, tuple[str, ...]]]:
        """Add-ons as a campaign plans them (name, app, window), with their servers' host:port only when
        asked: only the columns planning reads."""
        sql = "SELECT name, app, window_day, window_minute" + (", servers" if with_servers else "")
        sql += " FROM addons"
        params: list[Any] = []
        if plan:
            sql += " WHERE plan = $1"
            params.append(plan)
        elif apps is not None:
            sql += " WHERE app = ANY($1::text[])"
            params.append(list(apps))
        rows = await self._all(sql + " ORDER BY name", *params)
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
                tuple(f"{x['host']}:{x['port']}" for x in json.loads(r[4])) if with_servers else (),
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
            "WHERE c.status IN ('running', 'halted') AND cm.addon = ANY($1::text[]) "
            "ORDER BY c.created_at, c.id",
            list(addons),
        )
        return [
            (
                _campaign(r),
                Member(
                    r["m_addon"],
                    r["m_app"],
                    r["m_wave"],
                    r["m_planned"],
                    _window(r["m_day"], r["m_minute"]),
                    bool(r["m_meets"]),
                    r["m_mid"],
                    r["m_note"],
                ),
            )
            for r in rows
        ]

    async def set_campaign_member(self, campaign_id: str, addon: str, maintenance_id: str, note: str) -> None:
        await self._exec(
            "UPDATE campaign_members SET maintenance_id = $1, note = $2 "
            "WHERE campaign_id = $3 AND addon = $4",
            maintenance_id,
            note,
            campaign_id,
            addon,
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
        c.allow_downgrade,
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
        c.has_canary,
        c.halt_reason,
        c.failure_baseline,
        _ts(c.resumed_at),
        _ts(c.ended_at),
        _ts(c.created_at),
    )


def _campaign(r: asyncpg.Record) -> Campaign:
    spec = Spec(
        build=r["build"],
        reason=r["reason"],
        required_by=r["required_by"],
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
        allow_downgrade=r["allow_downgrade"],
        status=CampaignStatus(r["status"]),
        wave=r["wave"],
        waves=r["wave_count"],
        created_at=r["created_at"],
        has_canary=r["has_canary"],
        halt_reason=r["halt_reason"],
        failure_baseline=r["failure_baseline"],
        resumed_at=r["resumed_at"],
        ended_at=r["ended_at"],
    )


def _member(r: asyncpg.Record) -> Member:
    return Member(
        r["addon"],
        r["app"],
        r["wave"],
        r["planned_at"],
        _window(r["window_day"], r["window_minute"]),
        bool(r["meets_deadline"]),
        r["maintenance_id"],
        r["note"],
    )


class PostgresStore:
    """A pool of connections to one database. Transactions are serialised by an advisory lock (see the
    module docstring). Several schedulers may share it: a lease elects the one that acts (server/replica/)."""

    def __init__(self, dsn: str, min_size: int = 1, max_size: int = 4, readers: int = READERS) -> None:
        self.dsn = dsn
        self._min, self._max = min_size, max_size
        self._reader_count = readers
        self._pool: asyncpg.Pool | None = None
        self._reads: asyncpg.Pool | None = None
        # Replicas: a session idle inside a transaction this long is ended by the server. Every write
        # holds the one write lock, so a replica frozen mid-transaction (SIGSTOP, a stalled VM) would
        # otherwise stop every other replica's writes, the next leader's included. None: no limit.
        self.stall_seconds: float | None = None
        # The leadership's own connection (lease_transaction): renewals never queue behind the pool.
        self._lease_conn: asyncpg.Connection | None = None
        self._lease_lock = asyncio.Lock()

    def _settings(self) -> dict[str, str]:
        settings = dict(SESSION_SETTINGS)
        if self.stall_seconds is not None:
            settings["idle_in_transaction_session_timeout"] = str(max(1, int(self.stall_seconds * 1000)))
        return settings

    async def open(self) -> None:
        pool = await asyncpg.create_pool(
            self.dsn, min_size=self._min, max_size=self._max, server_settings=self._settings()
        )
        self._pool = pool
        try:
            await self._migrate()
            # A pool of its own: writers queued on the advisory lock hold their connections, and a read
            # must not wait for one of those.
            self._reads = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=self._reader_count, server_settings=SESSION_SETTINGS
            )
        except BaseException:
            await self.close()
            raise

    @property
    def _p(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    async def _migrate(self) -> None:
        async with self._p.acquire() as conn:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK)
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"
                )
                current = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            if current > len(MIGRATIONS):
                # A downgrade: this code does not know the newer tables and columns, so it must not write.
                raise FailedPrecondition(
                    f"the state database {redacted(self.dsn)} has schema version {current}, written by a "
                    f"newer kvmaint (this one knows up to {len(MIGRATIONS)}): run that version, or restore "
                    "the dump taken before the upgrade (pg_restore)."
                )
            for version, script in enumerate(MIGRATIONS, start=1):
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK)
                    done = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                    if version <= done:
                        continue
                    await conn.execute(script)  # PostgreSQL's DDL is transactional: all of it or none
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                log.info("database migrated to schema version %d", version)

    async def schema_version(self) -> int:
        async with self._p.acquire() as conn:
            return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    async def close(self) -> None:
        if self._reads is not None:
            reads, self._reads = self._reads, None
            await reads.close()
        if self._lease_conn is not None:
            conn, self._lease_conn = self._lease_conn, None
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTx]:
        """One transaction, committed when the body returns and rolled back otherwise.

        Cancellation-safe as SQLite's: COMMIT, ROLLBACK and the connection's return to the pool are
        awaited to their end even when the caller is cancelled (`_settle`), so when this block is left
        the connection is back in the pool outside any transaction (or closed by the pool, when a
        statement cancelled on the server left it in doubt). A cancellation that arrived meanwhile is
        raised afterwards.
        """
        pool = self._p
        conn = await pool.acquire()
        tx = conn.transaction()
        try:
            await tx.start()
            await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
            ptx = PostgresTx(conn)
            yield ptx
            if ptx.last_event:
                # Queued with the transaction, delivered to every listener once it commits
                # (server/storage/pgnotify.py): other replicas' buses learn of these events at once.
                await conn.execute("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, str(ptx.last_event))
            await _settle(tx.commit())
        except BaseException:
            if conn.is_in_transaction():
                with contextlib.suppress(Exception):  # the pool's reset rolls back or closes it instead
                    await _settle(tx.rollback())
            raise
        finally:
            await _settle(pool.release(conn))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[PostgresTx]:
        """A read-only transaction on the readers' pool, without the advisory lock: it does not wait
        behind a writer. REPEATABLE READ READ ONLY, so all its reads see one snapshot, taken at its first
        statement (after every commit that returned before it began). Writing through it fails."""
        pool = self._reads
        if pool is None:
            raise RuntimeError("store is not open")
        conn = await pool.acquire()
        tx = conn.transaction(isolation="repeatable_read", readonly=True)
        try:
            await tx.start()
            yield PostgresTx(conn)
            await _settle(tx.commit())
        except BaseException:
            if conn.is_in_transaction():
                with contextlib.suppress(Exception):
                    await _settle(tx.rollback())
            raise
        finally:
            await _settle(pool.release(conn))

    @asynccontextmanager
    async def lease_transaction(self) -> AsyncIterator[PostgresTx]:
        """A transaction for the lease and `schedulers` rows only, on a connection of its own and
        without the write lock: those statements are atomic one by one, and a renewal must not wait
        behind other replicas' writes (a long one would cost the leader its lease). A transaction that
        failed or was cancelled drops the connection (the server rolls it back); the next one dials."""
        self._p  # noqa: B018 - raises when the store is not open
        async with self._lease_lock:
            conn = self._lease_conn
            if conn is None or conn.is_closed():
                conn = await asyncpg.connect(self.dsn, server_settings=self._settings())
                self._lease_conn = conn
            try:
                async with conn.transaction():
                    yield PostgresTx(conn)
            except BaseException:
                self._lease_conn = None
                conn.terminate()
                raise

    async def last_sequence(self) -> int:
        async with self._p.acquire() as conn:
            return int(await conn.fetchval("SELECT last FROM event_sequence"))


async def _settle(step: Awaitable[Any]) -> None:
    """Runs `step` to its end even if the caller is cancelled meanwhile, then re-raises the cancellation
    (the asyncpg counterpart of `storage/sqlite._settle`)."""
    task = asyncio.ensure_future(step)
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
            log.warning("a transaction's end failed while its caller was cancelled: %s", task.exception())
        raise asyncio.CancelledError
    task.result()


def redacted(dsn: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = dsn.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return dsn
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"

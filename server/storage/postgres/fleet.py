"""Apps, config vars, add-ons, their servers and credentials, agents."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from server.domain.credentials import AddonCredentials
from server.domain.models import (
    Addon,
    App,
)
from server.storage.postgres.base import TxBase
from server.storage.postgres.rows import _MAINTAINED, _addon, _app, _servers_json, _ts


class FleetTx(TxBase):
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

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
from server.storage.sqlite.base import TxBase
from server.storage.sqlite.rows import _MAINTAINED, _addon, _app, _index_servers, _req, _servers_json, _ts


class FleetTx(TxBase):
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
            "'running')) ORDER BY +a.name",  # `+`: by the maintained_at index, not a scan in name order
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

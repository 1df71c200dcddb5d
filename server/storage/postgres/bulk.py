"""PostgreSQL's bulk writes and paged reads for fleet-wide work: many rows per call (asyncpg's
executemany pipelines them: one round trip per batch, not per row), so a 100k-add-on fleet is written or
filed in seconds. Each writes exactly the rows of its one-at-a-time counterpart in this package."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from server.domain.models import Addon, App, HistoryEntry, Maintenance, Status

if TYPE_CHECKING:
    from server.storage.postgres.store import PostgresTx

ACTIVE = "('pending', 'preparing', 'ready', 'running')"
# `_MAINTAINED` for many add-ons in one statement: the completed maintenances of the batch aggregated once
# (per row, on freshly loaded tables without statistics, the planner scanned every maintenance each time).
MAINTAINED = (
    "WITH d AS (SELECT m.addon, MAX(m.completed_at) AS done FROM maintenances AS m "
    "WHERE m.addon = ANY($1::text[]) AND m.status = 'completed' GROUP BY m.addon) "
    "UPDATE addons AS a SET maintained_at = COALESCE(d.done, a.created_at) "
    "FROM addons AS b LEFT JOIN d ON d.addon = b.name WHERE b.name = ANY($1::text[]) AND a.name = b.name"
)


class PostgresBulk:
    """Mixed into `PostgresTx` (which provides `_db` and `_load`)."""

    _db: asyncpg.Connection

    async def insert_apps(self, apps: list[App]) -> None:
        from server.storage.postgres.rows import _ts

        await self._db.executemany(
            "INSERT INTO apps (name, owner_email, maintenance_mode, created_at) VALUES ($1, $2, $3, $4)",
            [(a.name, a.owner_email, a.maintenance_mode, _ts(a.created_at)) for a in apps],
        )

    async def insert_addons(self, addons: list[Addon]) -> None:
        """The rows of `insert_addon` for each (the add-on, its `maintained_at`, its servers' index)."""
        from server.storage.postgres.store import PostgresTx

        await self._db.executemany(
            "INSERT INTO addons (name, app, plan, kind, description, attachments, created_at, servers, "
            "window_day, window_minute, prev_window_day, prev_window_minute) "
            "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb, $9, $10, $11, $12)",
            [PostgresTx._addon_params(a) for a in addons],
        )
        await self._db.execute(MAINTAINED, [a.name for a in addons])
        await self._db.executemany(
            "INSERT INTO addon_servers (host, port, addon) VALUES ($1, $2, $3)",
            [(s.host, s.port, a.name) for a in addons for s in a.servers],
        )

    async def insert_maintenances(self, ms: list[Maintenance], filing: str = "") -> None:
        """The rows of `insert_maintenance` for each, marked with the fleet-wide request that filed them."""
        from server.storage.postgres.rows import _MAINT_COLS, _MAINT_NAMES, _maint_params, _ts

        marks = ", ".join(f"${i}" for i in range(1, len(_MAINT_NAMES) + 2))
        await self._db.executemany(
            f"INSERT INTO maintenances ({_MAINT_COLS}, filing) VALUES ({marks})",
            [(*_maint_params(m), filing) for m in ms],
        )
        await self._db.executemany(
            "INSERT INTO maintenance_history (maintenance_id, time, status, step, message) "
            "VALUES ($1, $2, $3, $4, $5)",
            [(m.id, _ts(h.time), h.status.value, h.step, h.message) for m in ms for h in m.history],
        )
        done = [m.addon for m in ms if m.status is Status.COMPLETED]
        if done:
            await self._db.execute(MAINTAINED, done)

    async def update_maintenances(self, ms: list[Maintenance]) -> None:
        """`update_maintenance` for each, pipelined (a planner pass that queues a wave)."""
        from server.storage.postgres.rows import _UPDATE_MAINT, _maint_params

        await self._db.executemany(_UPDATE_MAINT, [_maint_params(m) for m in ms])
        done = [m.addon for m in ms if m.status is Status.COMPLETED]
        if done:
            await self._db.execute(MAINTAINED, done)

    async def add_histories(self, entries: list[tuple[str, HistoryEntry]]) -> None:
        """`add_history` for each (maintenance id, entry), in order."""
        from server.storage.postgres.rows import _ts

        await self._db.executemany(
            "INSERT INTO maintenance_history (maintenance_id, time, status, step, message) "
            "VALUES ($1, $2, $3, $4, $5)",
            [(mid, _ts(h.time), h.status.value, h.step, h.message) for mid, h in entries],
        )

    async def note_queued(self, reasons: list[tuple[str, str]], at: datetime) -> list[str]:
        from server.storage.postgres.rows import _ts

        if not reasons:
            return []
        rows = await self._db.fetch(
            "WITH w AS (SELECT * FROM unnest($1::text[], $2::text[]) AS w(id, why)), "
            "up AS (UPDATE maintenances AS m SET state = jsonb_set(m.state, '{queued}', to_jsonb(w.why)) "
            "FROM w WHERE m.id = w.id AND m.status = $4 AND COALESCE(m.state->>'queued', '') <> w.why "
            "RETURNING m.id, w.why), "
            "ins AS (INSERT INTO maintenance_history (maintenance_id, time, status, step, message) "
            "SELECT id, $3, $4, '', 'Queued: ' || why FROM up ORDER BY id RETURNING maintenance_id) "
            "SELECT maintenance_id FROM ins ORDER BY maintenance_id",
            [i for i, _ in reasons],
            [w for _, w in reasons],
            _ts(at),
            Status.PENDING.value,
        )
        return [r["maintenance_id"] for r in rows]

    async def upsert_agents(self, agents: list[tuple[str, str, str, datetime]]) -> None:
        """`upsert_agent` for each (host id, advertise host, version, seen), in one statement per batch."""
        from server.storage.postgres.rows import _ts

        await self._db.executemany(
            "INSERT INTO agents (host_id, advertise_host, agent_version, last_seen) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (host_id) DO UPDATE SET advertise_host = excluded.advertise_host, "
            "agent_version = excluded.agent_version, last_seen = excluded.last_seen",
            [(h, a, v, _ts(seen)) for h, a, v, seen in agents],
        )

    async def count_addons(self, plan: str | None) -> int:
        """How many add-ons (of a plan, or all) there are."""
        return int(
            await self._db.fetchval("SELECT COUNT(*) FROM addons WHERE $1 = '' OR plan = $1", plan or "")
        )

    async def addons_page(self, plan: str | None, after: str, limit: int) -> list[Addon]:
        """The next `limit` add-ons by name after `after`, of one plan or all."""
        from server.storage.postgres.rows import _addon

        rows = await self._db.fetch(
            "SELECT * FROM addons WHERE name > $1 AND ($2 = '' OR plan = $2) ORDER BY name LIMIT $3",
            after,
            plan or "",
            limit,
        )
        return [_addon(r) for r in rows]

    async def addons_named(self, names: list[str]) -> list[Addon]:
        """Those of `names` that exist (any order)."""
        from server.storage.postgres.rows import _addon

        rows = await self._db.fetch("SELECT * FROM addons WHERE name = ANY($1::text[])", names)
        return [_addon(r) for r in rows]

    async def hosts_of(self, names: list[str]) -> dict[str, tuple[str, ...]]:
        found: dict[str, set[str]] = {}
        for r in await self._db.fetch(
            "SELECT addon, host FROM addon_servers WHERE addon = ANY($1::text[])", names
        ):
            found.setdefault(r["addon"], set()).add(r["host"])
        return {name: tuple(sorted(hosts)) for name, hosts in found.items()}

    async def active_addons(self, names: list[str]) -> set[str]:
        """Those of `names` with a maintenance pending or in progress."""
        rows = await self._db.fetch(
            f"SELECT DISTINCT addon FROM maintenances WHERE addon = ANY($1::text[]) AND status IN {ACTIVE}",
            names,
        )
        return {r["addon"] for r in rows}

    async def filed_maintenances(self, filing: str, app: str, after: str, limit: int) -> list[Maintenance]:
        """What one fleet-wide request filed (of `app`, or all when empty), by id after `after`."""
        from server.storage.postgres.rows import _MAINT_COLS

        rows = await self._db.fetch(
            f"SELECT {_MAINT_COLS} FROM maintenances WHERE filing = $1 AND filing != '' AND id > $2 "
            "AND ($3 = '' OR app = $3) ORDER BY id LIMIT $4",
            filing,
            after,
            app,
            limit,
        )
        return await self._tx()._load(list(rows))

    async def addons_on_hosts(self, hosts: list[str]) -> list[Addon]:
        """The add-ons with a server on one of `hosts` (through addon_servers), by name."""
        from server.storage.postgres.rows import _addon

        rows = await self._db.fetch(
            "SELECT * FROM addons WHERE name IN (SELECT addon FROM addon_servers "
            "WHERE host = ANY($1::text[])) ORDER BY name",
            hosts,
        )
        return [_addon(r) for r in rows]

    def _tx(self) -> PostgresTx:
        return self  # type: ignore[return-value]

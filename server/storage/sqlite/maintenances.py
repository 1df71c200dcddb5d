"""Maintenances, their histories and freezes."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from server.domain.freezes import Freeze
from server.domain.models import (
    HistoryEntry,
    Maintenance,
    Reason,
    Status,
)
from server.domain.planner import Due
from server.storage import steps
from server.storage.sqlite.base import TxBase
from server.storage.sqlite.rows import _MAINT_COLS, _MAINTAINED, _maint_params, _req, _ts, _window

# Pending, due by the parameter, not waiting for an operator nor in a campaign that does not run.
_DUE = (
    "WHERE status = 'pending' AND scheduled_for <= ? AND needs_operator = 0 AND NOT EXISTS (SELECT 1 FROM "
    "campaign_members AS cm JOIN campaigns AS c ON c.id = cm.campaign_id WHERE cm.maintenance_id = "
    "maintenances.id AND cm.maintenance_id != '' AND c.status != 'running') "
    "ORDER BY required_by, scheduled_for"
)


class MaintenancesTx(TxBase):
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

    async def current_maintenance(self, addon: str) -> Maintenance | None:
        rows = await self._all(
            f"SELECT {_MAINT_COLS} FROM maintenances WHERE addon = ? ORDER BY status IN "
            "('pending', 'preparing', 'ready', 'running') DESC, created_at DESC, id DESC LIMIT 1",
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
        rows = await self._all(f"SELECT {_MAINT_COLS} FROM maintenances {_DUE}", _ts(now))
        return await self._load(rows, history=False)

    async def due_for_planning(self, until: datetime) -> list[Due]:
        # In a thread: 2,000 due rows with their hosts are ~30 ms of SQLite's own work every tick.
        rows = await self._db.execute_fetchall_apart(
            "SELECT id, addon, app, reason, required_by, scheduled_for, window_day, window_minute, "
            "COALESCE(json_extract(state, '$.queued'), '') AS queued, (SELECT json_group_array(DISTINCT "
            "host) FROM addon_servers INDEXED BY addon_servers_addon WHERE addon = maintenances.addon) "
            f"AS hosts FROM maintenances {_DUE}",
            (_ts(until),),
        )
        return await steps.convert(rows, _due)

    async def maintenances_by_id(self, ids: list[str]) -> list[Maintenance]:
        out: list[Maintenance] = []
        for k in range(0, len(ids), 500):
            chunk = ids[k : k + 500]
            rows = await self._all(
                f"SELECT {_MAINT_COLS} FROM maintenances WHERE id IN ({', '.join('?' * len(chunk))})", *chunk
            )
            out += await self._load(rows, history=False)
        return out

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


def _due(r: sqlite3.Row) -> Due:
    return Due(
        r["id"],
        r["addon"],
        r["app"],
        Reason(r["reason"]),
        _req(r["required_by"]),
        _req(r["scheduled_for"]),
        _window(r["window_day"], r["window_minute"]),
        tuple(sorted(json.loads(r["hosts"]))),
        r["queued"],
    )

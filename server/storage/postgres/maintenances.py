"""Maintenances, their histories and freezes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from kvmaint.clock import utc
from server.domain.freezes import Freeze
from server.domain.models import (
    HistoryEntry,
    Maintenance,
    Reason,
    Status,
)
from server.domain.planner import Due
from server.storage import steps
from server.storage.postgres.base import WITH_HISTORY, TxBase
from server.storage.postgres.rows import (
    _INSERT_MAINT,
    _MAINT_COLS,
    _MAINTAINED,
    _UPDATE_MAINT,
    _maint_params,
    _ts,
    _window,
)

# Pending, due by the parameter, not waiting for an operator nor in a campaign that does not run.
_DUE = (
    "WHERE status = 'pending' AND scheduled_for <= $1 AND NOT needs_operator AND NOT EXISTS (SELECT 1 FROM "
    "campaign_members AS cm JOIN campaigns AS c ON c.id = cm.campaign_id WHERE cm.maintenance_id = "
    "maintenances.id AND cm.maintenance_id != '' AND c.status != 'running') "
    "ORDER BY required_by, scheduled_for"
)


class MaintenancesTx(TxBase):
    async def _maints(self, where: str, *params: Any) -> list[Maintenance]:
        return await self._load(
            await self._all(f"SELECT {_MAINT_COLS}, {WITH_HISTORY} FROM maintenances {where}", *params)
        )

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

    async def current_maintenance(self, addon: str) -> Maintenance | None:
        found = await self._maints(
            "WHERE addon = $1 ORDER BY status IN ('pending', 'preparing', 'ready', 'running') DESC, "
            "created_at DESC, id DESC LIMIT 1",
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
        return await self._bare(_DUE, _ts(now))

    async def due_for_planning(self, until: datetime) -> list[Due]:
        rows = await self._all(
            "SELECT id, addon, app, reason, required_by, scheduled_for, window_day, window_minute, "
            "COALESCE(state->>'queued', '') AS queued, ARRAY(SELECT DISTINCT host FROM addon_servers "
            f"WHERE addon = maintenances.addon ORDER BY host) AS hosts FROM maintenances {_DUE}",
            _ts(until),
        )
        return await steps.convert(rows, _due)

    async def maintenances_by_id(self, ids: list[str]) -> list[Maintenance]:
        return await self._bare("WHERE id = ANY($1::text[])", ids) if ids else []

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


def _due(r: asyncpg.Record) -> Due:
    return Due(
        r["id"],
        r["addon"],
        r["app"],
        Reason(r["reason"]),
        r["required_by"],
        r["scheduled_for"],
        _window(r["window_day"], r["window_minute"]),
        tuple(r["hosts"]),
        r["queued"],
    )

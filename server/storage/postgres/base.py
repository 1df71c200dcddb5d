"""What every part of a transaction shares: the connection and the query helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from server.domain.driverstate import DriverState
from server.domain.models import (
    HistoryEntry,
    Maintenance,
    Method,
    Reason,
    Status,
)
from server.storage.postgres.rows import _MAINT_COLS, _count, _window

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A maintenance's history as a column of its row, so a read of one maintenance is one round trip, not
# two (a GetMaintenanceInfo was five: BEGIN, the add-on, the maintenance, its history, COMMIT). Times as
# integer microseconds since the epoch: exact, whatever the session's time zone.
WITH_HISTORY = (
    "(SELECT COALESCE(json_agg(json_build_array((EXTRACT(EPOCH FROM h.time) * 1000000)::bigint, h.status, "
    "h.step, h.message) ORDER BY h.id), '[]') FROM maintenance_history AS h "
    "WHERE h.maintenance_id = maintenances.id) AS history"
)


class TxBase:
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

    # maintenances
    async def _load(self, rows: list[asyncpg.Record], history: bool = True) -> list[Maintenance]:
        """Maintenances with their histories (unless `history` is False: the periodic passes never print
        them), read in one query for all of them."""
        if not rows:
            return []
        hist: dict[str, list[HistoryEntry]] = {r["id"]: [] for r in rows}
        if "history" in rows[0].keys():  # read with the rows (`WITH_HISTORY`)
            for r in rows:
                hist[r["id"]] = [
                    HistoryEntry(EPOCH + timedelta(microseconds=us), Status(status), step, message)
                    for us, status, step, message in json.loads(r["history"])
                ]
        else:
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

    async def _bare(self, where: str, *params: Any) -> list[Maintenance]:
        """As `_maints`, without histories."""
        rows = await self._all(f"SELECT {_MAINT_COLS} FROM maintenances {where}", *params)
        return await self._load(rows, history=False)

"""What every part of a transaction shares: the connection and the query helpers."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterable
from typing import Any, Protocol

from server.domain.driverstate import DriverState
from server.domain.models import (
    HistoryEntry,
    Maintenance,
    Method,
    Reason,
    Status,
)
from server.storage.settle import settle
from server.storage.sqlite.rows import _dt, _req, _window


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    @property
    def lastrowid(self) -> int | None: ...
    async def close(self) -> None: ...


class Conn(Protocol):
    """What a transaction needs of its connection (`Inline`)."""

    async def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...
    async def executemany(self, sql: str, parameters: Any, /) -> Cursor: ...
    async def execute_fetchall(self, sql: str, parameters: Any = ..., /) -> Iterable[sqlite3.Row]: ...
    async def execute_fetchall_apart(self, sql: str, parameters: Any = ..., /) -> list[sqlite3.Row]: ...


class Inline:
    """A connection whose statements run in the event loop's thread, not in a thread of their own (as
    aiosqlite's did). An indexed statement on a local WAL file takes tens of microseconds, and handing it
    to a thread and back cost about ten times that in CPU (futures, wake-ups, the GIL): at 100k add-ons,
    1 ms of the 2.5 ms a GetMaintenanceInfo cost. A reader never waits for a lock (WAL), a writer holds
    it already (SqliteStore.transaction), and nothing but COMMIT touches the disk, so running inline costs
    the loop only the statement itself; and a statement cannot be cut short by a cancellation, so none
    is ever left stepped."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        cur = self.conn.execute(sql, parameters)
        cur.fetchall()  # a statement is never left stepped: see `_rows`
        return _Done(cur.rowcount, cur.lastrowid)

    async def executemany(self, sql: str, parameters: Any, /) -> Cursor:
        cur = self.conn.executemany(sql, parameters)
        return _Done(cur.rowcount, cur.lastrowid)

    async def execute_fetchall(self, sql: str, parameters: Any = (), /) -> list[sqlite3.Row]:
        return self.conn.execute(sql, parameters).fetchall()

    async def execute_fetchall_apart(self, sql: str, parameters: Any = (), /) -> list[sqlite3.Row]:
        """As `execute_fetchall`, in a thread: for the few periodic queries that take tens of ms (the
        planner's due rows at 100k add-ons), which SQLite runs without the GIL while the loop serves
        others. Awaited to its end even if the caller is cancelled (`storage/settle.py`)."""
        loop = asyncio.get_running_loop()
        return list(
            await settle(loop.run_in_executor(None, lambda: self.conn.execute(sql, parameters).fetchall()))
        )


class _Done:
    """An inline statement's cursor, already finished."""

    def __init__(self, rowcount: int, lastrowid: int | None) -> None:
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    async def close(self) -> None:
        return None


class TxBase:
    def __init__(self, db: Conn) -> None:
        self._db = db

    async def _one(self, sql: str, *params: Any) -> sqlite3.Row | None:
        """The first row of a query that returns at most one (every caller's does)."""
        rows = await _rows(self._db, sql, params)
        return rows[0] if rows else None

    async def _all(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        return await _rows(self._db, sql, params)

    # maintenances
    async def _load(self, rows: list[sqlite3.Row], history: bool = True) -> list[Maintenance]:
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


async def _rows(db: Conn, sql: str, params: Any) -> list[sqlite3.Row]:
    """Runs a query to its last row, in one call. Never `execute` then `fetch` across an await: a caller
    cancelled between the two leaves a statement stepped but unfinished, and on SQLite such a statement
    keeps its connection's snapshot, even across ROLLBACK and BEGIN, so the next read on that connection
    would miss commits made since (seen under a storm of cancelled streams, when statements ran in
    aiosqlite's threads)."""
    return list(await db.execute_fetchall(sql, params))

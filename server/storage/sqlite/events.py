"""The event log."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from server.domain.models import (
    Event,
    EventType,
)
from server.domain.requests import StoredRequest
from server.storage.sqlite.base import TxBase
from server.storage.sqlite.rows import _req, _ts


class EventsTx(TxBase):
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

    async def append_events(self, events: list[Event]) -> list[int]:
        """`append_event` for each, in order (one writer: the rowids follow each other)."""
        return [await self.append_event(e) for e in events]

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

    # cursors: a follower's durable position in the event stream (migration 14)
    async def get_cursor(self, name: str) -> int | None:
        row = await self._one("SELECT position FROM cursors WHERE name = ?", name)
        return None if row is None else int(row["position"])

    async def set_cursor(self, name: str, position: int) -> None:
        await self._db.execute(
            "INSERT INTO cursors (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
            "position = MAX(cursors.position, excluded.position)",
            (name, position),
        )

    # requests: writes retried under one request id (migration 15)
    async def record_request(self, id: str, method: str, key: str, at: datetime) -> None:
        await self._db.execute(
            "INSERT INTO requests (id, method, result_key, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET result_key = CASE WHEN excluded.result_key != '' "
            "THEN excluded.result_key ELSE requests.result_key END",
            (id, method, key, _ts(at)),
        )

    async def get_request(self, id: str) -> StoredRequest | None:
        r = await self._one("SELECT * FROM requests WHERE id = ?", id)
        if r is None:
            return None
        response = bytes(r["response"]) if r["response"] is not None else None
        return StoredRequest(r["id"], r["method"], r["result_key"], response, _req(r["created_at"]))

    async def answer_request(self, id: str, response: bytes) -> None:
        await self._db.execute("UPDATE requests SET response = ? WHERE id = ?", (response, id))

    async def prune_requests(self, before: datetime) -> int:
        cur = await self._db.execute("DELETE FROM requests WHERE created_at < ?", (_ts(before),))
        count = cur.rowcount
        await cur.close()
        return count

"""The event log."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from kvmaint.clock import utc
from server.domain.models import (
    Event,
    EventType,
)
from server.domain.requests import StoredRequest
from server.storage.postgres.base import TxBase
from server.storage.postgres.rows import _ts


class EventsTx(TxBase):
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

    async def append_events(self, events: list[Event]) -> list[int]:
        """`append_event` for each, in order, in one statement: a fleet-wide filing writes two a
        maintenance, and one round trip each was most of its time under load."""
        if not events:
            return []
        last: int = await self._db.fetchval(
            "WITH next AS (UPDATE event_sequence SET last = last + $1 RETURNING last), "
            "ins AS (INSERT INTO events "
            "(sequence, type, time, app, addon, maintenance_id, message, attributes) "
            "SELECT next.last - $1 + e.ord, e.type, e.time, e.app, e.addon, e.mid, e.message, "
            "e.attrs::jsonb FROM next, unnest($2::text[], $3::timestamptz[], $4::text[], $5::text[], "
            "$6::text[], $7::text[], $8::text[]) "
            "WITH ORDINALITY AS e(type, time, app, addon, mid, message, attrs, ord)) "
            "SELECT last FROM next",
            len(events),
            [e.type.value for e in events],
            [_ts(e.time) for e in events],
            [e.app for e in events],
            [e.addon for e in events],
            [e.maintenance_id for e in events],
            [e.message for e in events],
            [json.dumps(e.attributes, sort_keys=True) for e in events],
        )
        self.last_event = max(self.last_event, last)
        return list(range(last - len(events) + 1, last + 1))

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

    # cursors: a follower's durable position in the event stream (migration 14)
    async def get_cursor(self, name: str) -> int | None:
        row = await self._one("SELECT position FROM cursors WHERE name = $1", name)
        return None if row is None else int(row["position"])

    async def set_cursor(self, name: str, position: int) -> None:
        await self._exec(
            "INSERT INTO cursors (name, position) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET "
            "position = GREATEST(cursors.position, excluded.position)",
            name,
            position,
        )

    # requests: writes retried under one request id (migration 15)
    async def record_request(self, id: str, method: str, key: str, at: datetime) -> None:
        await self._exec(
            "INSERT INTO requests (id, method, result_key, created_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (id) DO UPDATE SET result_key = CASE WHEN excluded.result_key != '' "
            "THEN excluded.result_key ELSE requests.result_key END",
            id,
            method,
            key,
            _ts(at),
        )

    async def get_request(self, id: str) -> StoredRequest | None:
        r = await self._one("SELECT * FROM requests WHERE id = $1", id)
        if r is None:
            return None
        response = bytes(r["response"]) if r["response"] is not None else None
        return StoredRequest(r["id"], r["method"], r["result_key"], response, utc(r["created_at"]))

    async def answer_request(self, id: str, response: bytes) -> None:
        await self._exec("UPDATE requests SET response = $2 WHERE id = $1", id, response)

    async def prune_requests(self, before: datetime) -> int:
        return await self._exec("DELETE FROM requests WHERE created_at < $1", _ts(before))

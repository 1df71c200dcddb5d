"""Webhooks, the notification outbox and reminders."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from server.domain.models import (
    Maintenance,
)
from server.notify.models import OutboxItem, ReminderDue, Webhook
from server.storage.sqlite.base import TxBase
from server.storage.sqlite.rows import _MAINT_COLS, _outbox, _remind_ts, _ts, _webhook


class NotifyTx(TxBase):
    async def outbox_backlog(self) -> dict[str, int]:
        """Notifications neither delivered nor dropped, by kind (for metrics)."""
        rows = await self._all(
            "SELECT kind, COUNT(*) AS n FROM outbox WHERE sent_at IS NULL AND dropped_at IS NULL "
            "GROUP BY kind"
        )
        return {r["kind"]: r["n"] for r in rows}

    # notifications
    async def insert_webhook(self, hook: Webhook) -> None:
        await self._db.execute(
            "INSERT INTO webhooks (id, app, url, secret, created_at) VALUES (?, ?, ?, ?, ?)",
            (hook.id, hook.app, hook.url, hook.secret, _ts(hook.created_at)),
        )

    async def get_webhook(self, id: str) -> Webhook | None:
        row = await self._one("SELECT * FROM webhooks WHERE id = ?", id)
        return _webhook(row) if row else None

    async def list_webhooks(self, app: str) -> list[Webhook]:
        rows = await self._all("SELECT * FROM webhooks WHERE app = ? ORDER BY created_at, id", app)
        return [_webhook(r) for r in rows]

    async def delete_webhook(self, id: str) -> None:
        await self._db.execute("DELETE FROM webhooks WHERE id = ?", (id,))

    async def enqueue(self, item: OutboxItem) -> bool:
        """False when an item with the same dedupe key is already there (then nothing is written)."""
        cur = await self._db.execute(
            "INSERT INTO outbox (kind, dedupe_key, app, recipient, webhook_id, subject, body, attempts, "
            "next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?) "
            "ON CONFLICT (dedupe_key) DO NOTHING",
            (
                item.kind.value,
                item.dedupe_key,
                item.app,
                item.recipient,
                item.webhook_id,
                item.subject,
                item.body,
                _ts(item.next_attempt_at),
                _ts(item.created_at),
            ),
        )
        inserted = cur.rowcount == 1
        await cur.close()
        return inserted

    async def enqueue_all(self, items: list[OutboxItem]) -> int:
        """`enqueue` for each, in order; how many were new."""
        return sum([await self.enqueue(i) for i in items])

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Rows due now, oldest first, except those behind an earlier undelivered row to the same
        destination that is not due yet: each recipient (or webhook) gets its notices in order."""
        rows = await self._all(
            "SELECT * FROM outbox AS o WHERE sent_at IS NULL AND dropped_at IS NULL AND next_attempt_at <= ? "
            "AND NOT EXISTS (SELECT 1 FROM outbox AS p WHERE p.sent_at IS NULL AND p.dropped_at IS NULL "
            "AND p.id < o.id AND p.kind = o.kind AND p.recipient = o.recipient "
            "AND p.webhook_id = o.webhook_id AND p.next_attempt_at > ?) "
            "ORDER BY id LIMIT ?",
            _ts(now),
            _ts(now),
            limit,
        )
        return [_outbox(r) for r in rows]

    async def list_outbox(self, after_id: int, limit: int) -> list[OutboxItem]:
        rows = await self._all("SELECT * FROM outbox WHERE id > ? ORDER BY id LIMIT ?", after_id, limit)
        return [_outbox(r) for r in rows]

    async def mark_sent(self, id: int, now: datetime) -> None:
        await self._db.execute(
            "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = '' WHERE id = ?",
            (_ts(now), id),
        )

    async def mark_retry(self, id: int, error: str, next_attempt_at: datetime) -> None:
        await self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
            (error, _ts(next_attempt_at), id),
        )

    async def mark_dropped(self, id: int, error: str, now: datetime) -> None:
        await self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, dropped_at = ? WHERE id = ?",
            (error, _ts(now), id),
        )

    async def prune_outbox(self, before: datetime) -> int:
        cur = await self._db.execute(
            "DELETE FROM outbox WHERE COALESCE(sent_at, dropped_at) < ?",
            (_ts(before),),
        )
        count = cur.rowcount
        await cur.close()
        return count

    async def starting_between(self, after: datetime, until: datetime) -> list[Maintenance]:
        """Pending maintenances with after < scheduled_for <= until (the reminders' candidates)."""
        rows = await self._all(
            f"SELECT {_MAINT_COLS} FROM maintenances WHERE status = 'pending' AND scheduled_for > ? "
            "AND scheduled_for <= ? ORDER BY scheduled_for",
            _ts(after),
            _ts(until),
        )
        return await self._load(rows, history=False)

    async def reminders_due(self, now: datetime) -> list[ReminderDue]:
        """Maintenances whose reminder fell due by `now` and was not given (nor dropped): through the
        remind_at index, so as many as are due, not the fleet."""
        rows = await self._all(
            "SELECT id, addon FROM maintenances WHERE remind_at IS NOT NULL AND remind_at <= ? "
            "ORDER BY remind_at",
            _remind_ts(now),
        )
        return [ReminderDue(r["id"], r["addon"]) for r in rows]

    async def next_reminder(self) -> datetime | None:
        """When the earliest reminder not yet given falls due (one index probe)."""
        row = await self._one("SELECT MIN(remind_at) FROM maintenances WHERE remind_at IS NOT NULL")
        return datetime.fromisoformat(row[0]).replace(tzinfo=UTC) if row and row[0] else None

    async def drop_reminders(self, maintenance_ids: list[str]) -> None:
        """No reminder for these schedules any more (it is too late for one); a new schedule sets another."""
        await self._db.executemany(
            "UPDATE maintenances SET remind_at = NULL WHERE id = ?", [(i,) for i in maintenance_ids]
        )

    async def mark_reminded(self, maintenance_id: str, scheduled_for: datetime) -> bool:
        """False when the reminder for this (maintenance, scheduled_for) was already given."""
        cur = await self._db.execute(
            "INSERT INTO reminders (maintenance_id, scheduled_for) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (maintenance_id, _ts(scheduled_for)),
        )
        inserted = cur.rowcount == 1
        await cur.close()
        return inserted

    async def mark_reminded_all(self, given: list[tuple[str, datetime]]) -> set[str]:
        """`mark_reminded` for each (maintenance, scheduled_for) in one statement: the ids given now."""
        if not given:
            return set()
        rows = await self._db.execute_fetchall(
            "INSERT INTO reminders (maintenance_id, scheduled_for) "
            "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?) WHERE true "
            "ON CONFLICT DO NOTHING RETURNING maintenance_id",  # (`WHERE true`: SQLite's upsert grammar)
            (json.dumps([(mid, _ts(at)) for mid, at in given]),),
        )
        return {r[0] for r in rows}

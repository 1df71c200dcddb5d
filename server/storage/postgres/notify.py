"""Webhooks, the notification outbox and reminders."""

from __future__ import annotations

from datetime import datetime

from server.domain.models import (
    Maintenance,
)
from server.notify.models import OutboxItem, ReminderDue, Webhook
from server.storage.postgres.base import TxBase
from server.storage.postgres.rows import _outbox, _ts, _webhook


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
        await self._exec(
            "INSERT INTO webhooks (id, app, url, secret, created_at) VALUES ($1, $2, $3, $4, $5)",
            hook.id,
            hook.app,
            hook.url,
            hook.secret,
            _ts(hook.created_at),
        )

    async def get_webhook(self, id: str) -> Webhook | None:
        row = await self._one("SELECT * FROM webhooks WHERE id = $1", id)
        return _webhook(row) if row else None

    async def list_webhooks(self, app: str) -> list[Webhook]:
        rows = await self._all("SELECT * FROM webhooks WHERE app = $1 ORDER BY created_at, id", app)
        return [_webhook(r) for r in rows]

    async def delete_webhook(self, id: str) -> None:
        await self._exec("DELETE FROM webhooks WHERE id = $1", id)

    async def enqueue(self, item: OutboxItem) -> bool:
        """False when an item with the same dedupe key is already there (then nothing is written)."""
        inserted = await self._exec(
            "INSERT INTO outbox (kind, dedupe_key, app, recipient, webhook_id, subject, body, attempts, "
            "next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9) "
            "ON CONFLICT (dedupe_key) DO NOTHING",
            item.kind.value,
            item.dedupe_key,
            item.app,
            item.recipient,
            item.webhook_id,
            item.subject,
            item.body,
            _ts(item.next_attempt_at),
            _ts(item.created_at),
        )
        return inserted == 1

    async def enqueue_all(self, items: list[OutboxItem]) -> int:
        """`enqueue` for each, in order, in one statement; how many were new."""
        if not items:
            return 0
        return await self._exec(
            "INSERT INTO outbox (kind, dedupe_key, app, recipient, webhook_id, subject, body, attempts, "
            "next_attempt_at, created_at) "
            "SELECT kind, key, app, recipient, hook, subject, body, 0, at, created FROM unnest($1::text[], "
            "$2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], "
            "$9::timestamptz[]) "
            "WITH ORDINALITY AS i(kind, key, app, recipient, hook, subject, body, at, created, ord) "
            "ORDER BY ord ON CONFLICT (dedupe_key) DO NOTHING",
            [i.kind.value for i in items],
            [i.dedupe_key for i in items],
            [i.app for i in items],
            [i.recipient for i in items],
            [i.webhook_id for i in items],
            [i.subject for i in items],
            [i.body for i in items],
            [_ts(i.next_attempt_at) for i in items],
            [_ts(i.created_at) for i in items],
        )

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Rows due now, oldest first, except those behind an earlier undelivered row to the same
        destination that is not due yet: each recipient (or webhook) gets its notices in order."""
        rows = await self._all(
            "SELECT * FROM outbox AS o "
            "WHERE sent_at IS NULL AND dropped_at IS NULL AND next_attempt_at <= $1 "
            "AND NOT EXISTS (SELECT 1 FROM outbox AS p WHERE p.sent_at IS NULL AND p.dropped_at IS NULL "
            "AND p.id < o.id AND p.kind = o.kind AND p.recipient = o.recipient "
            "AND p.webhook_id = o.webhook_id AND p.next_attempt_at > $1) "
            "ORDER BY id LIMIT $2",
            _ts(now),
            limit,
        )
        return [_outbox(r) for r in rows]

    async def list_outbox(self, after_id: int, limit: int) -> list[OutboxItem]:
        rows = await self._all("SELECT * FROM outbox WHERE id > $1 ORDER BY id LIMIT $2", after_id, limit)
        return [_outbox(r) for r in rows]

    async def mark_sent(self, id: int, now: datetime) -> None:
        await self._exec(
            "UPDATE outbox SET sent_at = $1, attempts = attempts + 1, last_error = '' WHERE id = $2",
            _ts(now),
            id,
        )

    async def mark_retry(self, id: int, error: str, next_attempt_at: datetime) -> None:
        await self._exec(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 WHERE id = $3",
            error,
            _ts(next_attempt_at),
            id,
        )

    async def mark_dropped(self, id: int, error: str, now: datetime) -> None:
        await self._exec(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, dropped_at = $2 WHERE id = $3",
            error,
            _ts(now),
            id,
        )

    async def prune_outbox(self, before: datetime) -> int:
        return await self._exec("DELETE FROM outbox WHERE COALESCE(sent_at, dropped_at) < $1", _ts(before))

    async def starting_between(self, after: datetime, until: datetime) -> list[Maintenance]:
        """Pending maintenances with after < scheduled_for <= until (the reminders' candidates)."""
        return await self._bare(
            "WHERE status = 'pending' AND scheduled_for > $1 AND scheduled_for <= $2 ORDER BY scheduled_for",
            _ts(after),
            _ts(until),
        )

    async def reminders_due(self, now: datetime) -> list[ReminderDue]:
        """Maintenances whose reminder fell due by `now` and was not given (nor dropped): through the
        remind_at index, so as many as are due, not the fleet."""
        rows = await self._all(
            "SELECT id, addon FROM maintenances WHERE remind_at IS NOT NULL AND remind_at <= $1 "
            "ORDER BY remind_at",
            _ts(now),
        )
        return [ReminderDue(r["id"], r["addon"]) for r in rows]

    async def next_reminder(self) -> datetime | None:
        """When the earliest reminder not yet given falls due (one index probe)."""
        at: datetime | None = await self._db.fetchval(
            "SELECT MIN(remind_at) FROM maintenances WHERE remind_at IS NOT NULL"
        )
        return at

    async def drop_reminders(self, maintenance_ids: list[str]) -> None:
        """No reminder for these schedules any more (it is too late for one); a new schedule sets another."""
        await self._exec(
            "UPDATE maintenances SET remind_at = NULL WHERE id = ANY($1::text[])", maintenance_ids
        )

    async def mark_reminded(self, maintenance_id: str, scheduled_for: datetime) -> bool:
        """False when the reminder for this (maintenance, scheduled_for) was already given."""
        inserted = await self._exec(
            "INSERT INTO reminders (maintenance_id, scheduled_for) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            maintenance_id,
            _ts(scheduled_for),
        )
        return inserted == 1

    async def mark_reminded_all(self, given: list[tuple[str, datetime]]) -> set[str]:
        """`mark_reminded` for each (maintenance, scheduled_for) in one statement: the ids given now."""
        if not given:
            return set()
        rows = await self._all(
            "INSERT INTO reminders (maintenance_id, scheduled_for) "
            "SELECT * FROM unnest($1::text[], $2::timestamptz[]) "
            "ON CONFLICT DO NOTHING RETURNING maintenance_id",
            [mid for mid, _ in given],
            [_ts(at) for _, at in given],
        )
        return {r["maintenance_id"] for r in rows}

"""The notification data the store keeps: outbox rows and apps' webhook endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


@dataclass(frozen=True)
class ReminderDue:
    """A maintenance whose reminder fell due: what the reminder pass needs to read it again under the
    write lock (a burst is thousands; reading them whole up front was one 170 ms piece of the loop)."""

    id: str
    addon: str


@dataclass(frozen=True)
class OutboxItem:
    """One message to deliver. `dedupe_key` is unique: enqueueing the same notice twice is a no-op.
    For an email `recipient` is the address, `body` the text; for a webhook `recipient` is the URL as
    registered, `body` the exact JSON to POST, and `webhook_id` the endpoint (its secret is read when
    sending, so a deleted endpoint gets nothing more)."""

    kind: Channel
    dedupe_key: str
    app: str
    recipient: str
    subject: str
    body: str
    created_at: datetime
    next_attempt_at: datetime
    webhook_id: str = ""
    id: int = 0
    attempts: int = 0
    sent_at: datetime | None = None
    dropped_at: datetime | None = None
    last_error: str = ""


@dataclass(frozen=True)
class Webhook:
    id: str
    app: str
    url: str
    secret: str
    created_at: datetime

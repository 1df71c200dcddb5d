"""Maintenance notices inside Redis (issue 7): short JSON messages on one pub/sub channel of the primary.

Any client that can SUBSCRIBE follows a maintenance with them, in any language: drain or pause on
`failing_over`, reconnect to `new_primary` on `failed_over`. The scheduler decides what to say and when;
the agent stamps the time and PUBLISHes, so the JSON is built in one place for both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from kvmaint.clock import iso

CHANNEL = "__kvmaint__:maintenance"


class NoticeType(StrEnum):
    # Filed, rescheduled, or pending again after a failed attempt: with scheduled_for.
    SCHEDULED = "scheduled"
    # About a minute before the planner starts it (only when it starts by plan): with starts_at.
    STARTING = "starting"
    # On the old primary, just before its writes are paused.
    FAILING_OVER = "failing_over"
    # The new primary accepts writes: with new_primary (host:port) and old_primary.
    FAILED_OVER = "failed_over"
    COMPLETED = "completed"
    # An attempt failed: with status (pending again, or failed) and reason.
    FAILED = "failed"


@dataclass(frozen=True)
class Notice:
    type: NoticeType
    maintenance_id: str
    addon: str
    fields: dict[str, str] = field(default_factory=dict)


def render(notice: Notice, time: datetime) -> str:
    """The message: type, maintenance_id, addon and time first, then the notice's own fields."""
    body = {
        "type": notice.type.value,
        "maintenance_id": notice.maintenance_id,
        "addon": notice.addon,
        "time": iso(time),
    }
    body.update({k: v for k, v in notice.fields.items() if k not in body})
    return json.dumps(body, separators=(",", ":"))

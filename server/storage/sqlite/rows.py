"""Rows to domain objects and back, and the SQL fragments several concerns share."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from kvmaint.clock import utc
from server.domain.models import Addon
from server.storage.codec import CAMPAIGN_COLS, CAMPAIGN_N, MAINT_COLS, Codec, servers, servers_json, window

if TYPE_CHECKING:
    from server.storage.sqlite.base import Conn

log = logging.getLogger(__name__)


def _remind_ts(dt: datetime) -> str:
    """A time as migration 11 writes remind_at (UTC, milliseconds, no offset), so text compares."""
    u = utc(dt)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond // 1000:03d}"


async def _index_servers(db: Conn, addon: Addon) -> None:
    await db.execute("DELETE FROM addon_servers WHERE addon = ?", (addon.name,))
    await db.executemany(
        "INSERT INTO addon_servers (host, port, addon) VALUES (?, ?, ?)",
        [(ref.host, ref.port, addon.name) for ref in addon.servers],
    )


# Recomputes an add-on's `maintained_at` from its completed maintenances (few per add-on: indexed).
# Through the add-on's maintenances (INDEXED BY): left to itself, SQLite's planner walked every completed
# maintenance by status instead (100,000 rows at 100k add-ons: 50 ms a CreateAddon, all in the loop).
_MAINTAINED = (
    "UPDATE addons SET maintained_at = COALESCE((SELECT MAX(m.completed_at) FROM maintenances AS m "
    "INDEXED BY maintenances_addon WHERE m.addon = addons.name AND m.status = 'completed'), created_at) "
    "WHERE name = ?"
)


def _ts(dt: datetime | None) -> str | None:
    return utc(dt).isoformat(timespec="microseconds") if dt else None


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


CODEC = Codec(ts=_ts, at=_dt, flag=int)  # times as ISO text, flags as 0/1
_MAINT_COLS, _CAMPAIGN_COLS, _CAMPAIGN_N = MAINT_COLS, CAMPAIGN_COLS, CAMPAIGN_N
_window, _servers_json, _servers = window, servers_json, servers
_maint_params, _campaign_params, _req = CODEC.maint_params, CODEC.campaign_params, CODEC.req
_app, _addon, _webhook, _outbox = CODEC.app, CODEC.addon, CODEC.webhook, CODEC.outbox
_campaign = CODEC.campaign

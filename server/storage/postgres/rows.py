"""Rows to domain objects and back, and the SQL fragments several concerns share."""

from __future__ import annotations

import logging
from datetime import datetime

import asyncpg

from kvmaint.clock import utc
from server.domain.campaigns import Member
from server.storage.codec import (
    CAMPAIGN_COLS,
    CAMPAIGN_N,
    MAINT_COLS,
    MAINT_NAMES,
    Codec,
    servers,
    servers_json,
    window,
)

log = logging.getLogger(__name__)


# Recomputes an add-on's `maintained_at` from its completed maintenances (few per add-on: indexed).
_MAINTAINED = (
    "UPDATE addons SET maintained_at = COALESCE((SELECT MAX(m.completed_at) FROM maintenances AS m "
    "WHERE m.addon = addons.name AND m.status = 'completed'), created_at) WHERE name = $1"
)


def is_postgres_url(db: str) -> bool:
    """`--db` names a PostgreSQL database (libpq URL) rather than a SQLite file."""
    return db.startswith(("postgresql://", "postgres://"))


def _ts(dt: datetime | None) -> datetime | None:
    return utc(dt) if dt else None


CODEC = Codec(ts=_ts, at=lambda value: value, flag=bool)  # asyncpg reads datetimes and bools back
_MAINT_COLS, _MAINT_NAMES, _CAMPAIGN_COLS, _CAMPAIGN_N = MAINT_COLS, MAINT_NAMES, CAMPAIGN_COLS, CAMPAIGN_N
_window, _servers_json, _servers = window, servers_json, servers
_maint_params, _campaign_params = CODEC.maint_params, CODEC.campaign_params
_app, _addon, _webhook, _outbox = CODEC.app, CODEC.addon, CODEC.webhook, CODEC.outbox
_campaign = CODEC.campaign


def _count(status: str) -> int:
    """Rows touched, from asyncpg's command tag ("INSERT 0 1", "DELETE 3", "UPDATE 2")."""
    return int(status.rsplit(" ", 1)[-1])


_INSERT_MAINT = (
    f"INSERT INTO maintenances ({_MAINT_COLS}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, len(_MAINT_NAMES) + 1))})"
)


_UPDATE_MAINT = (
    "UPDATE maintenances SET "
    + ", ".join(f"{c} = ${i}" for i, c in enumerate(_MAINT_NAMES[1:], start=2))
    + " WHERE id = $1"
)


def _member(r: asyncpg.Record) -> Member:
    return Member(
        r["addon"],
        r["app"],
        r["wave"],
        r["planned_at"],
        _window(r["window_day"], r["window_minute"]),
        bool(r["meets_deadline"]),
        r["maintenance_id"],
        r["note"],
    )

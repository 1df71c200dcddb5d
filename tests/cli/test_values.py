"""Parsing what a person types: each mistake is one sentence naming what is allowed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kvmaint.cli.values import UsageError, parse_enum, parse_host_port, parse_time, parse_week
from kvmaint.v1 import resources_pb2


def test_reason_labels_map_to_the_enum() -> None:
    reason = resources_pb2.MaintenanceReason
    assert parse_enum(reason, "security_patch", "--reason") == resources_pb2.MAINTENANCE_REASON_SECURITY_PATCH
    assert parse_enum(reason, "Redis-Upgrade", "--reason") == resources_pb2.MAINTENANCE_REASON_REDIS_UPGRADE


def test_unknown_reason_names_the_allowed_ones() -> None:
    with pytest.raises(UsageError) as err:
        parse_enum(resources_pb2.MaintenanceReason, "whim", "--reason")
    assert str(err.value) == ("Unknown --reason value 'whim'; allowed values are routine_maintenance, "
                              "security_patch, redis_upgrade, infrastructure, emergency.")
    with pytest.raises(UsageError, match="failover, restart"):
        parse_enum(resources_pb2.MaintenanceMethod, "unspecified", "--method")


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-02-01", datetime(2026, 2, 1, tzinfo=UTC)),
    ("2026-02-01T18:30", datetime(2026, 2, 1, 18, 30, tzinfo=UTC)),
    ("2026-02-01T18:30:00Z", datetime(2026, 2, 1, 18, 30, tzinfo=UTC)),
    ("2026-02-01T20:30:00+02:00", datetime(2026, 2, 1, 18, 30, tzinfo=UTC)),
])
def test_required_by_accepts_iso_dates_and_times(text: str, expected: datetime) -> None:
    assert parse_time(text, "--required-by") == expected


def test_bad_times_are_refused() -> None:
    with pytest.raises(UsageError, match="Invalid --required-by 'next week'"):
        parse_time("next week", "--required-by")
    with pytest.raises(UsageError, match="YYYY-MM-DD"):
        parse_week("2026-13-01")


def test_host_port() -> None:
    assert parse_host_port("db-1:7001", "--primary") == ("db-1", 7001)
    for bad in ("db-1", ":7001", "db-1:x", "db-1:70000"):
        with pytest.raises(UsageError, match="expected HOST:PORT"):
            parse_host_port(bad, "--primary")

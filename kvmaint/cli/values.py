"""Parsing of the values a person types: enum labels, times, HOST:PORT. Each failure is one sentence."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from kvmaint.cli.format import enum_label, enum_labels
from kvmaint.clock import utc
from kvmaint.errors import FieldViolation, InvalidArgument


class UsageError(InvalidArgument):
    """A value the CLI rejects before calling the scheduler."""

    def __init__(self, message: str, option: str = "") -> None:
        super().__init__(message, [FieldViolation(option, message)] if option else [])


def parse_enum(enum: Any, text: str, option: str) -> Any:
    """ "security_patch", "security-patch" or "SECURITY_PATCH" -> the enum number (typed Any: each
    generated enum is its own int subclass)."""
    wanted = text.strip().lower().replace("-", "_")
    for value in enum.values():
        if value != 0 and enum_label(enum, value) == wanted:
            return value
    allowed = ", ".join(enum_labels(enum))
    raise UsageError(f"Unknown {option} value '{text}'; allowed values are {allowed}.", option)


def parse_time(text: str, option: str) -> datetime:
    """ISO 8601 date or date-time; a date means midnight UTC and a naive time is taken as UTC."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        return utc(datetime.fromisoformat(raw))
    except ValueError:
        raise UsageError(
            f"Invalid {option} '{text}': expected an ISO 8601 date or time such as 2026-02-01 "
            f"or 2026-02-01T18:00:00Z.",
            option,
        ) from None


def parse_week(text: str) -> str:
    """--week YYYY-MM-DD: checked here so a typo fails before the call; sent on as typed."""
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"Invalid --week '{text}': expected a date as YYYY-MM-DD.", "--week") from None
    return text.strip()


def parse_host_port(text: str, option: str) -> tuple[str, int]:
    """ "db-1:7001" -> ("db-1", 7001)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"Invalid {option} '{text}': expected HOST:PORT such as db-1:7001.", option)
    return host, int(port)

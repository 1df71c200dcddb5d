"""Freezes (deny periods): ranges in which nothing of an app, or of the fleet, starts. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from kvmaint.clock import iso
from server.domain.windows import WEEK, WINDOW, Window

MAX_FREEZE = timedelta(days=90)


@dataclass(frozen=True)
class Freeze:
    id: str
    app: str  # "" for the whole fleet
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_at: datetime

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.starts_at < end and start < self.ends_at

    def applies_to(self, app: str) -> bool:
        return not self.app or self.app == app

    def describe(self) -> str:
        scope = f"app {self.app}" if self.app else "the fleet"
        why = f" ({self.reason})" if self.reason else ""
        return f"freeze {self.id} of {scope} from {iso(self.starts_at)} to {iso(self.ends_at)}{why}"


def blocking(freezes: Iterable[Freeze], app: str, start: datetime, end: datetime) -> Freeze | None:
    """The first freeze of `app` (or the fleet) that overlaps [start, end)."""
    found = [f for f in freezes if f.applies_to(app) and f.overlaps(start, end)]
    return min(found, key=lambda f: f.starts_at) if found else None


def next_allowed_start(
    window: Window | None, after: datetime, required_by: datetime, freezes: list[Freeze], app: str
) -> datetime | None:
    """The earliest start at or after `after` whose 4-hour slot meets no freeze and ends by the deadline:
    a window start when one fits, else any free slot (mini add-ons, and the deadline's last resort)."""
    if window is not None:
        start = window.next_start(after)
        while start + WINDOW <= required_by:
            if blocking(freezes, app, start, start + WINDOW) is None:
                return start
            start += WEEK
    # No window fits: the earliest free moment, stepping past each blocking freeze.
    start = after
    while start + WINDOW <= required_by:
        freeze = blocking(freezes, app, start, start + WINDOW)
        if freeze is None:
            return start
        start = freeze.ends_at
    return None

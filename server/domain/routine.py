"""The 90-day rule: no add-on goes more than 90 days without a maintenance. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

MAX_INTERVAL = timedelta(days=90)
LEAD = timedelta(days=14)  # two weekly windows to schedule it in
MIN_NOTICE = timedelta(hours=4)


def maintained_before(now: datetime) -> datetime:
    """The last maintenance at or before which `routine_required_by` gives a deadline now."""
    return now - (MAX_INTERVAL - LEAD)


def routine_required_by(last: datetime, now: datetime) -> datetime | None:
    """When a routine maintenance must be required now, its deadline; else None.

    `last` is the add-on's last completed maintenance (or its creation). The maintenance becomes required
    14 days before the 90-day mark, with the mark as deadline; a mark already passed (the scheduler was
    down) gives the shortest sane notice instead.
    """
    mark = last + MAX_INTERVAL
    if now < mark - LEAD:
        return None
    return max(mark, now + MIN_NOTICE)

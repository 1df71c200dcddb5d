"""When a maintenance should run: pure functions of the window, the deadline and now."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from kvmaint.clock import iso
from kvmaint.errors import ErrorReason, FailedPrecondition, InvalidArgument
from server.domain.freezes import Freeze, blocking, next_allowed_start
from server.domain.windows import WEEK, WINDOW, Window

MAX_DELAY_WEEKS = 520


@dataclass(frozen=True)
class Slot:
    at: datetime
    explanation: str
    # The earliest start the owner chose with `schedule` (the Monday 00:00 UTC of the week asked for):
    # a window change picks the new window's first start from there, never earlier. None: from now.
    not_before: datetime | None = None


def week_start(at: datetime) -> datetime:
    """Monday 00:00 UTC of the week that holds `at` (weeks run Monday to Sunday, as `--week` does)."""
    day = at.date() - timedelta(days=at.weekday())
    return datetime(day.year, day.month, day.day, tzinfo=at.tzinfo)


def initial_slot(window: Window | None, now: datetime, required_by: datetime) -> Slot:
    """The start of the next window that ends before the deadline; else the latest safe time before it."""
    if window is None:
        return Slot(now, "mini add-ons have no maintenance window: it runs at the next free slot")
    start = window.next_start(now)
    if start + WINDOW <= required_by:
        return Slot(
            start,
            f"the next window ({window.describe()}) that ends before the deadline {iso(required_by)}",
        )
    latest = max(now, required_by - WINDOW)
    return Slot(
        latest,
        f"no window ({window.describe()}) ends before the deadline {iso(required_by)}, "
        "so it runs at the latest safe time before it",
    )


def _check_deadline(at: datetime, required_by: datetime) -> None:
    if at + WINDOW > required_by:
        raise FailedPrecondition(
            f"Cannot schedule the maintenance for {iso(at)}: it is required by {iso(required_by)}, "
            "and its window would end after that deadline.",
            reason=ErrorReason.PAST_REQUIRED_BY,
            metadata={"requiredBy": iso(required_by)},
        )


def delay_by_weeks(
    window: Window | None, current: datetime, weeks: int, now: datetime, required_by: datetime
) -> Slot:
    if not -MAX_DELAY_WEEKS <= weeks <= MAX_DELAY_WEEKS:
        raise InvalidArgument.field("weeks", f"{weeks} weeks is out of range (-520 to 520).")
    assert window is not None
    at = current + weeks * WEEK
    # Keep it aligned to the (possibly updated) window.
    at = window.start_in_week_of(at.date())
    note = f"moved by {weeks} week(s) to the window {window.describe()}"
    not_before: datetime | None = week_start(at)
    if at < now:
        at = window.next_start(now)
        note = f"moved to the next window ({window.describe()}), since the requested week has passed"
        not_before = None
    _check_deadline(at, required_by)
    return Slot(at, f"{note}; required by {iso(required_by)}", not_before)


def into_week_of(window: Window | None, day: date, now: datetime, required_by: datetime) -> Slot:
    assert window is not None
    at = window.start_in_week_of(day)
    if at + WINDOW <= now:
        raise FailedPrecondition(
            f"The window {window.describe()} in the week of {day.isoformat()} has already passed.",
            reason=ErrorReason.WINDOW_PASSED,
        )
    if at < now:
        at = now
    _check_deadline(at, required_by)
    return Slot(
        at,
        f"the window {window.describe()} in the week of {day.isoformat()}; required by {iso(required_by)}",
        week_start(at),
    )


def realign(window: Window, now: datetime, required_by: datetime, not_before: datetime | None = None) -> Slot:
    """After a window update: the new window's first start from now (or from the week the owner moved it
    into, `not_before`) that ends by the deadline; else as `initial_slot`.

    A function of the new window, not of the current `scheduled_for`: the same window gives the same
    date whatever windows came before it (anchoring on the week of the previous date skipped a free
    window earlier than that date)."""
    start = window.next_start(max(now, not_before) if not_before is not None else now)
    if start + WINDOW > required_by:
        return initial_slot(window, now, required_by)
    if not_before is not None and not_before > now:
        why = f"the first window ({window.describe()}) from the week of {not_before.date().isoformat()}"
    else:
        why = f"the next window ({window.describe()})"
    return Slot(start, f"realigned to {why}, which ends before the deadline {iso(required_by)}", not_before)


def avoid_freezes(
    slot: Slot, window: Window | None, required_by: datetime, freezes: list[Freeze], app: str, *, strict: bool
) -> Slot:
    """Moves a slot that meets a freeze to the next free one before the deadline. With no free slot left,
    `strict` refuses (a person asked for this time); otherwise the deadline wins over the freeze."""
    freeze = blocking(freezes, app, slot.at, slot.at + WINDOW)
    if freeze is None:
        return slot
    at = next_allowed_start(window, slot.at, required_by, freezes, app)
    if at is None:
        if strict:
            raise FailedPrecondition(
                f"That time falls in {freeze.describe()}, and no free slot is left before the deadline: "
                f"the maintenance is required by {iso(required_by)}.",
                reason=ErrorReason.PAST_REQUIRED_BY,
                metadata={"requiredBy": iso(required_by)},
            )
        no_slot = f"no slot outside {freeze.describe()} meets the deadline"
        return replace(slot, explanation=f"{slot.explanation}; {no_slot}")
    return replace(slot, at=at, explanation=f"{slot.explanation}; moved past {freeze.describe()}")


def duration_approximate(seconds: int, ended: bool = True) -> str:
    """Heroku's "~ 3 minutes"; empty until the maintenance has ended."""
    if not ended:
        return ""
    if seconds < 1:
        return "< 1 second"
    if seconds == 1:
        return "~ 1 second"
    if seconds < 90:
        return f"~ {seconds} seconds"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"~ {minutes} minutes"
    return f"~ {round(seconds / 3600)} hours"


DEFAULT_REQUIRED_BY = timedelta(days=14)

"""When a maintenance should run: pure functions of the window, the deadline and now."""

from __future__ import annotations

from dataclasses import dataclass
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
    if at < now:
        at = window.next_start(now)
        note = f"moved to the next window ({window.describe()}), since the requested week has passed"
    _check_deadline(at, required_by)
    return Slot(at, f"{note}; required by {iso(required_by)}")


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
    )


def realign(window: Window, scheduled_for: datetime, now: datetime, required_by: datetime) -> Slot:
    """After a window update: the same week's new window, or the next one, within the deadline."""
    at = window.start_in_week_of(scheduled_for.date())
    if at < now:
        at = window.next_start(now)
    if at + WINDOW > required_by:
        return initial_slot(window, now, required_by)
    return Slot(at, f"realigned to the updated window {window.describe()}")


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
        return Slot(slot.at, f"{slot.explanation}; no slot outside {freeze.describe()} meets the deadline")
    return Slot(at, f"{slot.explanation}; moved past {freeze.describe()}")


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

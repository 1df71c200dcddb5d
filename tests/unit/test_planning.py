from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from kvmaint.errors import FailedPrecondition, InvalidArgument
from server.domain.planning import delay_by_weeks, duration_approximate, initial_slot, into_week_of, realign
from server.domain.windows import Window

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday
FRIDAY_18 = Window(4, 18 * 60)


def test_next_window_that_ends_before_the_deadline() -> None:
    slot = initial_slot(FRIDAY_18, NOW, NOW + timedelta(days=14))
    assert slot.at == datetime(2026, 1, 9, 18, 0, tzinfo=UTC)
    assert "Fridays 18:00 to 22:00 UTC" in slot.explanation


def test_deadline_inside_the_window_takes_latest_safe_time() -> None:
    deadline = datetime(2026, 1, 9, 20, 0, tzinfo=UTC)  # inside Friday's window
    slot = initial_slot(FRIDAY_18, NOW, deadline)
    assert slot.at == deadline - timedelta(hours=4)
    assert "latest safe time" in slot.explanation


def test_mini_runs_now() -> None:
    assert initial_slot(None, NOW, NOW + timedelta(days=3)).at == NOW


def test_delay_by_two_weeks_and_back() -> None:
    current = datetime(2026, 1, 9, 18, 0, tzinfo=UTC)
    later = delay_by_weeks(FRIDAY_18, current, 2, NOW, NOW + timedelta(days=60))
    assert later.at == current + timedelta(weeks=2)
    back = delay_by_weeks(FRIDAY_18, later.at, -1, NOW, NOW + timedelta(days=60))
    assert back.at == current + timedelta(weeks=1)


def test_delay_into_the_past_takes_next_window() -> None:
    current = datetime(2026, 1, 9, 18, 0, tzinfo=UTC)
    slot = delay_by_weeks(FRIDAY_18, current, -3, NOW, NOW + timedelta(days=60))
    assert slot.at == current


def test_delay_past_deadline_is_refused_with_the_deadline() -> None:
    deadline = NOW + timedelta(days=10)
    with pytest.raises(FailedPrecondition, match="2026-01-15T12:00:00.000"):
        delay_by_weeks(FRIDAY_18, datetime(2026, 1, 9, 18, tzinfo=UTC), 2, NOW, deadline)


@pytest.mark.parametrize("weeks", [521, -521, 10**6])
def test_absurd_weeks(weeks: int) -> None:
    with pytest.raises(InvalidArgument):
        delay_by_weeks(FRIDAY_18, NOW, weeks, NOW, NOW + timedelta(days=60))


def test_into_week_of_date() -> None:
    slot = into_week_of(FRIDAY_18, date(2026, 1, 20), NOW, NOW + timedelta(days=60))
    assert slot.at == datetime(2026, 1, 23, 18, 0, tzinfo=UTC)
    with pytest.raises(FailedPrecondition, match="already passed"):
        into_week_of(FRIDAY_18, date(2025, 12, 1), NOW, NOW + timedelta(days=60))


def test_realign_after_window_update() -> None:
    slot = realign(Window(6, 14 * 60 + 30), NOW, NOW + timedelta(days=60))
    assert slot.at == datetime(2026, 1, 11, 14, 30, tzinfo=UTC)


def test_realign_takes_the_next_window_not_the_week_of_the_old_date() -> None:
    """Issue 11: on Tuesday 12-01, a maintenance planned for Monday 12-07 moved to Sunday 14:30 goes to
    Sunday 12-06, the next free window, not Sunday 12-13 (the Sunday of 12-07's week)."""
    tuesday = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    slot = realign(Window(6, 14 * 60 + 30), tuesday, tuesday + timedelta(days=30))
    assert slot.at == datetime(2026, 12, 6, 14, 30, tzinfo=UTC)


def test_realign_keeps_the_week_the_owner_moved_it_into() -> None:
    current = datetime(2026, 1, 9, 18, 0, tzinfo=UTC)
    later = delay_by_weeks(FRIDAY_18, current, 2, NOW, NOW + timedelta(days=60))
    assert later.not_before == datetime(2026, 1, 19, tzinfo=UTC)  # the Monday of the week asked for
    slot = realign(Window(0, 9 * 60), NOW, NOW + timedelta(days=60), later.not_before)
    assert slot.at == datetime(2026, 1, 19, 9, 0, tzinfo=UTC)
    assert "from the week of 2026-01-19" in slot.explanation
    into = into_week_of(FRIDAY_18, date(2026, 1, 27), NOW, NOW + timedelta(days=60))
    assert into.not_before == datetime(2026, 1, 26, tzinfo=UTC)


def test_realign_past_the_deadline_falls_back_to_the_initial_slot() -> None:
    deadline = datetime(2026, 1, 19, 12, 0, tzinfo=UTC)  # the week asked for ends too late
    slot = realign(Window(0, 9 * 60), NOW, deadline, datetime(2026, 1, 19, tzinfo=UTC))
    assert slot == initial_slot(Window(0, 9 * 60), NOW, deadline)
    assert slot.at == datetime(2026, 1, 12, 9, 0, tzinfo=UTC)


def test_a_passed_week_leaves_no_anchor() -> None:
    slot = delay_by_weeks(
        FRIDAY_18, datetime(2026, 1, 9, 18, 0, tzinfo=UTC), -3, NOW, NOW + timedelta(days=60)
    )
    assert slot.not_before is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "< 1 second"), (1, "~ 1 second"), (45, "~ 45 seconds"), (186, "~ 3 minutes"), (7200, "~ 2 hours")],
)
def test_duration_approximate(seconds: int, text: str) -> None:
    assert duration_approximate(seconds) == text
    assert duration_approximate(seconds, ended=False) == ""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvmaint.errors import InvalidArgument
from server.domain.windows import Window, parse_day, parse_time, parse_window, random_default_window


@pytest.mark.parametrize(
    ("day", "time", "expected"),
    [
        ("Sunday", "14:30", Window(6, 14 * 60 + 30)),
        ("sunday", "13:30", Window(6, 13 * 60 + 30)),
        ("sunday", "1:30PM", Window(6, 13 * 60 + 30)),
        ("SUNDAYS", "1:30 pm", Window(6, 13 * 60 + 30)),
        ("mon", "12:00AM", Window(0, 0)),
        ("Friday", "12:15PM", Window(4, 12 * 60 + 15)),
        ("friday", "23:59", Window(4, 23 * 60 + 59)),
    ],
)
def test_accepts_what_heroku_accepts(day: str, time: str, expected: Window) -> None:
    assert parse_window(day, time) == expected


@pytest.mark.parametrize("bad", ["", "Funday", "sundayy", "7", "su", "Mondays!", " " * 3])
def test_bad_day_names_the_day(bad: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_day(bad)
    assert [v.field for v in err.value.violations] == ["day"]


@pytest.mark.parametrize("bad", ["", "24:00", "14:60", "13:30PM", "0:30AM", "1430", "2pm", "14:3", "-1:00"])
def test_bad_times_name_the_time(bad: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_time(bad)
    assert [v.field for v in err.value.violations] == ["time"]


def test_both_bad_parts_are_named() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_window("Funday", "25:00")
    assert [v.field for v in err.value.violations] == ["day", "time"]
    assert "Funday" in str(err.value) and "25:00" in str(err.value)


@given(st.text(max_size=30))
def test_parse_day_never_crashes(text: str) -> None:
    try:
        day = parse_day(text)
    except InvalidArgument:
        return
    assert 0 <= day <= 6


@given(st.integers(0, 23), st.integers(0, 59))
def test_24h_round_trip(hour: int, minute: int) -> None:
    w = Window(2, parse_time(f"{hour}:{minute:02d}"))
    assert w.start_time == f"{hour:02d}:{minute:02d}"


def test_describe_runs_past_midnight() -> None:
    assert Window(6, 22 * 60).describe() == "Sundays 22:00 to 02:00 UTC"
    assert Window(4, 18 * 60).describe() == "Fridays 18:00 to 22:00 UTC"


def test_next_start_crosses_week_boundary() -> None:
    w = Window(0, 18 * 60)  # Mondays 18:00
    sunday = datetime(2026, 1, 11, 23, 0, tzinfo=UTC)
    assert w.next_start(sunday) == datetime(2026, 1, 12, 18, 0, tzinfo=UTC)
    monday_late = datetime(2026, 1, 12, 18, 1, tzinfo=UTC)
    assert w.next_start(monday_late) == datetime(2026, 1, 19, 18, 0, tzinfo=UTC)


def test_window_across_midnight_contains_early_monday() -> None:
    w = Window(6, 22 * 60)  # Sunday 22:00 -> Monday 02:00
    assert w.contains(datetime(2026, 1, 12, 1, 59, tzinfo=UTC))
    assert not w.contains(datetime(2026, 1, 12, 2, 0, tzinfo=UTC))
    start, end = w.current_or_next(datetime(2026, 1, 12, 1, 0, tzinfo=UTC))
    assert (start, end) == (datetime(2026, 1, 11, 22, 0, tzinfo=UTC), datetime(2026, 1, 12, 2, 0, tzinfo=UTC))


def test_start_in_week_of() -> None:
    w = Window(6, 14 * 60 + 30)
    assert w.start_in_week_of(date(2026, 1, 7)) == datetime(2026, 1, 11, 14, 30, tzinfo=UTC)


@given(st.integers(0, 2**32))
def test_default_window_is_a_weekday_evening(seed: int) -> None:
    w = random_default_window(random.Random(seed))
    assert w.day < 5
    assert 18 * 60 <= w.start_minute <= 23 * 60


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)),
    st.integers(0, 6),
    st.integers(0, 24 * 60 - 1),
)
def test_next_start_is_the_first_start_not_before(at: datetime, day: int, minute: int) -> None:
    at = at.replace(tzinfo=UTC)
    w = Window(day, minute)
    start = w.next_start(at)
    assert at <= start < at + timedelta(days=7)
    assert start.weekday() == day and start.hour * 60 + start.minute == minute

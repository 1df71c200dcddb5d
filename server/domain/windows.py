"""Maintenance windows: parsing what Heroku accepts, the default, and window arithmetic in UTC.

A window is a weekly start (day of week, minute of day, UTC) and lasts four hours; one that starts late
runs past midnight into the next day (Sunday 22:00 runs to Monday 02:00).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from kvmaint.errors import InvalidArgument

WINDOW_HOURS = 4
WINDOW = timedelta(hours=WINDOW_HOURS)
WEEK = timedelta(days=7)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# The default window starts on a random weekday between 18:00 and 23:00 UTC. We read "between" as a
# start on the half hour from 18:00 up to and including 23:00 (so the window itself may end at 03:00).
DEFAULT_FIRST_START = 18 * 60
DEFAULT_LAST_START = 23 * 60
DEFAULT_STEP_MINUTES = 30

_TIME_24 = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2})$")
_TIME_12 = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2})\s*(?P<ampm>[ap]\.?m\.?)$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Window:
    day: int  # 0 = Monday
    start_minute: int  # minutes after 00:00 UTC

    def __post_init__(self) -> None:
        if not 0 <= self.day <= 6 or not 0 <= self.start_minute < 24 * 60:
            raise ValueError(f"invalid window {self.day}/{self.start_minute}")

    @property
    def day_name(self) -> str:
        return DAYS[self.day]

    @property
    def start_time(self) -> str:
        return f"{self.start_minute // 60:02d}:{self.start_minute % 60:02d}"

    @property
    def end_time(self) -> str:
        end = (self.start_minute + WINDOW_HOURS * 60) % (24 * 60)
        return f"{end // 60:02d}:{end % 60:02d}"

    def describe(self) -> str:
        """Heroku's form: "Fridays 18:00 to 22:00 UTC"."""
        return f"{self.day_name}s {self.start_time} to {self.end_time} UTC"

    def start_in_week_of(self, day: date) -> datetime:
        """The window's start in the Monday-to-Sunday week that holds `day`."""
        monday = day - timedelta(days=day.weekday())
        start_day = monday + timedelta(days=self.day)
        return datetime(start_day.year, start_day.month, start_day.day, tzinfo=UTC) + timedelta(
            minutes=self.start_minute
        )

    def next_start(self, after: datetime) -> datetime:
        """The first window start at or after `after`."""
        start = self.start_in_week_of(after.astimezone(UTC).date())
        while start < after:
            start += WEEK
        return start

    def current_or_next(self, at: datetime) -> tuple[datetime, datetime]:
        """The window that contains `at` if any, else the next one: (start, end)."""
        start = self.next_start(at - WINDOW + timedelta(microseconds=1))
        return start, start + WINDOW

    def contains(self, at: datetime) -> bool:
        start, end = self.current_or_next(at)
        return start <= at < end


def parse_day(text: str) -> int:
    """Accepts a day name in any case, plural or three-letter abbreviated: Sunday, sunday, Sundays, sun."""
    t = text.strip().lower()
    if t.endswith("s") and t[:-1] in {d.lower() for d in DAYS}:
        t = t[:-1]
    for i, name in enumerate(DAYS):
        if t == name.lower() or (len(t) == 3 and t == name[:3].lower()):
            return i
    raise InvalidArgument.field(
        "day", f"'{text}' is not a day of the week; use a name such as Sunday or sunday."
    )


def parse_time(text: str) -> int:
    """Accepts 24-hour "14:30" and 12-hour "1:30PM" / "1:30 pm"; returns minutes after midnight."""
    t = text.strip()
    bad = InvalidArgument.field(
        "time", f"'{text}' is not a time of day; use HH:MM in 24-hour UTC (14:30) or 12-hour form (1:30PM)."
    )
    if m := _TIME_24.match(t):
        hour, minute = int(m["h"]), int(m["m"])
        if hour > 23 or minute > 59:
            raise bad
        return hour * 60 + minute
    if m := _TIME_12.match(t):
        hour, minute = int(m["h"]), int(m["m"])
        if not 1 <= hour <= 12 or minute > 59:
            raise bad
        pm = m["ampm"].lower().startswith("p")
        hour = hour % 12 + (12 if pm else 0)
        return hour * 60 + minute
    raise bad


def parse_window(day: str, time: str) -> Window:
    violations = []
    parsed_day = parsed_time = None
    for name, fn, text in (("day", parse_day, day), ("time", parse_time, time)):
        try:
            value = fn(text)
        except InvalidArgument as err:
            violations.extend(err.violations)
            continue
        if name == "day":
            parsed_day = value
        else:
            parsed_time = value
    if violations or parsed_day is None or parsed_time is None:
        raise InvalidArgument(" ".join(v.description for v in violations), violations)
    return Window(parsed_day, parsed_time)


def random_default_window(rng: random.Random) -> Window:
    slots = range(DEFAULT_FIRST_START, DEFAULT_LAST_START + 1, DEFAULT_STEP_MINUTES)
    return Window(rng.randrange(0, 5), rng.choice(list(slots)))


def parse_week(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidArgument.field("week", f"'{text}' is not a date; use YYYY-MM-DD.") from None

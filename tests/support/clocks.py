"""Clocks for tests beyond kvmaint.clock.FakeClock."""

from __future__ import annotations

from datetime import datetime

from kvmaint.clock import SystemClock


class SetWallClock(SystemClock):
    """A wall clock the test sets (as FakeClock.set), with real waits and deadlines: for a scheduler that
    drives real agents, whose commands, catch-up polls and timeouts take real time."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when

"""Time behind an interface, so logic never reads the wall clock itself and tests step through weeks."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps: deadlines and durations, never dates."""
        ...

    def busy(self) -> float:
        """Seconds of CPU this thread has used: how long a step held the event loop, without the time
        it awaited I/O (a PostgreSQL round trip leaves the loop to others)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait_for(self, aw: Awaitable[T], timeout: float) -> T:
        """`aw`'s result, or TimeoutError (with `aw` cancelled) once `timeout` has passed on this clock."""
        ...


async def race_sleep(clock: Clock, aw: Awaitable[T], timeout: float) -> T:
    """`wait_for` for any clock: races `aw` against `clock.sleep(timeout)`, so a FakeClock steps it."""
    task = asyncio.ensure_future(aw)
    timer = asyncio.ensure_future(clock.sleep(timeout))
    try:
        await asyncio.wait((task, timer), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        timer.cancel()
        raise
    timer.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise TimeoutError


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def busy(self) -> float:
        return time.thread_time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def wait_for(self, aw: Awaitable[T], timeout: float) -> T:
        return await asyncio.wait_for(aw, max(0.0, timeout))


class FakeClock:
    """A clock that only moves when told; sleepers wake when `advance` passes their deadline."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
        self._mono = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def busy(self) -> float:
        return self.monotonic()  # a fake step is all loop time

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._seq), fut))
        await fut

    async def wait_for(self, aw: Awaitable[T], timeout: float) -> T:
        return await race_sleep(self, aw, timeout)

    @property
    def sleepers(self) -> int:
        """How many sleeps are pending: tests wait for the code under test to be asleep before advancing."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    async def advance(self, delta: timedelta | float) -> None:
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        target = self._mono + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            wake, _, fut = heapq.heappop(self._sleepers)
            self._now += timedelta(seconds=wake - self._mono)
            self._mono = wake
            if not fut.done():
                fut.set_result(None)
            await asyncio.sleep(0)
        self._now += timedelta(seconds=target - self._mono)
        self._mono = target
        await asyncio.sleep(0)

    def set(self, when: datetime) -> None:
        """Jumps the wall clock without waking sleepers (used to set a scene)."""
        self._now = when


def utc(dt: datetime) -> datetime:
    """Normalises to aware UTC; naive values are taken as UTC."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def iso(dt: datetime | None) -> str:
    """ISO 8601 UTC with milliseconds, as the seed prints times ("2023-04-28T18:04:21.141+00:00")."""
    if dt is None:
        return ""
    return utc(dt).isoformat(timespec="milliseconds")

"""Background work and the API share one event loop. Work done in steps (a fleet-wide filing's batches, a
reminder burst's transactions) rests after each step for as long as keeps it to SHARE of the loop's time:
the requests queued behind a step run during the rest instead of one loop turn between two steps (with
`asyncio.sleep(0)` a GetMaintenanceInfo, which needs a few turns, waited a step per turn: p50 227 ms
during a 10k filing at concurrency 20).

A step is short (STEP_SECONDS of holding the loop and the write lock): an API call arriving meanwhile
waits for it, once per loop turn it needs. At 20k add-ons, a filing in steps of 25 ms at half the loop
left GetMaintenanceInfo at p50/p99 60/162 ms (concurrency 20); in steps of 10 ms at a third, 31/86.

The rest is in proportion to the step's CPU time on the loop's thread (`Clock.busy`), not its wall time:
on PostgreSQL most of a step is awaiting round trips, while the loop serves others."""

from __future__ import annotations

import types
from collections.abc import Coroutine, Generator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from kvmaint.clock import Clock

T = TypeVar("T")

SHARE = 1 / 3
STEP_SECONDS = 0.010  # how long a step holds the loop about, at most
# How long a step holds its transaction (and the write lock) at most, in wall time: on PostgreSQL a step
# is mostly round trips, and ending it at 10 ms of wall time filed 10 add-ons a batch, 34 a second.
HOLD_SECONDS = 0.1


@dataclass
class Step:
    wall: float  # clock.monotonic() at its start: how long it has held a transaction
    busy: float = 0.0  # the loop time its own code used in the stretches that ended (under `run`)
    since: float | None = None  # clock.busy() when its current stretch on the loop began; None between

    def used(self, clock: Clock) -> float:
        """The loop time this step has used: its own stretches only, when it runs under `run`."""
        return self.busy + (clock.busy() - self.since if self.since is not None else 0.0)


def begin(clock: Clock) -> Step:
    return Step(clock.monotonic(), 0.0, clock.busy())


def over(clock: Clock, step: Step) -> bool:
    """Whether `step` has held the loop STEP_SECONDS, or its transaction HOLD_SECONDS."""
    return step.used(clock) >= STEP_SECONDS or clock.monotonic() - step.wall >= HOLD_SECONDS


async def run(clock: Clock, step: Step, work: Coroutine[Any, Any, T]) -> T:
    """Awaits `work`, counting in `step` only the loop time `work` itself uses: the stretches between
    its awaits. The thread's CPU time over the whole step would also count what the loop ran for others
    while the step awaited a round trip: on PostgreSQL under API load, three times the step's own."""
    if step.since is not None:  # what ran between `begin` and here
        step.busy += clock.busy() - step.since
        step.since = None
    return await _metered(clock, step, work)


@types.coroutine
def _metered(clock: Clock, step: Step, work: Coroutine[Any, Any, T]) -> Generator[Any, Any, T]:
    """Drives `work` as the task would, one `send` (a stretch on the loop) at a time, timing each; what
    `work` yields (the futures it awaits) goes up to the task unchanged, and what the task sends or
    throws back (a result, a cancellation) goes down to `work`."""
    value: Any = None
    thrown: BaseException | None = None
    while True:
        step.since = clock.busy()
        try:
            out = work.send(value) if thrown is None else work.throw(thrown)
        except StopIteration as done:
            return cast(T, done.value)
        finally:
            step.busy += clock.busy() - step.since
            step.since = None
        try:
            value, thrown = (yield out), None
        except GeneratorExit:  # closed unfinished: so is `work`
            work.close()
            raise
        except BaseException as e:  # a cancellation included: it is `work`'s to handle
            value, thrown = None, e


async def rest(clock: Clock, step: Step, share: float = SHARE) -> None:
    """After `step`: a pause in proportion to the loop time it used. Measured and slept on the injected
    clock, so a fake clock's steps take no time and rest none."""
    spent = step.used(clock)
    await clock.sleep(spent * (1 - share) / share if spent > 0 else 0.0)

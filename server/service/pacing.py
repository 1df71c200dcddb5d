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

from dataclasses import dataclass

from kvmaint.clock import Clock

SHARE = 1 / 3
STEP_SECONDS = 0.010  # how long a step holds the loop about, at most
# How long a step holds its transaction (and the write lock) at most, in wall time: on PostgreSQL a step
# is mostly round trips, and ending it at 10 ms of wall time filed 10 add-ons a batch, 34 a second.
HOLD_SECONDS = 0.1


@dataclass(frozen=True)
class Step:
    wall: float  # clock.monotonic() at its start: how long it has held a transaction
    busy: float  # clock.busy() at its start: how long it has held the loop


def begin(clock: Clock) -> Step:
    return Step(clock.monotonic(), clock.busy())


def over(clock: Clock, step: Step) -> bool:
    """Whether `step` has held the loop STEP_SECONDS, or its transaction HOLD_SECONDS."""
    return clock.busy() - step.busy >= STEP_SECONDS or clock.monotonic() - step.wall >= HOLD_SECONDS


async def rest(clock: Clock, step: Step, share: float = SHARE) -> None:
    """After `step`: a pause in proportion to the loop time it used. Measured and slept on the injected
    clock, so a fake clock's steps take no time and rest none."""
    spent = clock.busy() - step.busy
    await clock.sleep(spent * (1 - share) / share if spent > 0 else 0.0)

"""Background work and the API share one event loop. Work done in steps (a fleet-wide filing's batches, a
reminder burst's transactions) rests after each step for as long as keeps it to SHARE of the loop's time:
the requests queued behind a step run during the rest instead of one loop turn between two steps (with
`asyncio.sleep(0)` a GetMaintenanceInfo, which needs a few turns, waited a step per turn: p50 227 ms
during a 10k filing at concurrency 20)."""

from __future__ import annotations

from kvmaint.clock import Clock

SHARE = 0.5
STEP_SECONDS = 0.025  # how long a step holds the loop (and a transaction) about, at most


async def rest(clock: Clock, began: float, share: float = SHARE) -> None:
    """After a step that began at `began` (`clock.monotonic()`): a pause in proportion to it. Measured and
    slept on the injected clock, so a fake clock's steps take no time and rest none."""
    spent = clock.monotonic() - began
    await clock.sleep(spent * (1 - share) / share if spent > 0 else 0.0)

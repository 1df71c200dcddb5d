"""Background steps rest in proportion to how long they held the loop, on the injected clock."""

from __future__ import annotations

import asyncio

import pytest

from kvmaint.clock import FakeClock
from server.service import pacing


class Recording(FakeClock):
    def __init__(self) -> None:
        super().__init__()
        self.mono = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


class Awaiting(Recording):
    """A step's loop time (`busy`) moved apart from its wall time."""

    cpu = 0.0

    def busy(self) -> float:
        return self.cpu


@pytest.mark.parametrize("share,rest", [(0.5, 0.04), (1 / 3, 0.08), (0.8, 0.01)])
async def test_a_step_rests_so_it_keeps_its_share(share: float, rest: float) -> None:
    clock = Recording()
    began = pacing.begin(clock)
    clock.mono += 0.04  # the step held the loop 40 ms
    await pacing.rest(clock, began, share)
    assert clock.slept == [pytest.approx(rest)]


async def test_a_step_rests_for_the_loop_time_it_used_not_the_time_it_awaited() -> None:
    clock = Awaiting()
    began = pacing.begin(clock)
    clock.mono += 0.1  # 100 ms went by, most of it awaiting PostgreSQL
    clock.cpu += 0.01  # of which the step ran 10 ms on the loop
    await pacing.rest(clock, began, 1 / 3)
    assert clock.slept == [pytest.approx(0.02)]


async def test_a_step_that_took_no_time_only_yields() -> None:
    clock = Recording()
    await pacing.rest(clock, pacing.begin(clock))
    assert clock.slept == [0.0]


async def test_a_step_is_over_after_its_loop_time_or_its_longest_hold() -> None:
    clock = Awaiting()
    step = pacing.begin(clock)
    clock.mono += 0.05  # awaiting PostgreSQL: 50 ms of wall time, little of the loop's
    clock.cpu += 0.002
    assert not pacing.over(clock, step)
    clock.cpu += pacing.STEP_SECONDS
    assert pacing.over(clock, step)  # it has used its share of the loop
    step = pacing.begin(clock)
    clock.mono += pacing.HOLD_SECONDS
    assert pacing.over(clock, step)  # it has held its transaction long enough


async def test_a_metered_step_counts_its_own_stretches_not_what_ran_while_it_awaited() -> None:
    clock = Awaiting()
    gate = asyncio.Event()

    async def work() -> int:
        clock.cpu += 0.004  # its own code, before a round trip
        await gate.wait()
        clock.cpu += 0.003  # and after it
        return 7

    async def others() -> None:
        clock.cpu += 0.05  # the API, run by the loop while the step awaits
        gate.set()

    step = pacing.begin(clock)
    clock.cpu += 0.001  # between `begin` and `run`: the step's own as well
    got, _ = await asyncio.gather(pacing.run(clock, step, work()), others())
    assert got == 7
    assert step.used(clock) == pytest.approx(0.008)
    assert not pacing.over(clock, step)  # 58 ms of the thread's time went by, 8 of them the step's
    await pacing.rest(clock, step, 1 / 3)
    assert clock.slept == [pytest.approx(0.016)]


async def test_a_metered_step_passes_errors_and_cancellations_through_to_its_work() -> None:
    clock = Awaiting()

    async def fails() -> None:
        await asyncio.sleep(0)
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await pacing.run(clock, pacing.begin(clock), fails())

    cleaned: list[str] = []

    async def waits() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            clock.cpu += 0.002
            cleaned.append("finally")

    step = pacing.begin(clock)
    task = asyncio.create_task(pacing.run(clock, step, waits()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["finally"] and step.used(clock) == pytest.approx(0.002)

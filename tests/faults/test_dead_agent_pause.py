"""The dead-agent write stall: the old primary's agent frozen right after CLIENT PAUSE.

The pause is sent in 250 ms slices the agent renews (agent/redisnode/pause.py), so while the agent is
frozen the writes resume on the old primary (still the primary) within a slice; once it thaws, the
maintenance ends completed or failed safe, with no acknowledged write lost and no two-master moment.
"""

from __future__ import annotations

import asyncio
import time

from tests.faults.rig import rig
from tests.support.eventually import eventually
from tests.support.freeze import durable_step, paused, resume, step_until

FROZEN_SECONDS = 3.0


async def test_a_frozen_agent_releases_the_writes_within_a_slice(tmp_path, scheduler_factory, agents) -> None:
    async with rig(tmp_path, scheduler_factory, agents) as r:
        agent = r.agent_pid(r.primary)
        await r.start()
        await asyncio.to_thread(step_until, agent, durable_step(r.scheduler.db, "failover"), 60, 0.01)
        await asyncio.to_thread(step_until, agent, paused(r.primary.url))
        frozen_at = time.monotonic()
        try:
            mark = len(r.writer.acknowledged())
            # Behaviour: the writes go on while the agent is still frozen.
            await eventually(lambda: len(r.writer.acknowledged()) > mark + 50, timeout=2.5)
            assert (await r.api.config())["REDIS_URL"] == r.primary.url
            await asyncio.sleep(max(0.0, frozen_at + FROZEN_SECONDS - time.monotonic()))  # hold it frozen
            stall = r.writer.max_gap(frozen_at, time.monotonic())
        finally:
            resume(agent)
        print(f"\nwrites stalled at most {stall * 1000:.0f} ms with the agent frozen after CLIENT PAUSE")
        info = await r.ended()
        await r.assert_safe(info)
        assert stall < 1.0

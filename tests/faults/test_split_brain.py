"""Fault 2: the old primary's redis-server dies mid-failover; it must not come back as a second master.

The old primary's agent is stepped (SIGSTOP/SIGCONT slices) to just after the demotion, or just after
the promotion; the old primary's redis-server is SIGKILLed there and the agent goes on. `finish` used to
restart it from its stale config (CONFIG REWRITE failed on the dead server) as a master: two writable
primaries, reported `completed`. Now the restart carries the role the scheduler records.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.rig import rig
from tests.support.freeze import durable_step, resume, role_is, step_until


@pytest.mark.parametrize("point", ["demoted", "promoted"])
async def test_old_primary_killed_mid_failover_comes_back_a_replica(
    tmp_path, scheduler_factory, agents, point: str
) -> None:
    async with rig(tmp_path, scheduler_factory, agents) as r:
        agent = r.agent_pid(r.primary)
        await r.start()
        await asyncio.to_thread(
            step_until, agent, durable_step(r.scheduler.db, "maintain_standby", done=True), 60, 0.01
        )
        reached = (
            role_is(r.primary.url, "slave")
            if point == "demoted"
            else role_is(r.standby.url, "master")
        )
        await asyncio.to_thread(step_until, agent, reached)
        r.kill_redis(r.primary)
        resume(agent)
        info = await r.ended()
        v = await r.assert_safe(info)
        assert v.status == "completed", v

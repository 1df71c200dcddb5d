from __future__ import annotations

import asyncio

from kvmaint.clock import FakeClock
from server.agents.hub import AgentSession
from server.app import AgentRegistry
from server.storage.select import AnyStore
from tests.support.eventually import eventually


async def test_hellos_are_recorded_in_one_batch_and_the_newest_wins(store: AnyStore) -> None:
    registry = AgentRegistry(store, FakeClock())
    for i in range(500):
        registry.note(AgentSession(f"db-{i}", "10.0.0.1", "0.1.0", {}))
    registry.note(AgentSession("db-7", "10.0.0.99", "0.1.1", {}))  # reconnected with a new address
    assert await registry.flush() == 500
    assert await registry.flush() == 0
    async with store.transaction() as tx:
        agents = await tx.list_agents()
    assert len(agents) == 500 and agents["db-7"] == "10.0.0.99"


async def test_a_new_host_is_written_at_once_repeats_wait_for_the_tick(store: AnyStore) -> None:
    clock = FakeClock()
    registry = AgentRegistry(store, clock, known={"db-1": "10.0.0.1"}, interval=3600)
    task = asyncio.create_task(registry.run())
    try:
        await eventually(lambda: clock.sleepers > 0)
        registry.note(AgentSession("db-1", "10.0.0.1", "0.1.0", {}))  # known, same address: no hurry
        await asyncio.sleep(0.05)
        async with store.transaction() as tx:
            assert await tx.list_agents() == {}
        registry.note(AgentSession("db-2", "10.0.0.2", "0.1.0", {}))  # new: written without waiting

        async def recorded() -> bool:
            async with store.transaction() as tx:
                return (await tx.list_agents()).get("db-2") == "10.0.0.2"

        await eventually(recorded, timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

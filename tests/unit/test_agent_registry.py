from __future__ import annotations

from pathlib import Path

from kvmaint.clock import FakeClock
from server.agents.hub import AgentSession
from server.app import AgentRegistry
from server.storage.sqlite import SqliteStore


async def test_hellos_are_recorded_in_one_batch_and_the_newest_wins(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        registry = AgentRegistry(store, FakeClock())
        for i in range(500):
            registry.note(AgentSession(f"db-{i}", "10.0.0.1", "0.1.0", {}))
        registry.note(AgentSession("db-7", "10.0.0.99", "0.1.1", {}))  # reconnected with a new address
        assert await registry.flush() == 500
        assert await registry.flush() == 0
        async with store.transaction() as tx:
            agents = await tx.list_agents()
        assert len(agents) == 500 and agents["db-7"] == "10.0.0.99"
    finally:
        await store.close()

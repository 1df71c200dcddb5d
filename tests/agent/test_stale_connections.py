"""Fault 5: a local server restarted behind the agent's back; the agent's next command must not reuse a
connection the restart closed (the next failover was refused: "The old primary on port P is
unreachable: Connection closed by server")."""

from __future__ import annotations

from pathlib import Path

from agent.commands import CommandRunner
from agent.inventory import Inventory
from agent.results import ResultStore
from kvmaint.clock import SystemClock
from kvmaint.v1 import agent_pb2
from tests.support.eventually import eventually
from tests.support.redisproc import REDIS_SERVER, RedisFactory


class Sink:
    def __init__(self) -> None:
        self.results: dict[str, agent_pb2.CommandResult] = {}

    def send_progress(self, message: agent_pb2.ConnectRequest) -> None:
        pass

    def send_result(self, command_id: str, result: bytes) -> None:
        self.results[command_id] = agent_pb2.CommandResult.FromString(result)


async def _linked(factory_client, port: int) -> bool:
    info = await factory_client.info("replication")
    return bool(info.get("master_link_status") == "up" and int(info.get("master_port", 0)) == port)


async def test_commands_after_a_server_restart_use_fresh_connections(tmp_path: Path) -> None:
    factory = RedisFactory(tmp_path / "redis")
    clock = SystemClock()
    inventory = Inventory(tmp_path / "agent", REDIS_SERVER, clock)
    store = ResultStore(tmp_path / "agent" / "results.sqlite3")
    sink = Sink()
    runner = CommandRunner(inventory, store, clock, sink)
    try:
        primary = await factory.astart()
        replica = await factory.astart(replicaof=primary)
        inventory.adopt(primary.port)
        inventory.adopt(replica.port)
        check = agent_pb2.CatchUpCheckCommand(
            port=replica.port, primary_host="127.0.0.1", primary_port=primary.port, max_lag_bytes=1 << 20
        )
        check.max_last_io_seconds = 20

        async def caught_up(command_id: str) -> bool:
            task = runner.submit(agent_pb2.AgentCommand(command_id=command_id, catch_up_check=check))
            assert task is not None
            await task
            return sink.results[command_id].ok

        assert await eventually(lambda: caught_up(f"c-{clock.monotonic()}"), timeout=10)
        assert (await inventory.get(primary.port).status()).is_primary  # type: ignore[union-attr]

        # The primary's redis-server is killed and started again on the same port and data.
        primary.kill()
        await factory.astart(port=primary.port)
        await eventually(lambda: _linked(replica.client(), primary.port), timeout=15)

        failover = agent_pb2.FailoverCommand(
            port=primary.port, target_host="127.0.0.1", target_port=replica.port, timeout_ms=3000
        )
        task = runner.submit(agent_pb2.AgentCommand(command_id="f1", failover=failover))
        assert task is not None
        await task
        result = sink.results["f1"]
        assert result.ok, result.error
    finally:
        await runner.close()
        await inventory.close()
        store.close()
        await factory.aclose()

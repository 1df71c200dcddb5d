"""The agent in-process against a real gRPC fake scheduler, with real redis-servers."""

from __future__ import annotations

import asyncio

from agent.app import Agent
from agent.config import AgentConfig
from kvmaint.clock import FakeClock
from kvmaint.v1 import agent_pb2
from tests.agent.fakesched import FakeScheduler, command
from tests.agent.proxy import TcpProxy
from tests.support.eventually import eventually
from tests.support.redisproc import RedisFactory, RedisProcess


async def pair(factory: RedisFactory) -> tuple[RedisProcess, RedisProcess]:
    primary = await factory.astart()
    replica = await factory.astart(replicaof=primary)
    await eventually(replica.synced)
    return primary, replica


def by_port(servers) -> dict[int, agent_pb2.RedisServerStatus]:
    return {s.port: s for s in servers}


async def test_hello_carries_the_inventory(redis_factory, agent_factory, fake_scheduler):
    primary, replica = await pair(redis_factory)
    await agent_factory("db-1", adopt=(primary.port, replica.port))
    await fake_scheduler.wait_connected("db-1")
    hello = fake_scheduler.hellos[0]
    assert hello.host_id == "db-1" and hello.agent_version and hello.advertise_host == "127.0.0.1"
    servers = by_port(hello.servers)
    assert servers[primary.port].role == "master" and servers[primary.port].reachable
    assert not servers[primary.port].managed
    assert [r.port for r in servers[primary.port].replicas] == [replica.port]
    assert servers[replica.port].role == "slave" and servers[replica.port].primary_port == primary.port
    assert servers[replica.port].link_up and servers[replica.port].redis_version.startswith("7.")


async def test_heartbeats_show_lag(redis_factory, agent_factory, fake_scheduler):
    primary = await redis_factory.astart()
    proxy = await TcpProxy(primary.port).start()
    try:
        replica = await redis_factory.astart(replicaof=("127.0.0.1", proxy.port))
        await eventually(replica.synced)
        await agent_factory("db-1", adopt=(primary.port, replica.port), heartbeat_seconds=0.1)
        await fake_scheduler.wait_connected("db-1")
        proxy.freeze()
        for i in range(100):
            await primary.client().set(f"k{i}", "x" * 100)

        def lag() -> int | None:
            beat = fake_scheduler.last_heartbeat("db-1")
            if beat is None:
                return None
            servers = by_port(beat.servers)
            behind = servers[primary.port].repl_offset - servers[replica.port].repl_offset
            return behind if behind > 10_000 else None

        assert await eventually(lag) > 10_000
        proxy.thaw()

        def caught_up() -> bool:
            beat = fake_scheduler.last_heartbeat("db-1")
            servers = by_port(beat.servers) if beat else {}
            return bool(servers) and servers[primary.port].repl_offset == servers[replica.port].repl_offset

        await eventually(caught_up)
    finally:
        await proxy.close()


async def test_catch_up_and_failover_commands(redis_factory, agent_factory, fake_scheduler):
    primary, replica = await pair(redis_factory)
    await agent_factory("db-1", adopt=(primary.port, replica.port))
    await fake_scheduler.send(
        "db-1",
        command(
            "c1",
            catch_up_check=agent_pb2.CatchUpCheckCommand(
                port=replica.port,
                primary_host="127.0.0.1",
                primary_port=primary.port,
                max_lag_bytes=0,
                max_last_io_seconds=10,
            ),
        ),
    )
    result = await fake_scheduler.result("c1")
    assert result.ok and result.link_up and result.lag_bytes == 0 and result.last_io_seconds_ago >= 0

    await fake_scheduler.send(
        "db-1",
        command(
            "f1",
            failover=agent_pb2.FailoverCommand(
                port=primary.port, target_host="127.0.0.1", target_port=replica.port, timeout_ms=2000
            ),
        ),
    )
    result = await fake_scheduler.result("f1")
    assert result.ok, result.error
    assert 0 < result.write_pause_ms < 2000
    assert result.server.role == "slave" and result.server.primary_port == replica.port
    assert any("paused" in m for m in fake_scheduler.progress_for("f1"))


async def test_duplicate_command_id_runs_once(redis_factory, agent_factory, fake_scheduler):
    running = await agent_factory("db-1")
    start = command("s1", start_server=agent_pb2.StartServerCommand(port=0))
    await fake_scheduler.send("db-1", start)
    await fake_scheduler.send("db-1", start)  # while the first one runs
    first = await fake_scheduler.result("s1")
    assert first.ok and first.port > 0
    await fake_scheduler.send("db-1", start)  # after it finished
    await eventually(lambda: len(fake_scheduler.results_for("s1")) >= 2)
    assert all(r == first for r in fake_scheduler.results_for("s1"))
    assert running.agent.runner.executions == {"s1": 1}
    assert [n.port for n in running.agent.inventory] == [first.port]


async def test_command_past_its_deadline_is_refused(agent_factory, fake_scheduler):
    await agent_factory("db-1")
    await fake_scheduler.send(
        "db-1", command("late", deadline_in=-1, start_server=agent_pb2.StartServerCommand())
    )
    result = await fake_scheduler.result("late")
    assert not result.ok and result.error == "deadline passed"


async def test_result_lost_in_transit_is_sent_again(redis_factory, agent_factory, fake_scheduler):
    primary, replica = await pair(redis_factory)
    await agent_factory("db-1", adopt=(primary.port, replica.port))
    await fake_scheduler.wait_connected("db-1")
    fake_scheduler.break_on_next_result = True
    await fake_scheduler.send(
        "db-1",
        command(
            "c2",
            catch_up_check=agent_pb2.CatchUpCheckCommand(
                port=replica.port,
                primary_host="127.0.0.1",
                primary_port=primary.port,
                max_lag_bytes=10**6,
                max_last_io_seconds=10,
            ),
        ),
    )
    result = await fake_scheduler.result("c2")
    assert result.ok
    assert fake_scheduler.connects >= 2


async def test_result_made_while_disconnected_is_delivered_on_reconnect(agent_factory, fake_scheduler):
    running = await agent_factory("db-1")
    await fake_scheduler.wait_connected("db-1")
    fake_scheduler.reject_connections = True
    await fake_scheduler.send("db-1", command("s2", start_server=agent_pb2.StartServerCommand()))
    fake_scheduler.break_stream("db-1")
    store = running.agent.store
    await eventually(lambda: store.get("s2"))
    await eventually(lambda: running.agent.stream.attempts >= 3)
    assert not fake_scheduler.results_for("s2")
    fake_scheduler.reject_connections = False
    result = await fake_scheduler.result("s2")
    assert result.ok and result.port > 0


async def test_agent_restart_keeps_results(agent_factory, fake_scheduler, tmp_path):
    data_dir = tmp_path / "agent-db-1"
    first = await agent_factory("db-1", data_dir=data_dir)
    start = command("s3", start_server=agent_pb2.StartServerCommand())
    await fake_scheduler.send("db-1", start)
    result = await fake_scheduler.result("s3")
    assert result.ok
    await first.stop()
    fake_scheduler.results.clear()

    second = await agent_factory("db-1", data_dir=data_dir)
    await eventually(lambda: fake_scheduler.connects >= 2)
    hello = fake_scheduler.hellos[-1]
    assert [(s.port, s.managed, s.reachable) for s in hello.servers] == [(result.port, True, True)]
    await fake_scheduler.send("db-1", start)
    again = await fake_scheduler.result("s3")
    assert again == result
    assert second.agent.runner.executions == {}


async def test_start_restart_stop_managed_servers(redis_factory, agent_factory, fake_scheduler):
    primary = await redis_factory.astart()
    await primary.client().set("seed", "1")
    running = await agent_factory("db-1", adopt=(primary.port,))
    send = fake_scheduler.send

    await send(
        "db-1",
        command(
            "a",
            start_server=agent_pb2.StartServerCommand(
                replicate_from_host="127.0.0.1", replicate_from_port=primary.port
            ),
        ),
    )
    started = await fake_scheduler.result("a")
    assert started.ok and started.port and started.server.role == "slave" and started.server.managed
    port = started.port
    conf = running.config.data_dir / "servers" / str(port) / "redis.conf"
    assert "appendonly yes" in conf.read_text() and f"port {port}" in conf.read_text()

    await send("db-1", command("b", restart_server=agent_pb2.RestartServerCommand(port=port)))
    restarted = await fake_scheduler.result("b")
    assert restarted.ok, restarted.error
    assert restarted.server.role == "slave" and restarted.server.link_up
    assert restarted.server.run_id != started.server.run_id

    # A managed primary keeps its data across a restart (AOF).
    await send("db-1", command("c", replicate_from=agent_pb2.ReplicateFromCommand(port=port)))
    assert (await fake_scheduler.result("c")).ok
    node = running.agent.inventory.get(port)
    await node.client.set("mine", "kept")
    await send("db-1", command("d", restart_server=agent_pb2.RestartServerCommand(port=port)))
    again = await fake_scheduler.result("d")
    assert again.ok and again.server.role == "master"
    assert await node.client.get("mine") == b"kept" and await node.client.get("seed") == b"1"

    refused = command("e", restart_server=agent_pb2.RestartServerCommand(port=primary.port))
    await send("db-1", refused)
    result = await fake_scheduler.result("e")
    assert not result.ok and "adopted" in result.error

    await send("db-1", command("f", stop_server=agent_pb2.StopServerCommand(port=port)))
    stopped = await fake_scheduler.result("f")
    assert stopped.ok, stopped.error
    assert running.agent.inventory.get(port) is None
    assert (running.config.data_dir / "retired").is_dir()

    def gone() -> bool:
        beat = fake_scheduler.last_heartbeat("db-1")
        return beat is not None and [s.port for s in beat.servers] == [primary.port]

    await eventually(gone)


async def test_reconnect_sleeps_on_the_injected_clock(tmp_path):
    scheduler = await FakeScheduler().start()
    scheduler.reject_connections = True
    clock = FakeClock()
    config = AgentConfig(host_id="db-9", data_dir=tmp_path / "a", scheduler=scheduler.address)
    agent = Agent(config, clock=clock, rand=lambda: 1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await eventually(lambda: scheduler.attempts == 1)
        in_backoff = lambda: agent.stream.backing_off and clock.sleepers > 0  # noqa: E731
        for expected in (2, 3, 4):
            # In its backoff sleep (not the hello's timeout, also on the clock, which a loaded machine
            # can leave pending after the attempt registered): no attempt until the clock moves.
            await eventually(in_backoff)
            assert scheduler.attempts == expected - 1
            await clock.advance(10.0)
            await eventually(lambda expected=expected: scheduler.attempts == expected)
        scheduler.reject_connections = False
        await eventually(in_backoff)
        await clock.advance(10.0)
        await scheduler.wait_connected("db-9")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await scheduler.stop()


async def test_graceful_stop_lets_a_running_failover_finish(redis_factory, agent_factory, fake_scheduler):
    """SIGTERM mid-failover: the agent stops taking commands, lets the failover end (here by its
    timeout, the target's link being frozen) and still delivers the result before exiting."""
    old = await redis_factory.astart()
    proxy = await TcpProxy(old.port).start()
    try:
        target = await redis_factory.astart(replicaof=("127.0.0.1", proxy.port))
        await eventually(target.synced)
        proxy.freeze()
        await old.client().set("x", "1")
        running = await agent_factory("db-1", adopt=(old.port, target.port))
        await fake_scheduler.send("db-1", command("f9", failover=agent_pb2.FailoverCommand(
            port=old.port, target_host="127.0.0.1", target_port=target.port, timeout_ms=800)))  # fmt: skip
        await eventually(lambda: any("paused" in m for m in fake_scheduler.progress_for("f9")))
        await running.stop()
        assert running.task.done()
        # Sent before the agent exited; the fake scheduler's reader may take it a moment later.
        await eventually(lambda: fake_scheduler.results_for("f9"))
        result = fake_scheduler.results_for("f9")
        assert result and not result[0].ok and "stays primary" in result[0].error
        assert (await old.client().info("replication"))["role"] == "master"
    finally:
        await proxy.close()


async def test_undelivered_result_is_sent_by_the_next_agent_life(agent_factory, fake_scheduler, tmp_path):
    data_dir = tmp_path / "agent-db-1"
    first = await agent_factory("db-1", data_dir=data_dir)
    await fake_scheduler.wait_connected("db-1")
    fake_scheduler.reject_connections = True
    await fake_scheduler.send("db-1", command("s4", start_server=agent_pb2.StartServerCommand()))
    fake_scheduler.break_stream("db-1")
    await eventually(lambda: first.agent.store.get("s4"))
    await first.stop()
    assert not fake_scheduler.results_for("s4")

    fake_scheduler.reject_connections = False
    await agent_factory("db-1", data_dir=data_dir)
    result = await fake_scheduler.result("s4")  # sent on connect, without the scheduler asking again
    assert result.ok and result.port > 0

"""The agent as a separate OS process (`python -m agent`): hello, commands, crash and restart, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agent.__main__ import main
from kvmaint.v1 import agent_pb2
from tests.agent.fakesched import command
from tests.support.eventually import eventually
from tests.support.redisproc import kill_pidfiles, ping

ROOT = Path(__file__).resolve().parents[2]


class AgentProcess:
    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    async def wait(self, timeout: float = 10.0) -> int:
        return await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout)


@pytest.fixture
def agent_processes(tmp_path):
    started: list[AgentProcess] = []

    def make(args: list[str]) -> AgentProcess:
        proc = AgentProcess(args, tmp_path / "agent.log")
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.signal(signal.SIGKILL)
        proc.proc.wait(timeout=10)
    kill_pidfiles(tmp_path)


async def test_agent_process_survives_a_crash_and_stops_on_sigterm(
    redis_factory, fake_scheduler, agent_processes, tmp_path
):
    primary = await redis_factory.astart()
    data_dir = tmp_path / "agent-data"
    args = [
        "--host-id", "db-p", "--scheduler", fake_scheduler.address, "--data-dir", str(data_dir),
        "--adopt", str(primary.port), "--heartbeat-seconds", "0.2",
    ]  # fmt: skip
    first = agent_processes(args)
    await fake_scheduler.wait_connected("db-p", timeout=20)
    assert [(s.port, s.role, s.managed) for s in fake_scheduler.hellos[0].servers] == [
        (primary.port, "master", False)
    ]
    start = command("p1", start_server=agent_pb2.StartServerCommand(
        replicate_from_host="127.0.0.1", replicate_from_port=primary.port))  # fmt: skip
    await fake_scheduler.send("db-p", start)
    result = await fake_scheduler.result("p1", timeout=20)
    assert result.ok and result.server.role == "slave"

    # A crash of the agent leaves the servers it started running.
    first.signal(signal.SIGKILL)
    await first.wait()
    assert ping(result.port)

    fake_scheduler.results.clear()
    second = agent_processes(args)
    await eventually(lambda: fake_scheduler.connects >= 2, timeout=20)
    ports = {(s.port, s.managed, s.reachable) for s in fake_scheduler.hellos[-1].servers}
    assert ports == {(primary.port, False, True), (result.port, True, True)}
    await fake_scheduler.send("db-p", start)
    assert await fake_scheduler.result("p1", timeout=20) == result
    assert [p.name for p in (data_dir / "servers").iterdir()] == [str(result.port)]

    second.signal(signal.SIGTERM)
    assert await second.wait() == 0
    log = (tmp_path / "agent.log").read_text()
    assert "agent stopped" in log and "[db-p]" in log
    assert ping(result.port)


def test_cli_refuses_plain_text_to_a_remote_scheduler(tmp_path, capsys):
    code = main(["--host-id", "x", "--scheduler", "10.20.30.40:50051", "--data-dir", str(tmp_path)])
    assert code == 2
    assert "Refusing plain text" in capsys.readouterr().err


def test_cli_requires_a_host_id(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path)]) == 2
    assert "--host-id is required" in capsys.readouterr().err


async def test_agent_killed_mid_failover_leaves_one_writable_primary(
    redis_factory, fake_scheduler, agent_processes, tmp_path
):
    """SIGKILL while writes are paused and the target is catching up: the pause ends by its own timeout,
    the old primary takes writes again, and the target is still a replica: never two primaries."""
    from tests.agent.proxy import TcpProxy

    old = await redis_factory.astart()
    proxy = await TcpProxy(old.port).start()
    try:
        target = await redis_factory.astart(replicaof=("127.0.0.1", proxy.port))
        await eventually(lambda: _linked(target))
        proxy.freeze()
        await old.client().set("x", "1")
        agent = agent_processes([
            "--host-id", "db-k", "--scheduler", fake_scheduler.address, "--data-dir", str(tmp_path / "k"),
            "--adopt", str(old.port), str(target.port),
        ])  # fmt: skip
        await fake_scheduler.send("db-k", command("fk", failover=agent_pb2.FailoverCommand(
            port=old.port, target_host="127.0.0.1", target_port=target.port, timeout_ms=1000)), timeout=20)  # fmt: skip
        await eventually(lambda: any("paused" in m for m in fake_scheduler.progress_for("fk")), timeout=20)
        agent.signal(signal.SIGKILL)
        await agent.wait()
        client = old.client(socket_timeout=5)
        assert await client.set("after-crash", "1")  # returns once the pause (1000 + 1000 ms) has expired
        assert (await client.info("replication"))["role"] == "master"
        assert (await target.client().info("replication"))["role"] == "slave"
    finally:
        await proxy.close()


async def _linked(server) -> bool:
    return (await server.client().info("replication")).get("master_link_status") == "up"


async def test_agent_process_refuses_an_older_leader_term_across_its_restart(
    fake_scheduler, agent_processes, tmp_path
):
    """Fencing, end to end on a real agent process: a command of a lower leader term than the agent has
    seen is answered STALE_TERM and not run; the highest term survives the agent's restart (journal);
    the current leader's resend of the refused id then runs once."""
    data_dir = tmp_path / "agent-data"
    args = ["--host-id", "db-f", "--scheduler", fake_scheduler.address, "--data-dir", str(data_dir)]

    def stop_unknown(cid: str, term: int) -> agent_pb2.AgentCommand:
        cmd = command(cid, stop_server=agent_pb2.StopServerCommand(port=1))
        cmd.term = term
        return cmd

    first = agent_processes(args)
    await fake_scheduler.wait_connected("db-f", timeout=20)
    await fake_scheduler.send("db-f", stop_unknown("t/new", 7))
    assert (await fake_scheduler.result("t/new", timeout=20)).reason == ""
    await fake_scheduler.send("db-f", stop_unknown("t/old", 6))
    refused = await fake_scheduler.result("t/old", timeout=20)
    assert (refused.ok, refused.reason) == (False, "STALE_TERM") and "term 7" in refused.error
    first.signal(signal.SIGKILL)
    await first.wait()

    fake_scheduler.results.clear()
    agent_processes(args)
    await eventually(lambda: fake_scheduler.connects >= 2, timeout=20)
    await fake_scheduler.send("db-f", stop_unknown("t/zero", 0))  # a scheduler older than replicas
    assert (await fake_scheduler.result("t/zero", timeout=20)).reason == "STALE_TERM"
    await fake_scheduler.send("db-f", stop_unknown("t/old", 7))
    again = await fake_scheduler.result("t/old", timeout=20)
    assert again.reason == "" and "No server on port 1" in again.error
    log = (tmp_path / "agent.log").read_text()
    assert log.count("command t/old admitted under leader term 7") == 1
    assert "command t/old admitted under leader term 6" not in log

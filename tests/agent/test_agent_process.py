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

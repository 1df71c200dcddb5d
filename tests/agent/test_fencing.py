"""Fencing by leader term on the agent (agent/fence.py), with the real command runner and journal
(results.sqlite3): a command of a lower term than the agent has seen is refused with STALE_TERM and
not kept, so the current leader's same command id still runs; the highest term survives a restart;
a term-0 command (a scheduler older than replicas) runs only on an agent that never saw a term."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.builds import probe_all
from agent.commands import CommandRunner
from agent.config import parse_config
from agent.fence import TermFence
from agent.inventory import Inventory
from agent.results import ResultStore
from kvmaint.clock import SystemClock
from kvmaint.errors import ErrorReason, InvalidArgument
from kvmaint.v1 import agent_pb2
from tests.support.redisproc import REDIS_SERVER


class Sink:
    def __init__(self) -> None:
        self.results: list[agent_pb2.CommandResult] = []

    def send_progress(self, message: agent_pb2.ConnectRequest) -> None:
        pass

    def send_result(self, command_id: str, result: bytes) -> None:
        self.results.append(agent_pb2.CommandResult.FromString(result))


def runner(tmp_path: Path) -> tuple[CommandRunner, Sink, ResultStore]:
    store = ResultStore(tmp_path / "results.sqlite3")
    inventory = Inventory(tmp_path / "agent", probe_all((), REDIS_SERVER, "db-1"), SystemClock())
    sink = Sink()
    return CommandRunner(inventory, store, SystemClock(), sink), sink, store


def stop(command_id: str, term: int) -> agent_pb2.AgentCommand:
    """A command that needs no server: stopping a port this agent never knew fails, and is kept."""
    cmd = agent_pb2.AgentCommand(command_id=command_id, term=term)
    cmd.stop_server.CopyFrom(agent_pb2.StopServerCommand(port=1))
    return cmd


async def run(r: CommandRunner, cmd: agent_pb2.AgentCommand) -> None:
    task = r.submit(cmd)
    assert task is not None
    await task


async def test_a_lower_term_is_refused_unkept_and_the_current_leader_still_runs_the_id(tmp_path: Path) -> None:
    r, sink, store = runner(tmp_path)
    await run(r, stop("m/a", 3))
    assert sink.results[-1].reason == "" and await store.get("m/a") is not None
    await run(r, stop("m/b", 2))
    refused = sink.results[-1]
    assert (refused.ok, refused.reason) == (False, ErrorReason.STALE_TERM)
    assert "term 2" in refused.error and "term 3" in refused.error
    assert await store.get("m/b") is None and "m/b" not in r.executions
    await run(r, stop("m/b", 3))  # the current leader's resend of that id runs
    assert sink.results[-1].reason == "" and r.executions["m/b"] == 1
    await run(r, stop("m/c", 0))  # an old scheduler, after terms were seen
    assert sink.results[-1].reason == ErrorReason.STALE_TERM
    await run(r, stop("m/a", 1))  # a kept result is only resent, whatever the term: nothing runs
    assert sink.results[-1].reason == "" and r.executions["m/a"] == 1
    store.close()

    again, sink2, store2 = runner(tmp_path)  # an agent restart remembers the highest term
    assert again.fence.highest == 3
    await run(again, stop("m/d", 2))
    assert sink2.results[-1].reason == ErrorReason.STALE_TERM
    store2.close()


async def test_term_zero_runs_only_on_an_agent_that_never_saw_a_term(tmp_path: Path) -> None:
    r, sink, store = runner(tmp_path)
    await run(r, stop("old/1", 0))
    assert sink.results[-1].reason == "" and r.executions["old/1"] == 1
    assert TermFence(store).highest == 0
    await r.fence.see(5)
    assert TermFence(store).highest == 5 and not r.fence.admits(0) and not r.fence.admits(4)
    assert r.fence.admits(5) and r.fence.admits(6)
    store.close()


def test_scheduler_replicas_as_a_comma_list_or_a_toml_list(tmp_path: Path) -> None:
    config = parse_config(["--host-id", "h", "--scheduler", "127.0.0.1:1, 127.0.0.1:2,127.0.0.1:3"])
    assert config.scheduler == "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3"
    toml = tmp_path / "agent.toml"
    toml.write_text('host_id = "h"\nscheduler = ["10.0.0.1:50052", "10.0.0.2:50052"]\n')
    assert parse_config(["--config", str(toml)]).scheduler == "10.0.0.1:50052,10.0.0.2:50052"
    with pytest.raises(InvalidArgument, match="'nope' is not HOST:PORT"):
        parse_config(["--host-id", "h", "--scheduler", "127.0.0.1:1,nope"])

"""The fault matrix: which process is hit, how, and at which exact point of a maintenance.

A point is a step of the durable state (the scheduler is stepped in SIGSTOP/SIGCONT slices until its
SQLite file records the step as begun) or a Redis-visible point of the switchover (the old primary's
agent is stepped until the old primary is paused, demoted, or the target promoted). The victim is then
SIGKILLed there (and started again, for the scheduler and the agents: a crash and a restart), or
SIGSTOPped past the scheduler's command timeout and resumed; a redis-server is SIGKILLed and left down
(the unplanned case), and started again by the test (as an operator would, in the role the scheduler
records) only if the maintenance ended with it named as the primary.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from agent.redisnode.role import DesiredRole, conf_with_role
from tests.faults.rig import Rig
from tests.support.freeze import SLICE_SECONDS, durable_step, freeze, paused, resume, role_is, step_until
from tests.support.redisproc import REDIS_SERVER

STEP_POINTS = ("prepare", "catch_up", "maintain_standby", "failover", "repoint", "finish")
SWITCH_POINTS = ("paused", "demoted", "promoted")
POINTS = STEP_POINTS + SWITCH_POINTS
VICTIMS = ("scheduler", "primary_agent", "standby_agent", "primary_redis", "standby_redis")
# SIGSTOP cases freeze an agent longer than the scheduler's command timeout (STOP_ARGS).
STOP_SECONDS = 6.0
STOP_ARGS = ["--command-timeout", "4"]


@dataclass(frozen=True)
class Case:
    victim: str
    action: str  # "kill" or "stop"
    point: str

    @property
    def id(self) -> str:
        return f"{self.action}-{self.victim}-at-{self.point}"


def full_matrix() -> list[Case]:
    cases = [Case(v, "kill", p) for v in VICTIMS for p in POINTS]
    cases += [Case(v, "stop", p) for v in ("primary_agent", "standby_agent") for p in POINTS]
    return cases


# What CI runs: one case of each kind of fault, at the points most likely to break an invariant.
CI_MATRIX = [
    Case("scheduler", "kill", "maintain_standby"),
    Case("scheduler", "kill", "demoted"),
    Case("primary_agent", "kill", "paused"),
    Case("primary_agent", "kill", "promoted"),
    Case("standby_agent", "kill", "failover"),
    Case("primary_agent", "stop", "demoted"),
    Case("standby_agent", "stop", "catch_up"),
    Case("primary_redis", "kill", "catch_up"),
    Case("standby_redis", "kill", "failover"),
    Case("standby_redis", "kill", "repoint"),
]


def _point_reached(r: Rig, point: str):  # type: ignore[no-untyped-def]
    if point == "paused":
        return paused(r.primary.url)
    if point == "demoted":
        return role_is(r.primary.url, "slave")
    if point == "promoted":
        return role_is(r.standby.url, "master")
    return durable_step(r.scheduler.db, point)


async def reach(r: Rig, point: str) -> int:
    """Freezes the process that makes `point` happen exactly there; returns its pid (left frozen)."""
    if point in SWITCH_POINTS:
        pid = r.agent_pid(r.primary)
        await asyncio.to_thread(step_until, pid, durable_step(r.scheduler.db, "failover"), 90, 0.01)
    else:
        assert r.scheduler.proc is not None
        pid = r.scheduler.proc.pid
    slice_seconds = SLICE_SECONDS if point in SWITCH_POINTS else 0.002
    await asyncio.to_thread(step_until, pid, _point_reached(r, point), 90, slice_seconds, _passed(r, point))
    return pid


def _passed(r: Rig, point: str) -> Callable[[], bool] | None:
    """Beyond a point that does not last (the pause): demoted, or the failover step over. The others hold
    once reached (a step is durable, a role stays), so they cannot be stepped over."""
    if point != "paused":
        return None
    demoted = role_is(r.primary.url, "slave")
    failed_over = durable_step(r.scheduler.db, "failover", done=True)
    return lambda: demoted() or failed_over()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def apply(r: Rig, case: Case, frozen: int) -> None:
    """Hits the victim at the point where `frozen` waits, then lets everything go on."""
    if case.victim == "scheduler":
        r.scheduler.kill()
        resume(frozen)
        await asyncio.to_thread(r.scheduler.start)
        return
    if case.victim in ("primary_agent", "standby_agent"):
        server = r.primary if case.victim == "primary_agent" else r.standby
        agent = r.agent_of(server)
        pid = r.agent_pid(server)
        if case.action == "kill":
            _kill(pid)
            await asyncio.to_thread(agent.proc.wait)  # type: ignore[union-attr]
            resume(frozen)
            await asyncio.to_thread(agent.start)
            return
        freeze(pid)
        if frozen != pid:
            resume(frozen)
        await asyncio.sleep(STOP_SECONDS)  # past the scheduler's command timeout
        resume(pid)
        return
    server = r.primary if case.victim == "primary_redis" else r.standby
    _kill(r.redis_pid(server))
    resume(frozen)


def restart_as_primary(r: Rig, url: str) -> None:
    """Starts the killed redis-server that REDIS_URL names again, in the role the scheduler records for it
    (primary: agent/redisnode/role.py's rewrite, as supervision must), detached, as an operator would."""
    for server in (r.primary, r.standby):
        if server.url != url:
            continue
        conf = r.agent_of(server).data_dir / "servers" / str(server.port) / "redis.conf"
        # Atomically, as the agent writes it: its keeper may be restarting the same server and reads the
        # file meanwhile; a truncate-then-write let it read an empty config and write back one without a
        # `port` (every later start then tried 6379; seen in CI).
        tmp = conf.with_name(conf.name + ".operator")
        tmp.write_text(conf_with_role(conf.read_text(), DesiredRole.primary()))
        tmp.replace(conf)
        subprocess.Popen(
            [REDIS_SERVER, str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=conf.parent,
            start_new_session=True,
        )

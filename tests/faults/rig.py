"""A fault rig: the scheduler and two agents as processes, an add-on, the writer and the ROLE sampler
running, and the verdict every fault case asserts.

The verdict (`Rig.assert_safe`): no acknowledged write lost on the final primary, no two-master moment,
every step finished at most once, and the maintenance either `completed` (the old primary now a
replica of the new one), or a failed attempt before the failover (back to `pending`, still required,
the old primary the one writable server REDIS_URL names), or `failed` after the failover with exactly
one writable primary, the one REDIS_URL names.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis

from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb
from tests.integration.test_failover import Api, connect, done_steps, masters, role_of
from tests.support.agentproc import AgentProcess
from tests.support.auth import url_at
from tests.support.eventually import eventually
from tests.support.freeze import PointMissed
from tests.support.sampler import SamplerProcess, SamplerSummary
from tests.support.scheduler import SchedulerProcess
from tests.support.writer import WriterProcess, lost_writes

APP = "example-app"
STEPS = ["prepare", "catch_up", "maintain_standby", "failover", "repoint", "finish"]


@dataclass
class Server:
    host: str
    port: int
    endpoint: str
    # With the add-on's credentials: managed servers require them.
    url: str


@dataclass
class Verdict:
    status: str
    # The failure, or for a failed attempt sent back to pending, the last one.
    failure_reason: str
    acknowledged: int
    lost: list[int]
    sampler: SamplerSummary
    steps: list[str]
    masters: list[str]
    primary_url: str
    notes: list[str] = field(default_factory=list)


@dataclass
class Rig:
    scheduler: SchedulerProcess
    hosts: dict[str, AgentProcess]
    api: Api
    addon: rpb.Addon
    writer: WriterProcess
    sampler: SamplerProcess
    primary: Server
    standby: Server

    def agent_of(self, server: Server) -> AgentProcess:
        return self.hosts[server.host]

    def agent_pid(self, server: Server) -> int:
        proc = self.agent_of(server).proc
        assert proc is not None
        return proc.pid

    def redis_pid(self, server: Server) -> int:
        pid = self.agent_of(server).server_pid(server.port)
        assert pid is not None
        return pid

    def kill_redis(self, server: Server) -> None:
        os.kill(self.redis_pid(server), signal.SIGKILL)

    async def start(self) -> None:
        await self.api.require_and_run(self.addon.name)

    async def ended(self, timeout: float = 120) -> mpb.MaintenanceInfo:
        async def done() -> mpb.MaintenanceInfo | None:
            info = await self.api.info()
            ended = info.status in ("completed", "failed")
            # A failed attempt before the point of no return goes back to pending, still required.
            return info if ended or (info.status == "pending" and info.attempts > 0) else None

        result: mpb.MaintenanceInfo = await eventually(done, timeout=timeout, interval=0.1, message="ended")
        return result

    async def verdict(self, info: mpb.MaintenanceInfo) -> Verdict:
        """Stops the writer and the sampler and checks the outcome (see the module docstring)."""
        acked = await asyncio.to_thread(self.writer.stop)
        summary = await asyncio.to_thread(self.sampler.stop)
        url = (await self.api.config())["REDIS_URL"]
        servers = [self.primary.url, self.standby.url]
        verdict = Verdict(
            status=info.status,
            failure_reason=info.failure_reason or info.last_failure_reason,
            acknowledged=len(acked),
            lost=await lost_writes(acked, url),
            sampler=summary,
            steps=done_steps(await self.api.all_events()),
            masters=await masters(*servers),
            primary_url=url,
        )
        return verdict

    async def assert_safe(self, info: mpb.MaintenanceInfo, expect: str | None = None) -> Verdict:
        v = await self.verdict(info)
        assert v.lost == [], f"{len(v.lost)} of {v.acknowledged} acknowledged writes lost: {v}"
        assert v.sampler.two_master_moments == 0, f"two-master moments: {v.sampler}"
        assert len(v.steps) == len(set(v.steps)), f"a step finished twice: {v.steps}"
        assert v.acknowledged > 0
        if expect is not None:
            assert v.status == expect, v
        if v.status == "completed":
            assert v.steps == STEPS, v
            assert v.masters == [self.standby.url] == [v.primary_url], v
            assert await _follows(self.primary, self.standby), "the old primary does not replicate"
        else:
            assert v.status in ("failed", "pending"), v
            assert v.masters == [v.primary_url], f"not one writable primary named by REDIS_URL: {v}"
            assert await _accepts_write(v.primary_url)
            if v.status == "pending":  # a failed attempt: nothing moved, the requirement is kept
                assert "failover" not in v.steps and info.last_failure_reason, v
                assert v.primary_url == self.primary.url, v
                assert info.required_by.seconds > 0, "the requirement was dropped"
            else:
                assert "failover" in v.steps, f"failed for good before the failover: {v}"
        return v


async def _accepts_write(url: str) -> bool:
    r = aioredis.Redis.from_url(url, socket_timeout=5)
    try:
        return bool(await r.set("fault:check", "1"))
    finally:
        await r.aclose()


async def _follows(replica: Server, primary: Server) -> bool:
    """The replica's link to the primary comes up (polled)."""

    async def linked() -> bool:
        r = aioredis.Redis.from_url(replica.url, decode_responses=True, socket_timeout=2)
        try:
            info = await r.info("replication")
        finally:
            await r.aclose()
        return bool(
            info.get("role") == "slave"
            and int(info.get("master_port", 0)) == primary.port
            and info.get("master_link_status") == "up"
        )

    try:
        await eventually(linked, timeout=15, message="replica linked")
    except AssertionError:
        return False
    return await role_of(replica.url) == "slave"


def _server(addon: rpb.Addon, role: int, app_url: str) -> Server:
    s = next(s for s in addon.servers if s.role == role)
    return Server(s.address.host, s.address.port, s.endpoint, url_at(app_url, s.endpoint))


@asynccontextmanager
async def rig(
    tmp_path: Path,
    scheduler_factory: Callable[..., SchedulerProcess],
    agents: Callable[..., AgentProcess],
    scheduler_args: list[str] | None = None,
    agent_args: list[str] | None = None,
) -> AsyncIterator[Rig]:
    # Everything under tmp_path, so that a case can start over in a fresh directory (test_matrix).
    s = scheduler_factory(extra_args=FAULT_ARGS + list(scheduler_args or []), db=tmp_path / "state.db")
    hosts = {h: agents(h, s.address, list(agent_args or []), tmp_path) for h in ("db-1", "db-2")}
    async with connect(s.address) as api:
        await api.wait_agents("db-1", "db-2")
        addon = await api.create("premium-0")
        app_url = (await api.config())["REDIS_URL"]
        primary = _server(addon, rpb.SERVER_ROLE_PRIMARY, app_url)
        standby = _server(addon, rpb.SERVER_ROLE_STANDBY, app_url)
        writer = await asyncio.to_thread(WriterProcess(s.address, APP, tmp_path / "writes.txt").start)
        sampler = await asyncio.to_thread(
            SamplerProcess([primary.url, standby.url], tmp_path / "roles.json").start
        )
        r = Rig(s, hosts, api, addon, writer, sampler, primary, standby)
        try:
            yield r
        except PointMissed:  # the case starts over elsewhere: nothing of this one may go on beside it
            s.stop()
            for agent in hosts.values():
                agent.stop()
                agent.stop_servers()
            raise
        finally:
            writer.stop()
            if sampler.proc and sampler.proc.poll() is None:
                sampler.proc.kill()


# Short bounds so that faults resolve in seconds.
FAULT_ARGS = ["--catch-up-timeout", "10", "--command-timeout", "20", "--tick-seconds", "0.5"]

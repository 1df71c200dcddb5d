"""Maintenances end to end: the scheduler and each agent as separate OS processes, real redis-servers on
ephemeral ports, real gRPC on loopback. Outcomes are polled for, never slept for."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import redis.asyncio as aioredis

from kvmaint.client import attach
from kvmaint.v1 import events_pb2 as epb
from kvmaint.v1 import events_pb2_grpc, fleet_pb2_grpc, maintenance_pb2_grpc
from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb
from tests.support.auth import url_at
from tests.support.eventually import eventually
from tests.support.stores import on_both_stores

APP = "example-app"


class Api:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.fleet = fleet_pb2_grpc.FleetServiceStub(channel)
        self.maint = maintenance_pb2_grpc.MaintenanceServiceStub(channel)
        self.events = events_pb2_grpc.EventServiceStub(channel)

    async def info(self, addon: str = "REDIS_URL") -> mpb.MaintenanceInfo:
        return (await self.maint.GetMaintenanceInfo(mpb.GetMaintenanceInfoRequest(app=APP, addon=addon))).info

    async def config(self) -> dict[str, str]:
        return dict((await self.fleet.GetConfigVars(fpb.GetConfigVarsRequest(app=APP))).config_vars)

    async def url_of(self, endpoint: str, var: str = "REDIS_URL") -> str:
        """The URL, with the add-on's credentials, of one of its servers."""
        return url_at((await self.config())[var], endpoint)

    async def server_url(self, addon: rpb.Addon, role: int) -> str:
        return await self.url_of(next(s for s in addon.servers if s.role == role).endpoint)

    async def addon(self, ref: str = "REDIS_URL") -> rpb.Addon:
        return (await self.maint.GetAddonInfo(mpb.GetAddonInfoRequest(app=APP, addon=ref))).addon

    async def all_events(self) -> list[rpb.Event]:
        return [r.event async for r in self.events.StreamEvents(epb.StreamEventsRequest(app=APP))]

    async def wait_agents(self, *hosts: str) -> None:
        async def connected() -> bool:
            resp = await self.fleet.ListAgents(fpb.ListAgentsRequest())
            return set(hosts) <= {a.host_id for a in resp.agents if a.connected}

        await eventually(connected, timeout=20, message=f"agents {hosts} connected")

    async def create(self, plan: str, var: str = "REDIS_URL") -> rpb.Addon:
        try:
            await self.fleet.CreateApp(fpb.CreateAppRequest(name=APP, owner_email="o@example.com"))
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.ALREADY_EXISTS
        req = fpb.CreateAddonRequest(app=APP, plan=plan, attachments=[var])
        return (await self.fleet.CreateAddon(req, timeout=60)).addon

    async def require(self, addon: str) -> None:
        await self.fleet.RequireMaintenance(
            fpb.RequireMaintenanceRequest(
                addons=fpb.AddonNames(names=[addon]), reason=rpb.MAINTENANCE_REASON_SECURITY_PATCH
            )
        )

    async def run(self, addon: str) -> None:
        await self.maint.RunMaintenance(mpb.RunMaintenanceRequest(app=APP, addon=addon, confirm=APP))

    async def require_and_run(self, addon: str) -> None:
        await self.require(addon)
        await self.run(addon)

    async def wait_status(
        self, status: str, addon: str = "REDIS_URL", timeout: float = 90
    ) -> mpb.MaintenanceInfo:
        async def reached() -> mpb.MaintenanceInfo | None:
            info = await self.info(addon)
            assert info.status not in {"failed", "completed"} - {status}, info
            return info if info.status == status else None

        result: mpb.MaintenanceInfo = await eventually(
            reached, timeout=timeout, interval=0.05, message=f"maintenance {status}"
        )
        return result

    async def wait_attempts(self, attempts: int, addon: str = "REDIS_URL", timeout: float = 90) -> mpb.MaintenanceInfo:
        """Until the maintenance is pending again after its `attempts`-th failed attempt."""

        async def reached() -> mpb.MaintenanceInfo | None:
            info = await self.info(addon)
            return info if info.status == "pending" and info.attempts >= attempts else None

        result: mpb.MaintenanceInfo = await eventually(
            reached, timeout=timeout, interval=0.05, message=f"attempt {attempts} failed"
        )
        return result

    async def wait_step(self, step: str, timeout: float = 60) -> None:
        async def at_step() -> bool:
            return (await self.info()).current_step == step

        await eventually(at_step, timeout=timeout, interval=0.02, message=f"step {step}")


@asynccontextmanager
async def connect(address: str) -> AsyncIterator[Api]:
    channel = grpc.aio.insecure_channel(address)
    try:
        yield Api(channel)
    finally:
        await channel.close()


async def role_of(url: str) -> str:
    r = aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=2)
    try:
        return str((await r.execute_command("ROLE"))[0])
    finally:
        await r.aclose()


async def masters(*urls: str) -> list[str]:
    roles = []
    for url in urls:
        try:
            roles.append(await role_of(url))
        except (OSError, aioredis.ConnectionError):
            roles.append("down")
    return [u for u, r in zip(urls, roles, strict=True) if r == "master"]


def done_steps(events: list[rpb.Event]) -> list[str]:
    return [
        e.attributes["step"]
        for e in events
        if e.type == rpb.EVENT_TYPE_MAINTENANCE_STEP and e.attributes.get("done") == "true"
    ]


@on_both_stores
async def test_failover_under_writes_loses_no_acknowledged_write(fleet) -> None:
    scheduler, _ = fleet
    async with connect(scheduler.address) as api:
        await api.wait_agents("db-1", "db-2")
        addon = await api.create("premium-0")
        primary_url, standby_url = (
            await api.server_url(addon, rpb.SERVER_ROLE_PRIMARY),
            await api.server_url(addon, rpb.SERVER_ROLE_STANDBY),
        )
        assert (await api.config())["REDIS_URL"] == primary_url

        client = await attach(scheduler.address, APP, "REDIS_URL", decode_responses=True)
        acknowledged: list[int] = []
        stop = asyncio.Event()

        async def writer() -> None:
            i = 0
            while not stop.is_set():
                await client.set(f"k:{i}", i)
                acknowledged.append(i)
                i += 1

        task = asyncio.create_task(writer())
        await eventually(lambda: len(acknowledged) > 200, timeout=10)
        await api.require_and_run(addon.name)
        info = await api.wait_status("completed")
        await eventually(lambda: len(acknowledged) > 0 and client._follower.url == standby_url, timeout=10)
        mark = len(acknowledged)
        def still_writing() -> bool:
            if task.done():  # a write the client let through as an error: fail with it, not a timeout
                raise AssertionError(f"the writer stopped: {task.exception()!r}")
            return len(acknowledged) > mark + 100

        await eventually(still_writing, timeout=10)  # still writing, on the new one
        stop.set()
        await task
        await client.aclose()

        assert (info.method, info.reason) == ("failover", "security_patch")
        assert info.duration_seconds >= 0 and info.completed_at.seconds > 0 and info.write_pause_ms >= 0
        assert (await api.config())["REDIS_URL"] == standby_url
        new = aioredis.Redis.from_url(standby_url, decode_responses=True)
        try:
            values = await new.mget([f"k:{i}" for i in acknowledged])
        finally:
            await new.aclose()
        missing = [i for i, v in zip(acknowledged, values, strict=True) if v != str(i)]
        assert missing == [], f"{len(missing)} acknowledged writes missing"
        assert await masters(primary_url, standby_url) == [standby_url]
        assert await role_of(primary_url) == "slave"  # the old primary is the new standby
        hist = await api.maint.ListMaintenanceHistory(
            mpb.ListMaintenanceHistoryRequest(app=APP, addon=addon.name)
        )
        assert [m.status for m in hist.maintenances] == [rpb.MAINTENANCE_STATUS_COMPLETED]
        refreshed = await api.addon()
        assert await api.server_url(refreshed, rpb.SERVER_ROLE_PRIMARY) == standby_url


async def test_lagging_standby_blocks_the_failover(fleet) -> None:
    scheduler, hosts = fleet
    async with connect(scheduler.address) as api:
        await api.wait_agents("db-1", "db-2")
        addon = await api.create("premium-0")
        primary_url = await api.server_url(addon, rpb.SERVER_ROLE_PRIMARY)
        standby = next(s for s in addon.servers if s.role == rpb.SERVER_ROLE_STANDBY)
        pid = hosts[standby.address.host].server_pid(standby.address.port)
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the standby stops replicating (and answering)
        try:
            await api.require_and_run(addon.name)
            info = await api.wait_attempts(1)
        finally:
            os.kill(pid, signal.SIGCONT)
        # Not forgotten: back to pending, still required, the failure kept.
        assert (info.status, info.attempts, info.needs_operator, info.failure_reason) == ("pending", 1, False, "")
        assert "catch_up" in info.last_failure_reason and "did not catch up" in info.last_failure_reason
        assert (await api.config())["REDIS_URL"] == primary_url
        assert await role_of(primary_url) == "master"
        r = aioredis.Redis.from_url(primary_url)
        try:
            assert await r.set("still", "writable")
        finally:
            await r.aclose()
        failed = [e for e in await api.all_events() if e.type == rpb.EVENT_TYPE_MAINTENANCE_FAILED]
        assert len(failed) == 1 and "did not catch up" in failed[0].message
        assert "primary was left unchanged" in failed[0].message
        assert (failed[0].attributes["attempts"], failed[0].attributes["status"]) == ("1", "pending")


async def test_failed_attempts_wait_for_an_operator_and_run_still_completes(fleet) -> None:
    """The standby's agent is gone: each attempt fails at catch_up at once. After 3 the maintenance is
    still required and marked for an operator; with the agent back, `run` completes it (its commands are
    new ones, not the first attempt's kept results)."""
    scheduler, hosts = fleet
    async with connect(scheduler.address) as api:
        await api.wait_agents("db-1", "db-2")
        addon = await api.create("premium-0")
        urls = [await api.url_of(s.endpoint) for s in addon.servers]
        standby_host = next(s.address.host for s in addon.servers if s.role == rpb.SERVER_ROLE_STANDBY)
        await api.require(addon.name)
        hosts[standby_host].stop()
        for attempt in (1, 2, 3):
            await api.run(addon.name)
            info = await api.wait_attempts(attempt)
            assert info.status == "pending" and info.needs_operator == (attempt == 3)
            assert f"agent {standby_host} (not connected)" in info.last_failure_reason.lower()
        got = await api.maint.GetAddonInfo(mpb.GetAddonInfoRequest(app=APP, addon=addon.name))
        assert got.maintenance.startswith("required by ") and not got.overdue
        hosts[standby_host].start()
        await api.wait_agents("db-1", "db-2")
        await api.run(addon.name)
        info = await api.wait_status("completed")
        assert (info.attempts, info.last_failure_reason != "") == (3, True)
        steps = done_steps(await api.all_events())  # each failed attempt had done prepare
        assert steps == ["prepare"] * 4 + ["catch_up", "maintain_standby", "failover", "repoint", "finish"]
        assert len(await masters(*urls)) == 1


async def test_agent_killed_mid_maintenance_completes_once(fleet, agents) -> None:
    scheduler, hosts = fleet
    async with connect(scheduler.address) as api:
        await api.wait_agents("db-1", "db-2")
        addon = await api.create("premium-0")
        urls = [await api.url_of(s.endpoint) for s in addon.servers]
        standby_host = next(s.address.host for s in addon.servers if s.role == rpb.SERVER_ROLE_STANDBY)
        await api.require_and_run(addon.name)
        await api.wait_step("maintain_standby")
        hosts[standby_host].kill()  # SIGKILL while it restarts the standby
        hosts[standby_host].start()
        await api.wait_status("completed")
        steps = done_steps(await api.all_events())
        assert steps == ["prepare", "catch_up", "maintain_standby", "failover", "repoint", "finish"]
        assert len(await masters(*urls)) == 1


@on_both_stores
async def test_scheduler_killed_mid_maintenance_resumes(fleet) -> None:
    scheduler, _ = fleet
    async with connect(scheduler.address) as api:
        await api.wait_agents("db-1", "db-2")
        addon = await api.create("premium-0")
        urls = [await api.url_of(s.endpoint) for s in addon.servers]
        await api.require_and_run(addon.name)
        await api.wait_step("maintain_standby")
    scheduler.kill()
    scheduler.start()  # same database, same port: the agents reconnect
    async with connect(scheduler.address) as api:
        info = await api.wait_status("completed")
        assert info.method == "failover"
        steps = done_steps(await api.all_events())
        assert steps == ["prepare", "catch_up", "maintain_standby", "failover", "repoint", "finish"]
        assert len(await masters(*urls)) == 1


async def test_mini_is_maintained_through_a_hidden_standby(fleet) -> None:
    scheduler, hosts = fleet
    async with connect(scheduler.address) as api:
        await api.wait_agents("db-1", "db-2")
        addon = await api.create("mini")
        assert len(addon.servers) == 1
        old = addon.servers[0]
        old_url = await api.url_of(old.endpoint)
        seed = aioredis.Redis.from_url(old_url)
        try:
            await seed.set("precious", "data")
        finally:
            await seed.aclose()
        # Minis have no window: once required, the scheduler starts the maintenance by itself.
        await api.fleet.RequireMaintenance(
            fpb.RequireMaintenanceRequest(
                addons=fpb.AddonNames(names=[addon.name]), reason=rpb.MAINTENANCE_REASON_REDIS_UPGRADE
            )
        )
        await api.wait_status("completed")
        after = await api.addon()
        assert len(after.servers) == 1 and after.servers[0].role == rpb.SERVER_ROLE_PRIMARY
        new = after.servers[0]
        assert new.address.host != old.address.host
        new_url = await api.url_of(new.endpoint)
        assert (await api.config())["REDIS_URL"] == new_url
        r = aioredis.Redis.from_url(new_url, decode_responses=True)
        try:
            assert await r.get("precious") == "data"
        finally:
            await r.aclose()
        await eventually(lambda: hosts[old.address.host].server_pid(old.address.port) is None, timeout=10)
        assert await masters(old_url) == []

"""Issue 8 §2 with every part a real OS process: the agent keeps its servers alive across a simulated host
reboot, and the scheduler's status tells the truth, right after a failover too."""

from __future__ import annotations

import os
import signal

import grpc
import redis.asyncio as aioredis

from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb
from tests.integration.test_failover import APP, Api, connect
from tests.support.eventually import eventually


async def addon_status(api: Api) -> mpb.GetAddonInfoResponse:
    return await api.maint.GetAddonInfo(mpb.GetAddonInfoRequest(app=APP, addon="REDIS_URL"))


async def wait_addon_status(api: Api, status: str, timeout: float = 60) -> mpb.GetAddonInfoResponse:
    async def reached() -> mpb.GetAddonInfoResponse | None:
        resp = await addon_status(api)
        return resp if resp.status == status else None

    last: mpb.GetAddonInfoResponse = await eventually(
        reached, timeout=timeout, interval=0.1, message=f"add-on status {status}"
    )
    return last


def primary_key(addon: rpb.Addon) -> str:
    s = next(s for s in addon.servers if s.role == rpb.SERVER_ROLE_PRIMARY)
    return f"{s.address.host}:{s.address.port}"


async def test_status_right_after_a_failover_and_two_maintenances_back_to_back(fleet) -> None:
    """The last heartbeat before `completed` predates the failover (heartbeats are 5 s apart, a
    maintenance takes about one): the runner's fresh reports make the status true at once, and a second
    maintenance starts right after the first."""
    scheduler, _ = fleet
    async with connect(scheduler.address) as api:
        await api.wait_agents("db-1", "db-2")
        addon = await api.create("premium-0")
        await wait_addon_status(api, "available")
        for round_ in (1, 2):
            before = primary_key(await api.addon())
            await api.require_and_run(addon.name)  # refused if the status still read unavailable
            await api.wait_status("completed")
            resp = await addon_status(api)  # no waiting: right after the failover
            assert primary_key(resp.addon) != before, round_
            assert resp.status == "available" or (
                resp.status == "degraded" and "link" in resp.status_reason  # the old primary still syncing
            ), (round_, resp.status, resp.status_reason)
            await wait_addon_status(api, "available", timeout=20)


async def test_host_reboot_brings_servers_back_and_the_next_maintenance_completes(fleet) -> None:
    scheduler, agents = fleet
    async with connect(scheduler.address) as api:
        await api.wait_agents("db-1", "db-2")
        addon = await api.create("premium-0")
        await wait_addon_status(api, "available")
        primary_url = await api.server_url(addon, rpb.SERVER_ROLE_PRIMARY)  # with the add-on's user
        standby_url = await api.server_url(addon, rpb.SERVER_ROLE_STANDBY)
        standby_endpoint = next(s.endpoint for s in addon.servers if s.role == rpb.SERVER_ROLE_STANDBY)
        host = next(s.address.host for s in addon.servers if s.role == rpb.SERVER_ROLE_PRIMARY)
        rebooted = agents[host]

        # Acknowledged writes, then until the server has written its AOF buffer to the file: with
        # appendfsync everysec that is what a killed process keeps (the page cache survives a SIGKILL).
        r = aioredis.Redis.from_url(primary_url, decode_responses=True)
        keys = [f"k:{i}" for i in range(2000)]
        for i in range(0, len(keys), 100):
            await r.mset({k: k for k in keys[i : i + 100]})

        async def aof_written() -> bool:
            return int((await r.info("persistence"))["aof_buffer_length"]) == 0

        await eventually(aof_written, timeout=10)
        await r.aclose()

        # The reboot: the agent and every redis-server of the host SIGKILLed at once.
        pids = [p for p in (rebooted.server_pid(int(d.name)) for d in (rebooted.data_dir / "servers").iterdir()) if p]
        assert pids
        rebooted.kill()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        down = await wait_addon_status(api, "unavailable", timeout=30)
        assert f"the agent of host {host}" in down.status_reason and "link to it is down" in down.status_reason
        refused = None
        try:
            await api.run(addon.name)
        except grpc.aio.AioRpcError as err:  # nothing pending yet: "not required" comes first
            refused = err
        assert refused is not None and refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        await api.require(addon.name)
        try:
            await api.run(addon.name)
            raise AssertionError("a maintenance started on an unavailable add-on")
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "is unavailable" in (err.details() or ""), err.details()
        assert (await api.info()).status == "pending"

        rebooted.start()  # the host is back: only the agent is started; it starts the servers
        await api.wait_agents(host)
        await wait_addon_status(api, "available", timeout=60)

        agents_view = await api.fleet.ListAgents(fpb.ListAgentsRequest())
        standby = next(
            s
            for a in agents_view.agents
            for s in a.servers
            if f"{a.advertise_host}:{s.port}" == standby_endpoint
        )
        assert standby.role == "slave" and standby.reachable
        for url in (primary_url, standby_url):
            c = aioredis.Redis.from_url(url, decode_responses=True)
            try:

                async def complete(c: aioredis.Redis = c) -> bool:
                    return await c.dbsize() == len(keys)

                await eventually(complete, timeout=20, message=f"{url} has every key")
                values = await c.mget(keys)
            finally:
                await c.aclose()
            assert values == keys, url
        assert "keeper: port" in rebooted.log_text() and " started: " in rebooted.log_text()

        await api.run(addon.name)  # the maintenance that was refused while the host was down
        info = await api.wait_status("completed")
        assert info.attempts == 0
        await wait_addon_status(api, "available", timeout=20)


async def test_a_standby_that_keeps_dying_is_reported_crash_looping(fleet) -> None:
    scheduler, agents = fleet
    async with connect(scheduler.address) as api:
        await api.wait_agents("db-1", "db-2")
        addon = await api.create("premium-0")
        await wait_addon_status(api, "available")
        standby = next(s for s in addon.servers if s.role == rpb.SERVER_ROLE_STANDBY)
        agent = agents[standby.address.host]
        server_dir = agent.data_dir / "servers" / str(standby.address.port)
        conf = server_dir / "redis.conf"
        conf.write_text(conf.read_text() + "no-such-directive yes\n")  # every start now exits at once
        pid = agent.server_pid(standby.address.port)
        assert pid
        os.kill(pid, signal.SIGKILL)

        async def crash_looping() -> fpb.AgentServer | None:
            view = await api.fleet.ListAgents(fpb.ListAgentsRequest())
            for a in view.agents:
                for s in a.servers:
                    if a.host_id == standby.address.host and s.port == standby.address.port:
                        return s if s.supervision == "crash_looping" else None
            return None

        # Starts at once, then 1, 2, 4 and 8 s later (KeepPolicy's defaults), then no more.
        server = await eventually(crash_looping, timeout=60, interval=0.5, message="crash-looping")
        assert server.restarts == 5 and not server.reachable
        assert "crash-looping: 5 starts in a row did not stay up 60 s" in server.supervision_detail
        resp = await wait_addon_status(api, "degraded")
        assert "; its agent: crash-looping: 5 starts in a row" in resp.status_reason
        starts = agent.log_text().count(f"keeper: port {standby.address.port} failed to start")
        assert starts == 5

"""Maintenances that install a build: Debian's redis-server 7.0.15 to Valkey 8.1.8, for real.

The scheduler and two agents as OS processes; each agent knows both builds (`--build NAME=PATH`), reads
their versions by running them, and restarts servers onto the target build. Outcomes are polled for."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
import redis.asyncio as aioredis

from bench.writer import Writer, missing_writes
from kvmaint.client import attach
from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb
from tests.integration.conftest import FAST
from tests.integration.test_failover import APP, Api, connect, masters
from tests.support.agentproc import AgentProcess
from tests.support.builds import REDIS, REDIS_VERSION, VALKEY_VERSION, build_args, lying_build, valkey
from tests.support.eventually import eventually
from tests.support.scheduler import SchedulerProcess


async def require(api: Api, addon: str, build: str, allow_downgrade: bool = False) -> fpb.RequireMaintenanceResponse:
    return await api.fleet.RequireMaintenance(
        fpb.RequireMaintenanceRequest(
            addons=fpb.AddonNames(names=[addon]), reason=rpb.MAINTENANCE_REASON_REDIS_UPGRADE, build=build,
            allow_downgrade=allow_downgrade,
        )
    )


async def server_versions(url: str) -> tuple[str, str]:
    """(redis_version, valkey_version) from INFO server."""
    r = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        info = await r.info("server")
    finally:
        await r.aclose()
    return str(info.get("redis_version", "")), str(info.get("valkey_version", ""))


async def reported(api: Api, addon: str, version: str) -> list[tuple[str, str]]:
    """Until every server of the add-on is reported on `version` (heartbeats carry it)."""

    async def all_on() -> list[tuple[str, str]] | None:
        servers = (await api.maint.GetAddonInfo(mpb.GetAddonInfoRequest(app=APP, addon=addon))).addon.servers
        seen = [(s.build, s.version) for s in servers]
        return seen if all(v == version for _, v in seen) else None

    result: list[tuple[str, str]] = await eventually(all_on, timeout=20, message=f"servers on {version}")
    return result


@pytest.fixture
def two_builds(scheduler_factory: Callable[..., SchedulerProcess], agents: Callable[..., AgentProcess]):
    """db-1 and db-2 each with redis-7.0 (the default) and valkey-8.1."""
    s = scheduler_factory(extra_args=FAST)
    args = build_args(REDIS, valkey())
    return s, {h: agents(h, s.address, args) for h in ("db-1", "db-2")}


async def test_redis_to_valkey_under_writes_loses_no_acknowledged_write(two_builds) -> None:
    scheduler, _ = two_builds
    async with connect(scheduler.address) as api:
        await api.wait_agents("db-1", "db-2")
        listed = await api.fleet.ListAgents(fpb.ListAgentsRequest())
        assert {(b.name, b.version, b.is_default) for a in listed.agents for b in a.builds} == {
            ("redis-7.0", REDIS_VERSION, True), ("valkey-8.1", VALKEY_VERSION, False)
        }
        addon = await api.create("premium-0")
        assert await reported(api, addon.name, REDIS_VERSION) == [("redis-7.0", REDIS_VERSION)] * 2
        urls = [await api.server_url(addon, rpb.SERVER_ROLE_PRIMARY), await api.server_url(addon, rpb.SERVER_ROLE_STANDBY)]

        client = await attach(scheduler.address, APP, "REDIS_URL", decode_responses=True)
        writer = Writer(client.set)
        writer.start()
        await eventually(lambda: len(writer.log) > 200, timeout=10)
        [m] = (await require(api, addon.name, "valkey-8.1")).maintenances
        assert (m.target_build, m.target_version) == ("valkey-8.1", VALKEY_VERSION)
        await api.run(addon.name)
        info = await api.wait_status("completed")
        mark = len(writer.log)
        await eventually(lambda: len(writer.log) > mark + 100, timeout=10)  # still writing, on the new one
        log = await writer.stop()
        await client.aclose()
        assert not log.failure, log.failure

        assert (info.target_build, info.target_version) == ("valkey-8.1", VALKEY_VERSION)
        new_primary = (await api.config())["REDIS_URL"]
        assert await missing_writes(new_primary, len(log)) == []
        assert await masters(*urls) == [new_primary]
        for url in urls:  # both servers: the new primary and the old one, now its standby
            assert (await server_versions(url))[1] == VALKEY_VERSION
        assert await reported(api, addon.name, VALKEY_VERSION) == [("valkey-8.1", VALKEY_VERSION)] * 2

        # Back to 7.0.15 would be a downgrade: refused, unless asked for.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await require(api, addon.name, "redis-7.0")
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "would downgrade" in refused.value.details() and "--allow-downgrade" in refused.value.details()
        assert VALKEY_VERSION in refused.value.details() and REDIS_VERSION in refused.value.details()
        [down] = (await require(api, addon.name, "redis-7.0", allow_downgrade=True)).maintenances
        assert (down.target_version, down.allow_downgrade) == (REDIS_VERSION, True)


async def test_mini_moves_to_valkey_through_its_hidden_standby(two_builds) -> None:
    scheduler, _ = two_builds
    async with connect(scheduler.address) as api:
        await api.wait_agents("db-1", "db-2")
        addon = await api.create("mini")
        old_url = await api.url_of(addon.servers[0].endpoint)
        seed = aioredis.Redis.from_url(old_url)
        try:
            await seed.set("precious", "data")
        finally:
            await seed.aclose()
        await require(api, addon.name, "valkey-8.1")  # minis start at once
        await api.wait_status("completed")
        after = await api.addon()
        assert len(after.servers) == 1 and after.servers[0].address.host != addon.servers[0].address.host
        new_url = await api.url_of(after.servers[0].endpoint)
        assert (await api.config())["REDIS_URL"] == new_url
        assert (await server_versions(new_url))[1] == VALKEY_VERSION
        r = aioredis.Redis.from_url(new_url, decode_responses=True)
        try:
            assert await r.get("precious") == "data"
        finally:
            await r.aclose()
        assert await reported(api, addon.name, VALKEY_VERSION) == [("valkey-8.1", VALKEY_VERSION)]


async def test_a_host_without_the_build_or_a_wrong_version_fails_before_the_failover(
    scheduler_factory: Callable[..., SchedulerProcess], agents: Callable[..., AgentProcess], tmp_path
) -> None:
    """db-2 first lacks valkey-8.1; then it has one that claims 8.1.8 but serves 7.0.15."""
    scheduler = scheduler_factory(extra_args=FAST)
    db1 = agents("db-1", scheduler.address, build_args(REDIS, valkey()))
    db2 = agents("db-2", scheduler.address, build_args(REDIS))
    hosts = {"db-1": db1, "db-2": db2}
    async with connect(scheduler.address) as api:
        await api.wait_agents("db-1", "db-2")
        addon = await api.create("premium-0")
        primary_url = await api.server_url(addon, rpb.SERVER_ROLE_PRIMARY)
        standby = next(s for s in addon.servers if s.role == rpb.SERVER_ROLE_STANDBY)
        assert standby.address.host == "db-2"  # placement: least loaded, then by name
        await require(api, addon.name, "valkey-8.1")
        await api.run(addon.name)
        info = await api.wait_attempts(1)
        key = f"db-2:{standby.address.port}"
        assert info.last_failure_reason == (
            f"prepare: host db-2 (standby {key}) has no build valkey-8.1 ({VALKEY_VERSION}); "
            f"it has: redis-7.0 {REDIS_VERSION}"
        )
        assert (await api.config())["REDIS_URL"] == primary_url

        # db-2 gets a "valkey-8.1" that lies about its version.
        hosts["db-2"].stop()
        hosts["db-2"] = agents("db-2", scheduler.address, build_args(REDIS, ("valkey-8.1", lying_build(tmp_path))))
        await api.wait_agents("db-1", "db-2")
        await api.run(addon.name)
        info = await api.wait_attempts(2)
        assert info.last_failure_reason == (
            f"maintain_standby: standby {key} on host db-2 came back on version {REDIS_VERSION}, not "
            f"{VALKEY_VERSION} of build valkey-8.1"
        )
        assert (await api.config())["REDIS_URL"] == primary_url
        assert await masters(primary_url, await api.url_of(standby.endpoint)) == [primary_url]

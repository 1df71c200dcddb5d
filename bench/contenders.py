"""The three switchovers compared: kvmaint's maintenance, Redis's FAILOVER, and Sentinel's failover."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from bench.procs import (
    Reaper,
    endpoint,
    remember_credentials,
    split,
    start_kvmaint,
    start_redis_pair,
    start_sentinels,
)
from bench.redisops import admin, flush_and_sync, follows, replication, role, wait_for
from bench.runs import Contender, Switchover, Topology
from bench.writer import (
    NO_RETRY,
    RecordingConnection,
    RecordingSentinelConnection,
    ReResolvingClient,
    SetFn,
    command,
)
from kvmaint.client import attach
from kvmaint.v1 import events_pb2 as epb
from kvmaint.v1 import events_pb2_grpc, fleet_pb2_grpc, maintenance_pb2_grpc
from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb

Closer = Callable[[], Awaitable[None]]


async def _settled(old: str, new: str) -> bool:
    """The switchover is over when `new` is master and `old` is its connected replica."""
    return (await role(new))[0] == "master" and await follows(old, new)


async def _by_role(a: str, b: str) -> tuple[str, str]:
    """(primary, standby) as the servers say now: a run that failed half-way must not confuse the next."""
    if (await role(b))[0] == "master" and (await role(a))[0] != "master":
        return b, a
    return a, b


class KvmaintContender:
    """A kvmaint planned maintenance of a premium-0 add-on (primary and HA standby on two agents)."""

    name = "kvmaint"
    anchors = [
        ("failover_step", "failover step start"),
        ("trigger", "RunMaintenance call"),
    ]
    run_timeout = 180.0
    APP = "bench-app"
    scheduler_args: list[str] = []

    def __init__(self) -> None:
        self.address = ""
        self.sentinel_port = 0
        self.addon = ""
        self.channel: grpc.aio.Channel | None = None
        self.maintenance_id = ""
        # (maintenance id, step) -> monotonic time the step started, from the event's own timestamp.
        self.step_started: dict[tuple[str, str], float] = {}
        self.events_task: asyncio.Task[None] | None = None
        self.workdir = Path()
        self.redis_url = ""

    async def setup(self, reaper: Reaper, workdir: Path) -> None:
        self.workdir = workdir / "kvmaint"
        scheduler, _ = await asyncio.to_thread(
            start_kvmaint, reaper, self.workdir, extra_args=self.scheduler_args
        )
        self.address = scheduler.address
        self.sentinel_port = scheduler.sentinel_port
        self.channel = grpc.aio.insecure_channel(self.address)
        self.fleet = fleet_pb2_grpc.FleetServiceStub(self.channel)
        self.maint = maintenance_pb2_grpc.MaintenanceServiceStub(self.channel)
        self.events = events_pb2_grpc.EventServiceStub(self.channel)

        async def agents_connected() -> bool:
            resp = await self.fleet.ListAgents(fpb.ListAgentsRequest(), timeout=5)
            return {"db-1", "db-2"} <= {a.host_id for a in resp.agents if a.connected}

        await wait_for("agents db-1 and db-2 connected", agents_connected, 30, 0.1)
        await self.fleet.CreateApp(
            fpb.CreateAppRequest(name=self.APP, owner_email="bench@example.com"), timeout=10
        )
        req = fpb.CreateAddonRequest(app=self.APP, plan="premium-0", attachments=["REDIS_URL"])
        self.addon = (await self.fleet.CreateAddon(req, timeout=60)).addon.name
        self.events_task = asyncio.create_task(self._follow_events(), name="kvmaint-events")

    async def _follow_events(self) -> None:
        """Notes when each step starts. The event's timestamp is taken on the scheduler just before it
        persists the step, so it is mapped onto this process's monotonic clock (same machine)."""
        wall_minus_mono = time.time() - time.monotonic()
        since = 0
        while True:
            try:
                call = self.events.StreamEvents(
                    epb.StreamEventsRequest(app=self.APP, since_sequence=since, follow=True)
                )
                async for resp in call:
                    e = resp.event
                    since = e.sequence
                    if e.type == rpb.EVENT_TYPE_MAINTENANCE_STEP and "done" not in e.attributes:
                        step = e.attributes.get("step", "")
                        at = e.time.seconds + e.time.nanos / 1e9 - wall_minus_mono
                        self.step_started.setdefault((e.maintenance_id, step), at)
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.1)

    async def _servers(self) -> Topology:
        info = await self.maint.GetAddonInfo(
            mpb.GetAddonInfoRequest(app=self.APP, addon=self.addon), timeout=10
        )
        by_role = {s.role: endpoint(*split(s.endpoint)) for s in info.addon.servers}
        config = await self.fleet.GetConfigVars(fpb.GetConfigVarsRequest(app=self.APP), timeout=10)
        self.redis_url = config.config_vars["REDIS_URL"]  # managed servers require its user and password
        remember_credentials(self.redis_url, *by_role.values())
        return Topology(by_role[rpb.SERVER_ROLE_PRIMARY], by_role[rpb.SERVER_ROLE_STANDBY])

    async def prepare(self, run: int) -> Topology:
        topo = await self._servers()
        await flush_and_sync(topo.primary, topo.standby)
        resp = await self.fleet.RequireMaintenance(
            fpb.RequireMaintenanceRequest(
                addons=fpb.AddonNames(names=[self.addon]), reason=rpb.MAINTENANCE_REASON_SECURITY_PATCH
            ),
            timeout=10,
        )
        if resp.already_pending:
            raise RuntimeError(f"a maintenance of {self.addon} was already pending")
        return topo

    async def client(self, topo: Topology) -> tuple[SetFn, Closer]:
        client = await attach(self.address, self.APP, "REDIS_URL", connection_class=RecordingConnection)
        return client.set, client.aclose

    async def trigger(self, topo: Topology) -> None:
        # The same call as `kvmaint data:maintenances:run ADDON -a APP --confirm APP`.
        resp = await self.maint.RunMaintenance(
            mpb.RunMaintenanceRequest(app=self.APP, addon=self.addon, confirm=self.APP), timeout=30
        )
        self.maintenance_id = resp.maintenance.id

    async def wait_switched(self, topo: Topology) -> Switchover:
        while True:
            info = (
                await self.maint.GetMaintenanceInfo(
                    mpb.GetMaintenanceInfoRequest(app=self.APP, addon=self.addon), timeout=10
                )
            ).info
            if info.status in ("completed", "failed"):
                break
            await asyncio.sleep(0.05)
        key = (self.maintenance_id, "failover")
        with contextlib.suppress(TimeoutError):
            await wait_for("the failover step's event", _truthy(lambda: key in self.step_started), 5, 0.02)
        after = await self._servers()
        switch = Switchover(
            ok=info.status == "completed",
            new_primary=after.primary,
            failure=f"maintenance failed: {info.failure_reason}" if info.status == "failed" else "",
            figures={
                "write_pause_ms": float(info.write_pause_ms),
                **({"redirect_ms": float(info.redirect_ms)} if info.HasField("redirect_ms") else {}),
            },
        )
        if key in self.step_started:
            switch.moments["failover_step"] = self.step_started[key]
        if switch.ok and after.primary != topo.standby:
            switch.notes.append(f"primary is {after.primary}, expected the old standby {topo.standby}")
        return switch

    async def teardown(self) -> None:
        if self.events_task is not None:
            self.events_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.events_task
        if self.channel is not None:
            await self.channel.close()


def _truthy(predicate: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return predicate()

    return check


class RedisFailoverContender:
    """Redis's own coordinated switchover: `FAILOVER TO host port TIMEOUT 5000` sent to the primary."""

    name = "redis"
    anchors = [("trigger", "FAILOVER sent")]
    run_timeout = 30.0

    def __init__(self) -> None:
        self.primary = ""
        self.standby = ""

    async def setup(self, reaper: Reaper, workdir: Path) -> None:
        a, b = await asyncio.to_thread(start_redis_pair, reaper, workdir / "redis")
        self.primary, self.standby = endpoint(a.host, a.port), endpoint(b.host, b.port)

    async def prepare(self, run: int) -> Topology:
        self.primary, self.standby = await _by_role(self.primary, self.standby)
        await flush_and_sync(self.primary, self.standby)
        return Topology(self.primary, self.standby)

    async def client(self, topo: Topology) -> tuple[SetFn, Closer]:
        client = ReResolvingClient([topo.primary, topo.standby], topo.primary)
        return client.set, client.aclose

    async def trigger(self, topo: Topology) -> None:
        host, port = split(topo.standby)
        c = admin(topo.primary, 5)
        try:
            await command(c, "FAILOVER", "TO", host, port, "TIMEOUT", 5000)
        finally:
            await c.aclose()

    async def wait_switched(self, topo: Topology) -> Switchover:
        while True:
            if await _settled(topo.primary, topo.standby):
                self.primary, self.standby = topo.standby, topo.primary
                return Switchover(ok=True, new_primary=topo.standby)
            info = await replication(topo.primary)
            if info.get("role") == "master" and info.get("master_failover_state") == "no-failover":
                if (await role(topo.standby))[0] != "master":
                    return Switchover(ok=False, new_primary=topo.primary, failure="FAILOVER was aborted")
            await asyncio.sleep(0.005)

    async def teardown(self) -> None:
        pass


class SentinelContender:
    """Sentinel's forced failover (`SENTINEL FAILOVER mymaster`), three sentinels, quorum 2."""

    name = "sentinel"
    anchors = [("trigger", "SENTINEL FAILOVER sent")]
    run_timeout = 90.0

    def __init__(self) -> None:
        self.primary = ""
        self.standby = ""
        self.sentinels: list[int] = []

    async def setup(self, reaper: Reaper, workdir: Path) -> None:
        a, b = await asyncio.to_thread(start_redis_pair, reaper, workdir / "sentinel-redis")
        self.primary, self.standby = endpoint(a.host, a.port), endpoint(b.host, b.port)
        self.sentinels = await asyncio.to_thread(start_sentinels, reaper, workdir / "sentinels", a.port)

    async def _sentinel(self, port: int, *args: Any) -> Any:
        c = admin(f"127.0.0.1:{port}", 2)
        try:
            return await command(c, *args)
        finally:
            await c.aclose()

    async def _sentinels_ready(self) -> bool:
        """Every sentinel sees the primary as master (no failover under way), the standby as a healthy
        replica, and both other sentinels: only then is a failover a fair test."""
        for port in self.sentinels:
            addr = await self._sentinel(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
            if not addr or endpoint(addr[0], addr[1]) != self.primary:
                return False
            master = _pairs(await self._sentinel(port, "SENTINEL", "MASTER", "mymaster"))
            if master.get("flags") != "master" or int(master.get("num-other-sentinels", 0)) < 2:
                return False
            replicas = [_pairs(r) for r in await self._sentinel(port, "SENTINEL", "REPLICAS", "mymaster")]
            if not any(
                endpoint(r["ip"], r["port"]) == self.standby
                and r.get("flags") == "slave"
                and r.get("master-link-status") == "ok"
                for r in replicas
            ):
                return False
        return True

    async def prepare(self, run: int) -> Topology:
        self.primary, self.standby = await _by_role(self.primary, self.standby)
        await flush_and_sync(self.primary, self.standby)
        await wait_for("sentinels ready", self._sentinels_ready, 120, 0.2)
        return Topology(self.primary, self.standby)

    async def client(self, topo: Topology) -> tuple[SetFn, Closer]:
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            [("127.0.0.1", p) for p in self.sentinels],
            sentinel_kwargs={"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
            socket_timeout=10,
        )
        client: aioredis.Redis = sentinel.master_for(
            "mymaster", connection_class=RecordingSentinelConnection, retry=NO_RETRY
        )

        async def close() -> None:
            await client.aclose()
            for s in sentinel.sentinels:
                await s.aclose()

        return client.set, close

    async def trigger(self, topo: Topology) -> None:
        await self._sentinel(self.sentinels[0], "SENTINEL", "FAILOVER", "mymaster")

    async def wait_switched(self, topo: Topology) -> Switchover:
        async def switched() -> bool:
            if not await _settled(topo.primary, topo.standby):
                return False
            addr = await self._sentinel(self.sentinels[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
            return bool(addr) and endpoint(addr[0], addr[1]) == topo.standby

        await wait_for("the old primary replicating from the new one", switched, self.run_timeout, 0.01)
        self.primary, self.standby = topo.standby, topo.primary
        return Switchover(ok=True, new_primary=topo.standby)

    async def teardown(self) -> None:
        pass


def _pairs(flat: Any) -> dict[str, str]:
    """A Sentinel reply of alternating names and values, as a dict."""
    if isinstance(flat, dict):
        return {str(k): str(v) for k, v in flat.items()}
    items = list(flat)
    return {str(items[i]): str(items[i + 1]) for i in range(0, len(items) - 1, 2)}


CONTENDERS: dict[str, type[Contender]] = {
    "kvmaint": KvmaintContender,
    "redis": RedisFailoverContender,
    "sentinel": SentinelContender,
}

"""Maintenance notices inside Redis through a real maintenance started by plan (issue 7 §4).

The scheduler runs in this process on an injected clock (so "about 60 s ahead" is checked to the
second without waiting a minute), with real agent processes, real redis-servers and real gRPC. Two kinds
of subscriber listen on `__kvmaint__:maintenance`, neither with any kvmaint code:

- plain redis-py SUBSCRIBE on the primary named by REDIS_URL; on `failed_over` it subscribes on the
  `new_primary` the notice names, as an app would;
- `redis-cli SUBSCRIBE` (a stock client): one on the primary, which the old primary lets go of after
  `failed_over`, then one started on the new primary it names.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest
import redis.asyncio
from google.protobuf.timestamp_pb2 import Timestamp

from kvmaint.notices import CHANNEL
from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import fleet_pb2_grpc, maintenance_pb2_grpc
from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb
from server.app import Scheduler, SchedulerConfig, build_scheduler
from server.domain.windows import DAYS
from server.driver.runner import DriverConfig
from tests.support.agentproc import AgentProcess
from tests.support.clocks import SetWallClock
from tests.support.eventually import eventually

APP = "example-app"
FLOW = ["scheduled", "scheduled", "starting", "failing_over", "failed_over", "completed"]


class Follower:
    """A plain redis-py subscriber that moves to the new primary named by `failed_over`."""

    def __init__(self, port: int, username: str | None, password: str | None) -> None:
        self.username, self.password = username, password
        self.messages: list[dict[str, str]] = []
        self.ports = [port]
        self.task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.subscribed.wait(), 10)

    async def _run(self) -> None:
        while True:
            client = redis.asyncio.Redis(port=self.ports[-1], username=self.username, password=self.password)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                self.subscribed.set()
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                    if msg is None:
                        continue
                    notice = json.loads(msg["data"])
                    if self.messages and notice == self.messages[-1]:
                        continue  # the same bytes replicated from the other server
                    self.messages.append(notice)
                    if notice["type"] == "failed_over":
                        self.ports.append(int(notice["new_primary"].rpartition(":")[2]))
                        break
            finally:
                await pubsub.aclose()
                await client.aclose()

    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


class RedisCli:
    """`redis-cli -p PORT SUBSCRIBE CHANNEL`, its stdout read line by line."""

    def __init__(self, username: str | None, password: str | None) -> None:
        self.auth = ["--user", username, "--pass", password, "--no-auth-warning"] if password else []
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self.reader: asyncio.Task[None] | None = None

    async def start(self, port: int) -> RedisCli:
        self.proc = await asyncio.create_subprocess_exec(
            "redis-cli", "-p", str(port), *self.auth, "SUBSCRIBE", CHANNEL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        self.reader = asyncio.create_task(self._read())
        await eventually(lambda: len(self.lines) >= 3, timeout=10, message="redis-cli subscribed")
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.lines.append(line.decode().rstrip("\n"))

    def notices(self) -> list[dict[str, str]]:
        return [json.loads(line) for line in self.lines if line.startswith("{")]

    def types(self) -> list[str]:
        return [n["type"] for n in self.notices()]

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)


@pytest.fixture
async def scheduler(tmp_path: Path) -> AsyncIterator[tuple[Scheduler, SetWallClock]]:
    # Near the real time: agents check command deadlines on their own clocks. Waits are real (the agents
    # answer in real time); only the dates the planner sees are the test's.
    clock = SetWallClock(datetime.now(UTC).replace(microsecond=0))
    config = SchedulerConfig(
        listen="127.0.0.1:0",
        db=tmp_path / "state.db",
        tick_seconds=3600,  # the test runs the planner's ticks itself, at the times it sets
        driver=DriverConfig(catch_up_timeout=20, command_timeout=30),
    )
    s = await build_scheduler(config, clock)
    yield s, clock
    await s.stop(1)


def ts(at: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(at)
    return t


async def test_a_maintenance_by_plan_tells_subscribers_in_order(
    scheduler: tuple[Scheduler, SetWallClock], agents: Callable[..., AgentProcess]
) -> None:
    s, clock = scheduler
    address = f"127.0.0.1:{s.port}"
    agents("db-1", address)
    agents("db-2", address)
    followers: list[Follower] = []
    clis: list[RedisCli] = []
    async with grpc.aio.insecure_channel(address) as channel:
        fleet = fleet_pb2_grpc.FleetServiceStub(channel)
        maint = maintenance_pb2_grpc.MaintenanceServiceStub(channel)
        await fleet.CreateApp(fpb.CreateAppRequest(name=APP, owner_email="owner@example.com"))

        async def created() -> str:  # the agents may still be connecting
            req = fpb.CreateAddonRequest(app=APP, plan="premium-0", attachments=["REDIS_URL"])
            return (await fleet.CreateAddon(req, timeout=30)).addon.name

        addon = await eventually(created, timeout=30, interval=0.2, message="add-on created")
        url = (await fleet.GetConfigVars(fpb.GetConfigVarsRequest(app=APP))).config_vars["REDIS_URL"]
        parsed = urlsplit(url)  # redis://USER:PASSWORD@HOST:PORT: the add-on's ACL user
        primary_port, user, password = int(parsed.port or 0), parsed.username, parsed.password
        try:
            follower = Follower(primary_port, user, password)
            followers.append(follower)
            await follower.start()
            first_cli = await RedisCli(user, password).start(primary_port)
            clis.append(first_cli)

            # A window that opens in 20 minutes (moved there after the requirement: rescheduled).
            await fleet.RequireMaintenance(
                fpb.RequireMaintenanceRequest(
                    addons=fpb.AddonNames(names=[addon]),
                    reason=rpb.MAINTENANCE_REASON_SECURITY_PATCH,
                    required_by=ts(clock.now() + timedelta(days=30)),
                )
            )
            opens = clock.now().replace(second=0) + timedelta(minutes=20)
            window = mpb.UpdateWindowRequest(
                app=APP, addon=addon, day=DAYS[opens.weekday()], time=opens.strftime("%H:%M")
            )
            state = (await maint.UpdateWindow(window)).state
            scheduled_for = state.scheduled_for.ToDatetime(tzinfo=UTC)
            assert scheduled_for == opens
            await eventually(lambda: follower.types() == ["scheduled", "scheduled"], message=follower.types())
            assert follower.messages[1]["scheduled_for"] == opens.isoformat(timespec="milliseconds")

            # 61 s before the window: nothing yet. 60 s before: `starting`, and it has not started.
            clock.set(opens - timedelta(seconds=61))
            assert await s.planner.tick() == []
            clock.set(opens - timedelta(seconds=60))
            assert await s.planner.tick() == []
            await eventually(lambda: "starting" in follower.types(), message=follower.types())
            starting = follower.messages[2]
            assert (
                starting["in_seconds"] == "60"
                and starting["starts_at"] == follower.messages[1]["scheduled_for"]
            )
            info = (await maint.GetMaintenanceInfo(mpb.GetMaintenanceInfoRequest(app=APP, addon=addon))).info
            assert info.status == "pending"

            # The window opens: the planner starts it, and the switch tells everyone where to go.
            clock.set(opens)
            (mid,) = await s.planner.tick()

            async def completed() -> bool:
                req = mpb.GetMaintenanceInfoRequest(app=APP, addon=addon)
                info = (await maint.GetMaintenanceInfo(req)).info
                assert info.status not in ("failed", "pending"), info
                return info.status == "completed"

            second_cli: list[RedisCli] = []

            async def new_primary_cli() -> bool:
                failed_over = [n for n in first_cli.notices() if n["type"] == "failed_over"]
                if failed_over and not second_cli:
                    port = int(failed_over[0]["new_primary"].rpartition(":")[2])
                    second_cli.append(await RedisCli(user, password).start(port))
                    clis.append(second_cli[0])
                return bool(second_cli)

            await eventually(
                new_primary_cli, timeout=60, message=f"failed_over on redis-cli {first_cli.lines}"
            )
            await eventually(completed, timeout=60, interval=0.2, message="maintenance completed")
            await eventually(lambda: follower.types() == FLOW, timeout=10, message=follower.types())

            ids = {n["maintenance_id"] for n in follower.messages}
            assert ids == {mid} and {n["addon"] for n in follower.messages} == {addon}
            failed_over = follower.messages[4]
            assert failed_over["old_primary"] == f"127.0.0.1:{primary_port}"
            assert follower.ports[-1] != primary_port == follower.ports[0]
            times = [datetime.fromisoformat(n["time"]) for n in follower.messages]
            assert times == sorted(times)

            # The stock client on the old primary heard all but `completed`, then was let go of.
            assert first_cli.proc is not None
            assert await asyncio.wait_for(first_cli.proc.wait(), 10) != 0
            assert "Server closed the connection" in first_cli.lines[-1], first_cli.lines
            assert first_cli.types() == FLOW[:5], first_cli.lines
            # The one started on the new primary it named hears `completed`.
            await eventually(lambda: second_cli[0].types() == ["completed"], message=second_cli[0].lines)
        finally:
            for f in followers:
                await f.close()
            for c in clis:
                await c.close()

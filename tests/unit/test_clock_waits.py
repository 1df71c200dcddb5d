"""The runner's and the hub's timeouts run on the injected clock: a FakeClock steps a 60 s timeout in
milliseconds of real time, and nothing times out before the clock says so."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kvmaint.clock import FakeClock
from kvmaint.errors import Unavailable
from kvmaint.v1 import agent_pb2
from server.agents.hub import AgentHub
from server.domain.models import Maintenance, Method, Reason, Status
from server.driver.runner import DriverConfig, MaintenanceRunner, StepFailed
from server.service.bus import EventBus
from server.service.core import Context
from server.storage.sqlite import SqliteStore
from tests.support.eventually import eventually

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


async def test_fake_clock_wait_for_returns_the_result_or_times_out_only_when_stepped() -> None:
    clock = FakeClock(NOW)
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    waiting = asyncio.ensure_future(clock.wait_for(done, 5))
    await eventually(lambda: clock.sleepers == 1)
    done.set_result("answer")
    assert await waiting == "answer"

    never: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    waiting = asyncio.ensure_future(clock.wait_for(never, 5))
    await eventually(lambda: clock.sleepers == 1)
    await clock.advance(4.999)
    assert not waiting.done()
    await clock.advance(0.002)
    with pytest.raises(TimeoutError):
        await waiting
    assert never.cancelled()  # the abandoned awaitable is cancelled, as asyncio.wait_for does


async def test_hub_command_timeout_of_60_s_elapses_on_the_fake_clock() -> None:
    clock = FakeClock(NOW)
    hub = AgentHub(clock, require_certificates=False)
    began = time.monotonic()
    call = asyncio.ensure_future(
        hub.call("db-9", "m1/prepare", "catch_up_check", agent_pb2.CatchUpCheckCommand(port=7002), 60.0)
    )
    await eventually(lambda: clock.sleepers == 1)
    await clock.advance(59.9)
    assert not call.done()
    await clock.advance(0.2)
    with pytest.raises(Unavailable, match=r"did not answer catch_up_check within 60\.0 s"):
        await call
    assert time.monotonic() - began < 5  # a minute of scheduler time, stepped


class LaggingHub:
    """A standby whose link is up but that never catches up."""

    def __init__(self) -> None:
        self.checks: list[float] = []

    def endpoint_host(self, host: str) -> str:
        return host

    async def call(
        self, host: str, command_id: str, action: str, message: Any, timeout: float, *_: Any
    ) -> Any:
        self.checks.append(timeout)
        return agent_pb2.CommandResult(ok=False, link_up=True, lag_bytes=4096, last_io_seconds_ago=0)


async def test_runner_catch_up_timeout_of_60_s_elapses_on_the_fake_clock(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    try:
        clock = FakeClock(NOW)
        hub = LaggingHub()
        config = DriverConfig(catch_up_timeout=60.0, poll_seconds=0.5)
        runner = MaintenanceRunner(Context(store, clock, EventBus(), random.Random(1)), hub, config)  # type: ignore[arg-type]
        m = Maintenance(
            "m1", "redis-a", "app", Reason.SECURITY_PATCH, Method.FAILOVER, Status.PREPARING, NOW, NOW
        )
        began = time.monotonic()
        wait = asyncio.ensure_future(runner._wait_caught_up(m, "db-2:7002", "db-1:7001", "catch_up"))
        while not wait.done():
            await eventually(lambda: clock.sleepers == 1 or wait.done())
            await clock.advance(0.5)
        with pytest.raises(StepFailed, match="did not catch up within 60 s"):
            await wait
        assert len(hub.checks) == 120  # one check per poll over the minute, none after the deadline
        assert hub.checks[0] == 60.0 and hub.checks[-1] == 1.0  # each check bounded by what is left
        assert time.monotonic() - began < 10
    finally:
        await store.close()

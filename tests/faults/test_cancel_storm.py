"""Fault 1 over real gRPC: a storm of cancelled StreamEvents calls never wedges the scheduler.

Each round opens StreamEvents (with and without follow), reads one event, cancels the call, and calls
another RPC (a read or a write) before the next round. The scheduler's one SQLite connection used to be
left inside an open transaction after 10 to 247 such cancels; every RPC then failed with "cannot start a
transaction within a transaction" until a restart.
"""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest

from kvmaint.v1 import events_pb2 as epb
from kvmaint.v1 import events_pb2_grpc, fleet_pb2_grpc
from kvmaint.v1 import fleet_pb2 as fpb
from tests.support.rpc import api, registered_addon
from tests.support.stores import on_both_stores

ROUNDS = 400


@on_both_stores
async def test_cancelled_streams_leave_the_scheduler_working(scheduler) -> None:
    with api(scheduler.address) as a:
        registered_addon(a)
        for i in range(20):  # some events to read
            a.CreateApp(fpb.CreateAppRequest(name=f"storm-{i}", owner_email="o@example.com"))
    rng = random.Random(12)
    async with grpc.aio.insecure_channel(scheduler.address) as channel:
        events = events_pb2_grpc.EventServiceStub(channel)
        fleet = fleet_pb2_grpc.FleetServiceStub(channel)
        for i in range(ROUNDS):
            call = events.StreamEvents(epb.StreamEventsRequest(follow=bool(i % 2)))
            if rng.random() < 0.7:
                await call.read()
            else:  # cancel before or while the first batch is read
                await asyncio.sleep(rng.random() * 0.002)
            call.cancel()
            if i % 3 == 0:
                await fleet.CreateApp(fpb.CreateAppRequest(name=f"after-{i}", owner_email="o@example.com"))
            else:
                await fleet.ListApps(fpb.ListAppsRequest())
        # Still working: a write, a read and a full stream.
        await fleet.CreateApp(fpb.CreateAppRequest(name="last", owner_email="o@example.com"))
        apps = await fleet.ListApps(fpb.ListAppsRequest(page_size=1000))
        assert "last" in {x.name for x in apps.apps}
        got = [r async for r in events.StreamEvents(epb.StreamEventsRequest())]
        assert got
    assert "cannot start a transaction" not in scheduler.log_text()


@pytest.mark.parametrize("follow", [False, True])
async def test_concurrent_cancelled_streams(scheduler, follow: bool) -> None:
    """Many streams cancelled at once, racing with writes."""
    with api(scheduler.address) as a:
        registered_addon(a)
    async with grpc.aio.insecure_channel(scheduler.address) as channel:
        events = events_pb2_grpc.EventServiceStub(channel)
        fleet = fleet_pb2_grpc.FleetServiceStub(channel)

        async def one(i: int) -> None:
            call = events.StreamEvents(epb.StreamEventsRequest(follow=follow))
            await asyncio.sleep((i % 7) / 2000)
            call.cancel()

        for r in range(15):
            await asyncio.gather(
                *(one(i) for i in range(20)),
                fleet.CreateApp(fpb.CreateAppRequest(name=f"c-{r}", owner_email="o@example.com")),
            )
        await fleet.CreateApp(fpb.CreateAppRequest(name="last", owner_email="o@example.com"))
    assert "cannot start a transaction" not in scheduler.log_text()

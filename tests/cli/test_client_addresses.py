"""`kvmaint.client.attach` with several scheduler addresses (the replicas): a dead first address is
skipped, and when the stream to one replica is lost the watch carries on from the next."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from kvmaint.client import attach
from kvmaint.v1 import fleet_pb2, fleet_pb2_grpc
from tests.support.eventually import eventually


class Replica(fleet_pb2_grpc.FleetServiceServicer):
    def __init__(self, url: str) -> None:
        self.url = url
        self.watchers = 0

    async def WatchConfigVars(self, request: Any, context: Any) -> AsyncIterator[Any]:
        self.watchers += 1
        yield fleet_pb2.WatchConfigVarsResponse(config_vars={"REDIS_URL": self.url})
        await asyncio.Event().wait()  # follows for ever, as the scheduler does


async def serve(servicer: Replica) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    fleet_pb2_grpc.add_FleetServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def dead_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
async def two() -> AsyncIterator[list[tuple[grpc.aio.Server, str, Replica]]]:
    out = []
    for n in (1, 2):
        r = Replica(f"redis://127.0.0.1:{6390 + n}")
        server, address = await serve(r)
        out.append((server, address, r))
    yield out
    for server, _, _ in out:
        await server.stop(None)


async def test_attach_skips_a_dead_address_and_moves_on_when_its_replica_dies(
    two: list[tuple[grpc.aio.Server, str, Replica]],
) -> None:
    (s1, a1, r1), (_, a2, r2) = two
    client = await attach(f"{dead_address()},{a1},{a2}", "example-app", connect_timeout=10)
    try:
        assert client._follower.url == r1.url
        await s1.stop(None)  # the replica the watch is on goes away
        await eventually(lambda: r2.watchers == 1, timeout=10, message="the watch moved to the next replica")
        await eventually(lambda: client._follower.url == r2.url, timeout=5)
    finally:
        await client.aclose()

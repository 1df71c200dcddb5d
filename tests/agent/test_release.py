"""After the switch the demoted primary lets go of its clients: normal and pub/sub connections are
closed, the replication link and the agent's own connection are not, and the count is reported."""

from __future__ import annotations

import asyncio

from agent.redisnode import RedisNode
from kvmaint.clock import SystemClock
from tests.agent.test_redisnode import pair, role
from tests.support.eventually import eventually


async def client_ids(server, kind: str) -> set[int]:
    return {int(c["id"]) for c in await server.client().client_list(_type=kind)}


async def test_the_demoted_primary_closes_normal_and_pubsub_clients(redis_factory):
    old, target = await pair(redis_factory)
    idle = [await asyncio.open_connection("127.0.0.1", old.port) for _ in range(3)]  # never sent a thing
    sub = old.client().pubsub()
    await sub.subscribe("news")
    await eventually(lambda: client_ids(old, "pubsub"), message="subscriber connected")
    node = RedisNode(old.port, SystemClock())
    progress: list[str] = []
    try:
        outcome = await node.failover("127.0.0.1", target.port, 5000, lambda m, **kw: progress.append(m))
        assert outcome.ok, outcome.error
        closed = int(outcome.fields["clients_closed"])
        assert closed >= 4  # the three idle ones and the subscriber
        assert any(f"closed {closed} client connection(s)" in m for m in progress), progress
        for reader, _ in idle:
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        assert await client_ids(old, "pubsub") == set()
        info = await role(old)  # the replication link to the new primary survived
        assert info["role"] == "slave" and info["master_port"] == target.port
        assert (await node.status()).is_replica  # and the agent still talks to it
    finally:
        await sub.aclose()
        for _, w in idle:
            w.close()
        await node.close()

"""RedisNode against real redis-server processes: catch-up verdicts, failover, force promotion."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio
import redis.exceptions

from agent.redisnode import RedisNode
from agent.redisnode.status import parse_status
from kvmaint.clock import SystemClock
from tests.agent.proxy import TcpProxy
from tests.support.eventually import eventually
from tests.support.redisproc import RedisFactory, RedisProcess

log = logging.getLogger(__name__)


async def role(server: RedisProcess) -> dict:
    return await server.client().info("replication")


async def linked(replica: RedisProcess) -> bool:
    return await replica.synced()


async def settled(server: RedisProcess) -> bool:
    """No AOF rewrite running: a replica rewrites its AOF right after a full sync, and the fsyncs that
    end the rewrite can stall it for a moment on a busy disk (real, but noise for a pause measurement)."""
    info = await server.client().info("persistence")
    return info["aof_rewrite_in_progress"] == 0 and info["aof_rewrite_scheduled"] == 0


async def pair(factory: RedisFactory) -> tuple[RedisProcess, RedisProcess]:
    primary = await factory.astart()
    replica = await factory.astart(replicaof=primary)
    await eventually(lambda: linked(replica), message="replica linked")
    await eventually(lambda: settled(replica), message="replica's initial AOF written")
    return primary, replica


@pytest.fixture
async def nodes():
    made: list[RedisNode] = []

    def make(port: int) -> RedisNode:
        node = RedisNode(port, SystemClock())
        made.append(node)
        return node

    yield make
    for node in made:
        await node.close()


# --- status and catch-up ---------------------------------------------------------------------------


async def test_status_of_primary_and_replica(redis_factory, nodes):
    primary, replica = await pair(redis_factory)
    await primary.client().set("k", "v")
    p = await nodes(primary.port).status()
    r = await nodes(replica.port).status()
    assert p.is_primary and p.redis_version.startswith("7.")
    assert [x.port for x in p.replicas] == [replica.port]
    assert r.is_replica and r.link_up and r.primary_port == primary.port and r.replid == p.replid
    assert not (await nodes(1).status()).reachable


async def test_catch_up_ok(redis_factory, nodes):
    primary, replica = await pair(redis_factory)
    for i in range(50):
        await primary.client().set(f"k{i}", i)
    node = nodes(replica.port)

    async def caught_up():
        verdict = await node.catch_up_check("127.0.0.1", primary.port, 0, 10)
        return verdict if verdict.ok else None

    verdict = await eventually(caught_up)
    assert verdict.link_up and verdict.lag_bytes == 0 and verdict.last_io_seconds_ago >= 0


async def test_catch_up_not_ok_when_lagging_then_link_down(redis_factory, nodes):
    """A replica that replicates through a proxy: freezing the proxy makes it fall behind with its link
    up; cutting the proxy takes the link down."""
    primary = await redis_factory.astart()
    proxy = await TcpProxy(primary.port).start()
    try:
        replica = await redis_factory.astart(replicaof=("127.0.0.1", proxy.port))
        await eventually(lambda: linked(replica))
        node = nodes(replica.port)
        proxy.freeze()
        for i in range(200):
            await primary.client().set(f"key{i}", "x" * 100)
        verdict = await node.catch_up_check("127.0.0.1", primary.port, 1000, 60)
        assert not verdict.ok
        assert verdict.link_up
        assert verdict.lag_bytes > 1000
        assert "bytes behind" in verdict.reason

        proxy.thaw()

        async def caught_up():
            v = await node.catch_up_check("127.0.0.1", primary.port, 1000, 60)
            return v if v.ok else None

        await eventually(caught_up)

        await proxy.cut()

        async def link_down():
            v = await node.catch_up_check("127.0.0.1", primary.port, 1000, 60)
            return v if not v.link_up else None

        verdict = await eventually(link_down)
        assert not verdict.ok and "link is down" in verdict.reason
        assert verdict.lag_bytes >= 0 and verdict.last_io_seconds_ago >= 0
    finally:
        await proxy.close()


async def test_catch_up_primary_unreachable(redis_factory, nodes):
    primary, replica = await pair(redis_factory)
    primary.kill()
    verdict = await nodes(replica.port).catch_up_check("127.0.0.1", primary.port, 10**9, 10**6)
    assert not verdict.ok and verdict.lag_bytes == -1 and "unreachable" in verdict.reason


# --- failover --------------------------------------------------------------------------------------


class Writer:
    """Writes unique keys as fast as it can to whichever server is primary; records every write Redis
    acknowledged. On READONLY or a broken connection it moves to the other server and tries again."""

    def __init__(self, servers: list[RedisProcess], name: str) -> None:
        self.clients = [s.client(socket_timeout=10) for s in servers]
        self.current = 0
        self.name = name
        self.acked: dict[str, str] = {}
        self.errors: list[str] = []
        self.stop = asyncio.Event()

    async def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            key, value = f"{self.name}:{i}", f"v{i}"
            try:
                await self.clients[self.current].set(key, value)
                self.acked[key] = value
                i += 1
            except (redis.exceptions.ReadOnlyError, redis.exceptions.ConnectionError) as exc:
                self.errors.append(type(exc).__name__)
                self.current = 1 - self.current
                await asyncio.sleep(0.001)


async def test_failover_under_concurrent_writes_loses_nothing(redis_factory, nodes):
    old, target = await pair(redis_factory)
    writers = [Writer([old, target], f"w{n}") for n in range(4)]
    tasks = [asyncio.create_task(w.run()) for w in writers]
    await eventually(lambda: all(len(w.acked) > 50 for w in writers))

    progress: list[str] = []
    outcome = await nodes(old.port).failover(
        "127.0.0.1", target.port, 5000, lambda m, **kw: progress.append(m)
    )
    await eventually(lambda: all(w.current == 1 and len(w.acked) > 0 for w in writers))
    marks = {w.name: len(w.acked) for w in writers}
    await eventually(lambda: all(len(w.acked) > marks[w.name] + 20 for w in writers))
    for w in writers:
        w.stop.set()
    await asyncio.gather(*tasks)

    assert outcome.ok, outcome.error
    log.warning("failover write pause: %d ms (%s)", outcome.write_pause_ms, outcome.fields)
    assert 0 < outcome.write_pause_ms < 5000
    assert outcome.server is not None and outcome.server.is_replica and outcome.server.link_up
    assert outcome.fields["resync"] == "partial"
    assert any("paused" in m for m in progress) and any("demoted" in m for m in progress)

    new_primary = target.client()
    for w in writers:
        # READONLY from the demoted primary, or a closed connection: it lets go of its clients (issue 7
        # §2), which redis-py 5.3 surfaces while 8.1 reconnects first. Both are retried, none loses a write.
        assert set(w.errors) <= {"ReadOnlyError", "ConnectionError"}
        values = await new_primary.mget(list(w.acked))
        missing = [k for k, v in zip(w.acked, values, strict=True) if v != w.acked[k]]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"

    # Exactly one primary; the old one replicates from the new and converges.
    assert (await role(target))["role"] == "master"
    old_info = await role(old)
    assert old_info["role"] == "slave" and old_info["master_port"] == target.port

    async def converged():
        return await old.client().dbsize() == await new_primary.dbsize()

    await eventually(converged)


async def test_failover_rerun_reports_done_and_resumes_after_demotion(redis_factory, nodes):
    old, target = await pair(redis_factory)
    node = nodes(old.port)
    first = await node.failover("127.0.0.1", target.port, 2000)
    assert first.ok
    again = await node.failover("127.0.0.1", target.port, 2000)
    assert again.ok and again.fields.get("already_done") == "true"

    # An agent that died between demotion and promotion: the old primary is a replica of the target,
    # which is itself still a replica. A re-run finishes by promoting the target.
    a, b = await pair(redis_factory)
    await a.client().set("before", "1")
    await eventually(lambda: b.client().get("before"))
    await a.client().execute_command("CLIENT", "PAUSE", 5000, "WRITE")
    await a.client().execute_command("REPLICAOF", "127.0.0.1", b.port)
    assert (await role(b))["role"] == "slave"
    resumed = await nodes(a.port).failover("127.0.0.1", b.port, 2000)
    assert resumed.ok, resumed.error
    assert resumed.fields.get("resumed") == "true"
    assert (await role(b))["role"] == "master"
    assert await b.client().get("before") == "1"
    await b.client().set("after", "2")  # writable


async def test_failover_timeout_keeps_old_primary_writable(redis_factory, nodes):
    """The target never catches up (its link is frozen): after timeout_ms the old primary unpauses and
    stays the one primary."""
    old = await redis_factory.astart()
    proxy = await TcpProxy(old.port).start()
    try:
        target = await redis_factory.astart(replicaof=("127.0.0.1", proxy.port))
        await eventually(lambda: linked(target))
        proxy.freeze()
        await old.client().set("unreplicated", "x")
        outcome = await nodes(old.port).failover("127.0.0.1", target.port, 300)
        assert not outcome.ok
        assert "behind after 300 ms" in outcome.error and "stays primary" in outcome.error
        assert outcome.server is not None and outcome.server.is_primary
        client = old.client(socket_timeout=1)
        assert await client.set("after-timeout", "1")  # not paused any more
        assert (await role(old))["role"] == "master"
        assert (await role(target))["role"] == "slave"
    finally:
        await proxy.close()


async def test_failover_refuses_wrong_target(redis_factory, nodes):
    a = await redis_factory.astart()
    b = await redis_factory.astart()
    outcome = await nodes(a.port).failover("127.0.0.1", b.port, 500)
    assert not outcome.ok and "Both" in outcome.error
    c = await redis_factory.astart(replicaof=a)
    await eventually(lambda: linked(c))
    outcome = await nodes(c.port).failover("127.0.0.1", b.port, 500)
    assert not outcome.ok and "not a primary" in outcome.error


# --- force promote and replicate_from -------------------------------------------------------------


async def test_force_promote_refusals_and_success(redis_factory, nodes):
    primary, replica = await pair(redis_factory)
    node = nodes(replica.port)
    too_far = await node.force_promote(last_lag_bytes=5000, max_lag_bytes=100)
    assert not too_far.ok and "Refused" in too_far.error and "5000 bytes" in too_far.error
    alive = await node.force_promote(last_lag_bytes=0, max_lag_bytes=100)
    assert not alive.ok and "two primaries" in alive.error
    assert (await role(replica))["role"] == "slave"

    primary.kill()
    promoted = await node.force_promote(last_lag_bytes=0, max_lag_bytes=100)
    assert promoted.ok, promoted.error
    assert (await role(replica))["role"] == "master"


async def test_replicate_from_and_back(redis_factory, nodes):
    a = await redis_factory.astart()
    b = await redis_factory.astart()
    await a.client().set("x", "1")
    node = nodes(b.port)
    outcome = await node.replicate_from("127.0.0.1", a.port)
    assert outcome.ok and outcome.link_up
    assert await b.client().get("x") == "1"
    outcome = await node.replicate_from("", 0)
    assert outcome.ok and (await role(b))["role"] == "master"


def test_parse_status_ignores_garbage():
    status = parse_status(1, {"role": "slave", "master_link_status": "down", "master_port": "x"})
    assert status.is_replica and not status.link_up and status.primary_port == 0

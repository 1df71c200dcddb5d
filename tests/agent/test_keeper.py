"""The keeper on real redis-servers: killed servers come back in the record's roles, with their data;
a server that keeps dying backs off, then is reported crash-looping; nothing starts without a role, under
a maintenance's hold, or when adopted. The keeper's clock is a FakeClock, so the backoff is exact; the
servers themselves start on the wall clock."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from agent.builds import probe_all
from agent.inventory import Inventory
from agent.keep import Assignment, KeepPolicy, Supervision
from agent.keeper import Keeper
from agent.redisnode import RedisNode
from agent.redisnode.role import DesiredRole
from kvmaint.clock import FakeClock, SystemClock
from tests.support.eventually import eventually
from tests.support.redisproc import REDIS_SERVER, RedisFactory, kill_pidfiles


@pytest.fixture
async def inventory(tmp_path: Path) -> AsyncIterator[Inventory]:
    inv = Inventory(tmp_path / "agent", probe_all((), REDIS_SERVER, "db-1"), SystemClock())
    try:
        yield inv
    finally:
        await inv.close()
        kill_pidfiles(tmp_path / "agent")


async def kill(node: RedisNode) -> None:
    """SIGKILL, then until the process is gone (pid() reaps our own child)."""
    assert node.process is not None
    pid = node.process.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await eventually(lambda: node.process is not None and node.process.pid() is None, timeout=10)


async def started(inventory: Inventory, replicaof: tuple[str, int] | None = None) -> RedisNode:
    node, _ = await inventory.create(0, replicaof)
    assert (await node.start()).ok
    return node


async def test_killed_servers_come_back_in_the_records_roles_with_their_data(inventory: Inventory) -> None:
    primary = await started(inventory)
    # Its config says "primary" too: the record, not the config, must make it a replica.
    standby = await started(inventory)
    client = aioredis.Redis(port=primary.port)
    await client.set("before", "kill")
    await client.aclose()
    await kill(standby)
    await kill(primary)
    keeper = Keeper(inventory, FakeClock(), KeepPolicy())
    assert await keeper.pass_once() == []  # no record yet: nothing starts on a guess
    assert keeper.report(primary.port).supervision is Supervision.NO_ROLE  # type: ignore[union-attr]
    keeper.set_roles(
        {
            primary.port: Assignment(DesiredRole.primary(), "redis-a"),
            standby.port: Assignment(DesiredRole.replica_of("127.0.0.1", primary.port), "redis-a"),
        }
    )
    done = await keeper.pass_once()
    assert len(done) == 2 and all(" started: " in line for line in done), done
    p, s = await primary.status(), await standby.wait_linked(10)
    assert p.is_primary
    assert s.follows("127.0.0.1", primary.port) and s.link_up
    check = aioredis.Redis(port=standby.port)
    assert await check.get("before") == b"kill"  # the primary's AOF, replicated to the standby
    await check.aclose()
    assert await keeper.pass_once() == []
    assert keeper.report(standby.port).supervision is Supervision.KEPT  # type: ignore[union-attr]


async def test_a_server_that_keeps_dying_backs_off_then_is_crash_looping(inventory: Inventory) -> None:
    node = await started(inventory)
    clock = FakeClock()
    keeper = Keeper(inventory, clock, KeepPolicy(base_seconds=1.0, cap_seconds=30.0, max_starts=3))
    keeper.set_roles({node.port: Assignment(DesiredRole.primary(), "redis-a")})
    assert await keeper.pass_once() == []
    await kill(node)
    conf = node.layout.conf  # type: ignore[union-attr]
    good = conf.read_text()
    conf.write_text(good + "no-such-directive yes\n")  # every start now exits at once

    starts = []
    for second in range(12):
        done = await keeper.pass_once()
        if done:
            assert " failed to start: " in done[0]
            starts.append(second)
        await clock.advance(1.0)
    assert starts == [0, 1, 3]  # at once, then 1 s and 2 s later; no fourth start
    report = keeper.report(node.port)
    assert report is not None and report.supervision is Supervision.CRASH_LOOPING and report.restarts == 3
    assert "crash-looping: 3 starts in a row" in report.detail and "exited with code 1" in report.detail
    assert "Bad directive or wrong number of arguments" in report.detail

    conf.write_text(good)  # an operator fixes it and starts it
    assert (await node.start(DesiredRole.primary())).ok
    await keeper.pass_once()
    assert keeper.report(node.port).supervision is Supervision.KEPT  # type: ignore[union-attr]


async def test_held_adopted_and_unknown_servers_are_not_started(
    inventory: Inventory, tmp_path: Path
) -> None:
    held = await started(inventory)
    orphan = await started(inventory)
    factory = RedisFactory(tmp_path / "adopted")
    try:
        adopted_proc = await factory.astart()
        adopted = inventory.adopt(adopted_proc.port)
        await kill(held)
        await kill(orphan)
        adopted_proc.kill()
        keeper = Keeper(inventory, FakeClock())
        keeper.set_roles({held.port: Assignment(DesiredRole.primary(), "redis-a", hold=True)})
        assert await keeper.pass_once() == []
        reports = {n.port: keeper.report(n.port) for n in (held, orphan, adopted)}
        assert reports[held.port].supervision is Supervision.HELD  # type: ignore[union-attr]
        assert reports[orphan.port].supervision is Supervision.NO_ROLE  # type: ignore[union-attr]
        assert reports[adopted.port].supervision is Supervision.WATCHED  # type: ignore[union-attr]
        assert not (await held.status()).reachable and not (await adopted.status()).reachable
    finally:
        await factory.aclose()

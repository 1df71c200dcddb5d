"""A managed server (re)starts in the role the scheduler records, whatever its own config says."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from agent.builds import probe_all
from agent.inventory import Inventory
from agent.redisnode.role import DesiredRole, conf_with_role, role_mismatch
from agent.redisnode.status import RedisServerStatus
from kvmaint.clock import SystemClock
from tests.support.redisproc import REDIS_SERVER, RedisFactory, free_port, kill_pidfiles


def test_conf_with_role_replaces_every_replicaof_line() -> None:
    conf = 'port 7000\nslaveof 10.0.0.1 7001\nREPLICAOF 10.0.0.2 7002\n  replicaof x 1\ndir "/d"\n'
    assert conf_with_role(conf, DesiredRole.primary()) == 'port 7000\ndir "/d"\n'
    assert conf_with_role(conf, DesiredRole.replica_of("h", 9)) == 'port 7000\ndir "/d"\nreplicaof h 9\n'
    # a key merely containing the word is kept
    assert "replica-read-only yes" in conf_with_role("replica-read-only yes\n", DesiredRole.primary())


def test_role_mismatch_names_what_is_wrong() -> None:
    primary = RedisServerStatus(port=1, reachable=True, role="master")
    replica = RedisServerStatus(port=1, reachable=True, role="slave", primary_host="h", primary_port=9)
    assert role_mismatch(primary, DesiredRole.primary()) == ""
    assert role_mismatch(replica, DesiredRole.replica_of("h", 9)) == ""
    assert "not from h:9" in role_mismatch(primary, DesiredRole.replica_of("h", 9))
    assert "replicates from h:9, not from h:8" in role_mismatch(replica, DesiredRole.replica_of("h", 8))
    assert "not a primary" in role_mismatch(replica, DesiredRole.primary())
    down = RedisServerStatus(port=1, reachable=False, error="refused")
    assert "unreachable" in role_mismatch(down, DesiredRole.primary())


async def test_a_killed_primary_restarts_as_the_replica_the_record_says(tmp_path: Path) -> None:
    factory = RedisFactory(tmp_path / "redis")
    inventory = Inventory(tmp_path / "agent", probe_all((), REDIS_SERVER, "db-1"), SystemClock())
    try:
        new_primary = await factory.astart()
        node, _ = await inventory.create(0, None)  # its config says: primary
        assert (await node.start()).ok
        assert (await node.status()).is_primary
        os.kill(node.process.pid(), signal.SIGKILL)  # type: ignore[union-attr, arg-type]

        want = DesiredRole.replica_of("127.0.0.1", new_primary.port)
        outcome = await node.restart(role=want)
        assert outcome.ok, outcome
        status = await node.status()
        assert status.follows("127.0.0.1", new_primary.port) and status.link_up
        assert f"replicaof 127.0.0.1 {new_primary.port}" in node.layout.conf.read_text()  # type: ignore[union-attr]

        # The record says primary again: it comes back primary.
        outcome = await node.restart(role=DesiredRole.primary())
        assert outcome.ok and (await node.status()).is_primary, outcome
    finally:
        await inventory.close()
        kill_pidfiles(tmp_path / "agent")
        await factory.aclose()


async def test_a_standby_that_is_not_replicating_is_a_failure(tmp_path: Path) -> None:
    inventory = Inventory(tmp_path / "agent", probe_all((), REDIS_SERVER, "db-1"), SystemClock())
    try:
        node, _ = await inventory.create(0, None)
        outcome = await node.restart(role=DesiredRole.replica_of("127.0.0.1", free_port()))
        assert not outcome.ok
        assert "not replicating" in outcome.error, outcome
        assert (await node.status()).is_replica  # never writable
    finally:
        await inventory.close()
        kill_pidfiles(tmp_path / "agent")

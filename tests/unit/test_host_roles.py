"""What the scheduler tells a host's keeper: each server's role from the record, held while a maintenance
runs or when a failed one left the record behind the servers. Real SQLite store."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kvmaint.clock import FakeClock
from kvmaint.v1 import agent_pb2
from server.domain.driverstate import DriverState
from server.domain.models import Maintenance, Method, Reason, Role, ServerRef, Status
from server.driver.roles import host_roles
from server.service.bus import EventBus
from server.service.core import Context
from server.service.fleet import FleetService
from server.storage.sqlite import SqliteStore

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def endpoint(key: str) -> tuple[str, int]:
    host, _, port = key.rpartition(":")
    return {"db-1": "10.0.0.1", "db-2": "10.0.0.2"}[host], int(port)


def roles(msg: agent_pb2.ServerRoles) -> dict[int, tuple[bool, str, int, bool]]:
    return {r.port: (r.role.primary, r.role.primary_host, r.role.primary_port, r.hold) for r in msg.servers}


async def test_roles_and_holds(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    try:
        ctx = Context(store, FakeClock(NOW), EventBus(), random.Random(1))
        fleet = FleetService(ctx)
        await fleet.create_app("app", "o@example.com")
        await fleet.create_addon("app", "premium-0", "redis-a", ["REDIS_URL"], ServerRef("db-1", 7001, Role.PRIMARY),
                                 ServerRef("db-2", 7002, Role.STANDBY))
        assert roles(await host_roles(store, "db-1", endpoint)) == {7001: (True, "", 0, False)}
        assert roles(await host_roles(store, "db-2", endpoint)) == {7002: (False, "10.0.0.1", 7001, False)}
        assert roles(await host_roles(store, "db-3", endpoint)) == {}

        m = Maintenance("m1", "redis-a", "app", Reason.SECURITY_PATCH, Method.FAILOVER, Status.RUNNING,
                        NOW + timedelta(days=9), NOW, state=DriverState(done=("prepare", "catch_up", "maintain_standby")))
        async with store.transaction() as tx:
            await tx.insert_maintenance(m)
        assert roles(await host_roles(store, "db-2", endpoint))[7002][3] is True  # held while it runs

        for done, held in (("prepare,catch_up,maintain_standby,failover", True),
                           ("prepare,catch_up,maintain_standby,failover,repoint", False)):
            async with store.transaction() as tx:
                await tx.update_maintenance(replace(m, status=Status.FAILED, completed_at=NOW,
                                                    state=DriverState(done=tuple(done.split(",")))))
            assert roles(await host_roles(store, "db-1", endpoint))[7001][3] is held, done
    finally:
        await store.close()

"""Roles for many hosts in one read (agents/roles_batch.py) say exactly what `host_roles` says host by
host, and concurrent lookups share reads without ever answering from a read older than the question.
Real SQLite store."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kvmaint.clock import FakeClock
from server.agents.roles_batch import RolesBatch
from server.domain.driverstate import DriverState
from server.domain.models import Maintenance, Method, Reason, Role, ServerRef, Status
from server.driver.roles import host_roles, hosts_roles
from server.service.bus import EventBus
from server.service.core import Context
from server.service.fleet import FleetService
from server.storage.sqlite import SqliteStore

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
HOSTS = [f"db-{i}" for i in range(1, 7)]


def endpoint(key: str) -> tuple[str, int]:
    host, _, port = key.rpartition(":")
    return f"10.0.0.{host.split('-')[1]}", int(port)


async def test_hosts_roles_equal_host_roles_and_batches_share_fresh_reads(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    try:
        ctx = Context(store, FakeClock(NOW), EventBus(), random.Random(1))
        fleet = FleetService(ctx)
        await fleet.create_app("app", "o@example.com")
        for i in range(8):
            p, s = HOSTS[i % 5], HOSTS[(i + 1) % 5]
            await fleet.create_addon(
                "app",
                "premium-0",
                f"redis-{i}",
                [f"R{i}_URL"],
                ServerRef(p, 7000 + i, Role.PRIMARY),
                ServerRef(s, 7000 + i, Role.STANDBY),
            )
        running = Maintenance(
            "m1",
            "redis-1",
            "app",
            Reason.SECURITY_PATCH,
            Method.FAILOVER,
            Status.RUNNING,
            NOW + timedelta(days=9),
            NOW,
        )
        stale = replace(
            running,
            id="m2",
            addon="redis-4",
            status=Status.FAILED,
            completed_at=NOW,
            state=DriverState(done=("prepare", "catch_up", "maintain_standby", "failover")),
        )
        async with store.transaction() as tx:
            await tx.insert_maintenance(running)
            await tx.insert_maintenance(stale)

        together = await hosts_roles(store, HOSTS, endpoint)
        for host in HOSTS:  # db-6 has none: an empty message, as host_roles gives
            assert together[host] == await host_roles(store, host, endpoint), host
        assert any(r.hold for r in together["db-2"].servers) and any(r.hold for r in together["db-5"].servers)

        reads: list[list[str]] = []

        async def fetch(hosts: list[str]):  # type: ignore[no-untyped-def]
            reads.append(hosts)
            return await hosts_roles(store, hosts, endpoint)

        batch = RolesBatch(fetch)
        answers = await asyncio.gather(*(batch(h) for h in HOSTS * 20))
        assert answers == [together[h] for h in HOSTS * 20]
        assert len(reads) == 1 and sorted(reads[0]) == HOSTS  # 120 lookups, one read

        # A lookup asked after a change is answered by a read that began after it.
        async with store.transaction() as tx:
            await tx.update_maintenance(replace(running, status=Status.COMPLETED, completed_at=NOW))
        after = await batch("db-2")
        assert after == await host_roles(store, "db-2", endpoint) and after != together["db-2"]
        assert batch.rounds == 2
    finally:
        await store.close()

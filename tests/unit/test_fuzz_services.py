"""Hypothesis against the control plane's services on a real SQLite file: any input either works or is
refused with a kvmaint error (never a crash, never a raw exception), and a refusal writes nothing."""

from __future__ import annotations

import asyncio
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvmaint.clock import FakeClock
from kvmaint.errors import KvmaintError
from server.domain.models import Method, Reason, Role, ServerRef
from server.service.bus import EventBus
from server.service.core import Context
from server.service.fleet import FleetService
from server.service.freezes import FreezeService
from server.service.maintenance import MaintenanceService
from server.storage.sqlite import SqliteStore

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "x" * 5000,
            "sunday",
            "1:30PM",
            "premium-0",
            "REDIS_URL",
            "example-app",
            "2026-13-01",
            "\x00",
        ]
    ),
)
numbers = st.one_of(st.integers(-(2**40), 2**40), st.sampled_from([0, -1, 1, 2, 520, 521, -521]))


async def _world(path: Path) -> tuple[SqliteStore, Context, FleetService, MaintenanceService, FreezeService]:
    store = SqliteStore(path)
    await store.open()
    ctx = Context(store, FakeClock(NOW), EventBus(), random.Random(3))
    fleet, maint = FleetService(ctx), MaintenanceService(ctx)
    await fleet.create_app("example-app", "owner@example.com")
    await fleet.create_addon(
        "example-app",
        "premium-0",
        "redis-a",
        [],
        ServerRef("db-1", 7001, Role.PRIMARY),
        ServerRef("db-2", 7002, Role.STANDBY),
    )
    await fleet.require_maintenance(
        addons=["redis-a"],
        plan=None,
        all_addons=False,
        reason=Reason.SECURITY_PATCH,
        method=Method.FAILOVER,
        required_by=NOW + timedelta(days=30),
    )
    return store, ctx, fleet, maint, FreezeService(ctx)


async def _events(ctx: Context) -> int:
    async with ctx.store.transaction() as tx:
        return len(await tx.events_after(0, "", "", 100_000))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    op=st.sampled_from(
        ["app", "addon", "window", "schedule_weeks", "schedule_week", "run", "history", "freeze", "list"]
    ),
    a=text,
    b=text,
    c=text,
    n=numbers,
)
def test_any_input_is_handled_or_refused_cleanly(op: str, a: str, b: str, c: str, n: int) -> None:
    async def scenario() -> None:
        with tempfile.TemporaryDirectory() as d:
            store, ctx, fleet, maint, freezes = await _world(Path(d) / "s.db")
            try:
                before = await _events(ctx)
                try:
                    if op == "app":
                        await fleet.create_app(a, b)
                    elif op == "addon":
                        await fleet.create_addon(
                            "example-app",
                            a,
                            b,
                            [c],
                            ServerRef("db-3", n % 70000, Role.PRIMARY),
                            ServerRef("db-4", 7005, Role.STANDBY),
                        )
                    elif op == "window":
                        await maint.update_window(a or "example-app", "redis-a", b, c)
                    elif op == "schedule_weeks":
                        await maint.schedule("example-app", a or "redis-a", n, None)
                    elif op == "schedule_week":
                        await maint.schedule("example-app", "redis-a", None, a)
                    elif op == "run":
                        await maint.run("example-app", a or "redis-a", b)
                    elif op == "history":
                        await maint.history("example-app", a or "redis-a", n)
                    elif op == "freeze":
                        start = NOW + timedelta(seconds=n % (10**9))
                        await freezes.create(
                            a if a in ("", "example-app") else "example-app",
                            start,
                            start + timedelta(hours=abs(n) % 5000),
                            b,
                        )
                    else:
                        await fleet.list_apps(n, a)
                except KvmaintError as err:
                    assert str(err), "a refusal says why"
                    assert await _events(ctx) == before, "a refused request wrote something"
            finally:
                await store.close()

    asyncio.run(scenario())

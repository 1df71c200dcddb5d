"""An in-process scheduler core on a fake clock over a real store (a SQLite file, or a PostgreSQL
database of the test's own), with the outbox hooked in, and real receivers: an SMTP server and an
HTTP server."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kvmaint.clock import FakeClock
from server.domain.models import Method, Reason, Role, ServerRef
from server.notify.models import OutboxItem
from server.notify.outbox import Outbox
from server.notify.sender import NotifyConfig, Sender, SmtpConfig
from server.service.bus import EventBus
from server.service.core import Context
from server.service.fleet import FleetService
from server.service.maintenance import MaintenanceService
from server.service.webhooks import WebhookService
from server.storage.select import AnyStore, store_for
from tests.notify.servers import HookSink, SmtpSink
from tests.support.stores import BACKENDS, backend_db

MONDAY_NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
APP = "example-app"
OWNER = "owner@example.com"


@dataclass
class World:
    clock: FakeClock
    store: AnyStore
    ctx: Context
    fleet: FleetService
    maint: MaintenanceService
    webhooks: WebhookService
    sender: Sender
    ports: int = 7000

    async def addon(self, app: str = APP, plan: str = "premium-0", window: tuple[str, str] = ("Friday", "18:00")) -> str:
        """An app (created if missing) with a registered add-on; its window set to `window`."""
        async with self.store.transaction() as tx:
            exists = await tx.get_app(app)
        if not exists:
            await self.fleet.create_app(app, OWNER)
        self.ports += 2
        primary = ServerRef("db-1", self.ports, Role.PRIMARY)
        standby = ServerRef("db-2", self.ports + 1, Role.STANDBY) if plan != "mini" else None
        addon = await self.fleet.create_addon(app, plan, "", [], primary, standby)
        if plan != "mini":
            await self.maint.update_window(app, addon.name, *window)
        return addon.name

    async def require(self, *addons: str, days: int = 14) -> list[str]:
        created, _ = await self.fleet.require_maintenance(
            addons=list(addons),
            plan=None,
            all_addons=False,
            reason=Reason.SECURITY_PATCH,
            method=Method.FAILOVER,
            required_by=self.clock.now() + timedelta(days=days),
        )
        return [m.id for m in created]

    async def outbox(self) -> list[OutboxItem]:
        async with self.store.transaction() as tx:
            return await tx.list_outbox(0, 10_000)


def make_world(db: Path | str, smtp_port: int | None = 1, email: bool = True) -> World:
    """A world on `db`: a SQLite file or a postgresql:// URL."""
    clock = FakeClock(MONDAY_NOON)
    store = store_for(db)
    ctx = Context(store, clock, EventBus(), random.Random(7), notify=Outbox(email=email))
    config = NotifyConfig(
        smtp=SmtpConfig(host="127.0.0.1" if email else "", port=smtp_port or 1, sender="kvmaint@ops.example", timeout=5),
        webhook_timeout=5,
        allow_private_webhooks=True,  # the test's HTTP server is on loopback
    )
    return World(
        clock, store, ctx, FleetService(ctx), MaintenanceService(ctx), WebhookService(ctx), Sender(ctx, config)
    )


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A real SMTP server on a free port, not started: tests bring it up (and down) when they need to."""
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture
def hooks() -> Iterator[HookSink]:
    sink = HookSink().start()
    yield sink
    sink.stop()


@pytest.fixture(params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path: Path, smtp: SmtpSink) -> AsyncIterator[World]:
    """The world on each store: notifications behave the same on SQLite and PostgreSQL."""
    with backend_db(request.param, tmp_path) as db:
        w = make_world(db, smtp.port)
        await w.store.open()
        yield w
        await w.store.close()

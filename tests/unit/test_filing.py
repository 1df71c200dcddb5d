"""Fleet-wide filing (service/filing.py) on a real SQLite store: batches commit on their own, a batch ends
early once its time is up, and a request sent again after a failure part way files only what is missing."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kvmaint.clock import FakeClock
from server.domain.models import Addon, App, Method, Reason, Role, ServerRef
from server.domain.windows import Window
from server.service import filing
from server.service.bus import EventBus
from server.service.core import Context
from server.service.fleet import FleetService
from server.storage.sqlite import SqliteStore, SqliteTx

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
N = 1234


class Broken(Exception):
    pass


class FailingStore(SqliteStore):
    """Fails the write transaction number `fail_at` (counted from 1), once: a crash part way."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes = 0
        self.fail_at = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTx]:
        async with super().transaction() as tx:
            original = tx.insert_maintenances
            counted = False

            async def insert(ms: list[Any], filing_id: str = "") -> None:
                nonlocal counted
                if not counted:
                    counted = True
                    self.writes += 1
                if self.writes == self.fail_at and ms:
                    raise Broken("the disk is full")
                await original(ms, filing_id)

            tx.insert_maintenances = insert  # type: ignore[method-assign]
            yield tx


class TickingClock(FakeClock):
    """Each look at the monotonic clock takes 30 ms: a batch's time is up after a look or two. Sleeps
    are recorded and return at once."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.advance_mono = 0.0
        self.rests: list[float] = []

    def monotonic(self) -> float:
        self.advance_mono += 0.03
        return self.advance_mono

    async def sleep(self, seconds: float) -> None:
        self.rests.append(seconds)


async def fleet(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        await tx.insert_apps([App("app", "o@example.com", False, NOW)])
        await tx.insert_addons(
            [
                Addon(
                    f"redis-{i:04d}",
                    "app",
                    "premium-0",
                    "heroku-redis",
                    "d",
                    ("REDIS_URL",),
                    NOW,
                    (ServerRef("db-1", 10000 + i, Role.PRIMARY), ServerRef("db-2", 10000 + i, Role.STANDBY)),
                    Window(i % 7, 60 * (i % 24)),
                )
                for i in range(N)
            ]
        )


async def require(fleet_service: FleetService, **kw: Any) -> filing.Filing:
    return await fleet_service.require_maintenance(
        addons=None,
        plan=None,
        all_addons=True,
        reason=Reason.SECURITY_PATCH,
        method=Method.FAILOVER,
        required_by=None,
        **kw,
    )


async def test_a_retry_after_a_failure_part_way_files_only_what_is_missing(tmp_path: Path) -> None:
    store = FailingStore(tmp_path / "state.db")
    await store.open()
    try:
        await fleet(store)
        bus = EventBus()
        service = FleetService(Context(store, FakeClock(NOW), bus, random.Random(1)))
        # The second batch fails: the first (500 add-ons; a fake clock never runs out) stays committed.
        store.fail_at = 2
        with pytest.raises(Broken):
            await require(service, request_id="r-1")
        progress = service.filings.get("r-1")
        assert progress is not None and not progress.done and progress.error == "the disk is full"
        assert (progress.filed_count, progress.batches) == (filing.BATCH, 1)
        async with store.transaction() as tx:
            assert len(await tx.filed_maintenances("r-1", "", "", 10_000)) == filing.BATCH
        assert bus.last_sequence == 2 * filing.BATCH  # what committed is told, also after the failure

        again = await require(service, request_id="r-1")
        assert (again.filed_count, again.already_count, again.done) == (
            N - filing.BATCH,
            filing.BATCH,
            True,
        )
        async with store.transaction() as tx:
            filed = await tx.filed_maintenances("r-1", "", "", 10_000)
            assert sorted(m.addon for m in filed) == [f"redis-{i:04d}" for i in range(N)]  # each once
            assert len(await tx.events_after(0, "", "", 100_000)) == 2 * N  # required + scheduled, once each
        assert bus.last_sequence == 2 * N
        assert not again.lists_omitted and len(again.filed) == N - filing.BATCH
    finally:
        await store.close()


async def test_a_batch_commits_early_once_its_time_is_up(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    try:
        await fleet(store)
        clock = TickingClock(NOW)
        service = FleetService(Context(store, clock, EventBus(), random.Random(1)))
        done = await require(service)
        # 30 ms per look, one at the start and one after each part of SUB add-ons: the first part's look
        # is already past the 10 ms of a batch, so each batch files one part.
        assert done.filed_count == N and done.batches == -(-N // filing.SUB)
        # Each batch then rests twice as long as it ran (two looks at least): the API's two thirds.
        assert len(clock.rests) >= done.batches and min(clock.rests) >= 0.12 - 1e-9
    finally:
        await store.close()

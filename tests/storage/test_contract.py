"""The storage contract: every behaviour of `server/storage/base.py`'s Store and Tx, run against SQLite and
PostgreSQL alike (the `store` fixture of tests/conftest.py is parametrized over both). A store that passes
here can stand behind the services; a behaviour the services rely on that is not pinned here is a gap."""

from __future__ import annotations

import asyncio
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kvmaint.errors import FailedPrecondition
from server.domain import requests
from server.domain.credentials import AddonCredentials
from server.domain.driverstate import DriverState
from server.domain.freezes import Freeze
from server.domain.models import (
    Addon,
    App,
    Event,
    EventType,
    HistoryEntry,
    Maintenance,
    Method,
    Reason,
    Role,
    ServerRef,
    Status,
)
from server.domain.planner import Due
from server.domain.windows import Window
from server.notify.models import Channel, OutboxItem, ReminderDue, Webhook
from server.storage import postgres, sqlite
from server.storage.select import AnyStore, store_for
from tests.support.stores import backend_db, db_rows, location

T0 = datetime(2026, 1, 5, 12, 0, 0, 123456, tzinfo=UTC)


def app(name: str = "example-app") -> App:
    return App(name, "owner@example.com", False, T0)


def addon(name: str, app_name: str = "example-app", plan: str = "premium-0") -> Addon:
    return Addon(
        name=name,
        app=app_name,
        plan=plan,
        kind="heroku-redis",
        description="a test add-on",
        attachments=("REDIS_URL", "CACHE_URL"),
        created_at=T0,
        servers=(ServerRef("db-1", 7001, Role.PRIMARY), ServerRef("db-2", 7002, Role.STANDBY)),
        window=Window(4, 18 * 60),
        previous_window=None,
    )


def maint(id: str, addon_name: str = "redis-a", status: Status = Status.PENDING, **kw: object) -> Maintenance:
    fields: dict[str, object] = {
        "id": id,
        "addon": addon_name,
        "app": "example-app",
        "reason": Reason.SECURITY_PATCH,
        "method": Method.FAILOVER,
        "status": status,
        "required_by": T0 + timedelta(days=14),
        "created_at": T0,
    }
    fields.update(kw)
    return Maintenance(**fields)  # type: ignore[arg-type]


def item(key: str, recipient: str = "owner@example.com", at: datetime = T0, **kw: object) -> OutboxItem:
    fields: dict[str, object] = {
        "kind": Channel.EMAIL,
        "dedupe_key": key,
        "app": "example-app",
        "recipient": recipient,
        "subject": f"subject {key}",
        "body": "body",
        "created_at": T0,
        "next_attempt_at": at,
    }
    fields.update(kw)
    return OutboxItem(**fields)  # type: ignore[arg-type]


async def seed(store: AnyStore) -> None:
    async with store.transaction() as tx:
        await tx.insert_app(app())
        await tx.insert_addon(addon("redis-a"))


# transactions


async def test_a_transaction_commits_all_or_nothing(store: AnyStore) -> None:
    with pytest.raises(ValueError):
        async with store.transaction() as tx:
            await tx.insert_app(app("a"))
            await tx.set_config("a", "K", "v")
            raise ValueError("the body failed")
    async with store.transaction() as tx:
        assert await tx.get_app("a") is None
        assert await tx.get_config("a") == {}
        await tx.insert_app(app("b"))
    async with store.transaction() as tx:
        assert await tx.get_app("b") == app("b")


async def test_a_read_does_not_wait_behind_an_open_write_transaction(store: AnyStore) -> None:
    await seed(store)
    writing, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with store.transaction() as tx:
            await tx.insert_app(app("written"))
            writing.set()
            await release.wait()  # the write transaction (and its lock) stays open meanwhile

    task = asyncio.create_task(writer())
    try:
        await asyncio.wait_for(writing.wait(), 5)

        async def read() -> tuple[App | None, App | None, int]:
            async with store.read() as tx:
                return await tx.get_app("example-app"), await tx.get_app("written"), await store.last_sequence()

        # Under the write lock this would wait until `release`: it must answer while the writer is open.
        seen, uncommitted, _ = await asyncio.wait_for(read(), 2)
        assert seen == app()
        assert uncommitted is None  # an open transaction's writes are not visible
    finally:
        release.set()
        await task
    async with store.read() as tx:  # committed: visible to the next read
        assert await tx.get_app("written") == app("written")


async def test_many_reads_at_once_beside_a_writer_see_what_committed_before_they_began(store: AnyStore) -> None:
    await seed(store)

    async def read(expect: str) -> None:
        async with store.read() as tx:
            assert await tx.get_app(expect) is not None
            await asyncio.sleep(0)

    for k in range(5):
        async with store.transaction() as tx:
            await tx.insert_app(app(f"app-{k}"))
        await asyncio.gather(*(read(f"app-{k}") for _ in range(10)))


async def test_a_read_transaction_refuses_writes(store: AnyStore) -> None:
    with pytest.raises(Exception):  # noqa: B017 - each driver raises its own read-only error
        async with store.read() as tx:
            await tx.insert_app(app("nope"))
    async with store.read() as tx:
        assert await tx.get_app("nope") is None
    async with store.transaction() as tx:  # and the store stays usable for both
        await tx.insert_app(app("yes"))
    async with store.read() as tx:
        assert await tx.get_app("yes") == app("yes")


async def test_a_read_sees_one_snapshot_while_writers_commit(store: AnyStore) -> None:
    await seed(store)
    async with store.read() as tx:
        before = await tx.list_apps("", 10)
        async with store.transaction() as w:  # commits while the read is open
            await w.insert_app(app("later"))
        assert await tx.list_apps("", 10) == before
    async with store.read() as tx:
        assert [a.name for a in await tx.list_apps("", 10)] == ["example-app", "later"]


async def test_a_failing_statement_rolls_back_the_transaction_and_leaves_the_store_usable(store: AnyStore) -> None:
    await seed(store)
    with pytest.raises(Exception):  # noqa: B017 - each driver raises its own integrity error
        async with store.transaction() as tx:
            await tx.insert_app(app("new"))
            await tx.insert_app(app("example-app"))  # primary key taken
    async with store.transaction() as tx:
        assert await tx.get_app("new") is None
        assert [a.name for a in await tx.list_apps("", 10)] == ["example-app"]


async def test_read_check_write_transactions_are_serialised_across_two_stores(
    store: AnyStore, tmp_path: Path
) -> None:
    """Services read, decide, then write in one transaction (uniqueness checks, one active maintenance
    per add-on): concurrent transactions, even of two processes, must not interleave."""
    other = store_for(location(store))
    await other.open()
    try:
        await seed(store)

        async def increment(s: AnyStore) -> None:
            async with s.transaction() as tx:
                n = int((await tx.get_config("example-app")).get("N", "0"))
                await asyncio.sleep(0.005)  # widens the window between the read and the write
                await tx.set_config("example-app", "N", str(n + 1))

        await asyncio.gather(*(increment(store if i % 2 else other) for i in range(20)))
        async with store.transaction() as tx:
            assert (await tx.get_config("example-app"))["N"] == "20"
    finally:
        await other.close()


# migrations


async def test_migrations_are_versioned_and_in_step_on_both_stores(store: AnyStore) -> None:
    assert len(postgres.MIGRATIONS) == len(sqlite.MIGRATIONS), "a migration added to one store, not the other"
    assert await store.schema_version() == len(sqlite.MIGRATIONS)


async def test_reopening_a_migrated_database_keeps_its_data(store: AnyStore) -> None:
    await seed(store)
    again = store_for(location(store))
    await again.open()
    try:
        assert await again.schema_version() == len(sqlite.MIGRATIONS)
        async with again.transaction() as tx:
            assert (await tx.get_addon("redis-a")) == addon("redis-a")
    finally:
        await again.close()


async def test_a_database_from_a_newer_kvmaint_is_refused_and_not_written(store: AnyStore) -> None:
    """A downgrade after an upgrade migrated the database: the older code must not write to it."""
    db = location(store)
    newer = len(sqlite.MIGRATIONS) + 1
    await store.close()
    db_rows(db, "INSERT INTO schema_migrations (version) VALUES (?)", newer)
    again = store_for(db)
    with pytest.raises(FailedPrecondition, match=f"has schema version {newer}, written by a newer kvmaint"):
        await again.open()
    assert db_rows(db, "SELECT MAX(version) AS v FROM schema_migrations") == [{"v": newer}]


async def test_postgres_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    """Several processes may open one PostgreSQL database at once (replicas, a scheduler and a tool):
    the migration lock makes one migrate and the others wait and find it done."""
    with backend_db("postgres", tmp_path) as url:
        stores = [postgres.PostgresStore(str(url)) for _ in range(4)]
        await asyncio.gather(*(s.open() for s in stores))
        try:
            assert [await s.schema_version() for s in stores] == [len(postgres.MIGRATIONS)] * 4
            assert db_rows(url, "SELECT COUNT(*) AS n FROM schema_migrations") == [{"n": len(postgres.MIGRATIONS)}]
        finally:
            for s in stores:
                await s.close()


# apps, config vars, add-ons


async def test_apps_round_trip_page_and_update(store: AnyStore) -> None:
    async with store.transaction() as tx:
        for name in ("c-app", "a-app", "b-app"):
            await tx.insert_app(app(name))
        await tx.update_app(App("b-app", "new@example.com", True, T0))
    async with store.transaction() as tx:
        assert [a.name for a in await tx.list_apps("", 2)] == ["a-app", "b-app"]
        assert [a.name for a in await tx.list_apps("b-app", 10)] == ["c-app"]
        b = await tx.get_app("b-app")
        assert b == App("b-app", "new@example.com", True, T0)
        assert b is not None and b.created_at.tzinfo is not None and b.created_at.utcoffset() == timedelta(0)


async def test_config_vars_set_replace_unset(store: AnyStore) -> None:
    await seed(store)
    async with store.transaction() as tx:
        await tx.set_config("example-app", "REDIS_URL", "redis://one")
        await tx.set_config("example-app", "REDIS_URL", "redis://two")
        await tx.set_config("example-app", "A_URL", "redis://a")
        await tx.set_config("example-app", "NOT_THERE", None)
    async with store.transaction() as tx:
        assert await tx.get_config("example-app") == {"A_URL": "redis://a", "REDIS_URL": "redis://two"}
        assert list(await tx.get_config("example-app")) == ["A_URL", "REDIS_URL"]
        await tx.set_config("example-app", "A_URL", None)
    async with store.transaction() as tx:
        assert await tx.get_config("example-app") == {"REDIS_URL": "redis://two"}


async def test_addons_round_trip_with_servers_windows_and_attachments(store: AnyStore) -> None:
    await seed(store)
    moved = replace(
        addon("redis-a"),
        plan="premium-2",
        servers=(ServerRef("db-2", 7002, Role.PRIMARY), ServerRef("db-3", 7003, Role.HIDDEN_STANDBY)),
        window=Window(0, 0),
        previous_window=Window(4, 18 * 60),
        attachments=(),
    )
    async with store.transaction() as tx:
        assert await tx.get_addon("redis-a") == addon("redis-a")
        await tx.update_addon(moved)
    async with store.transaction() as tx:
        assert await tx.get_addon("redis-a") == moved
        assert await tx.get_addon("missing") is None


async def test_addons_list_by_app_page_and_plan(store: AnyStore) -> None:
    async with store.transaction() as tx:
        await tx.insert_app(app("one"))
        await tx.insert_app(app("two"))
        await tx.insert_addon(addon("redis-c", "one", plan="mini"))
        await tx.insert_addon(addon("redis-a", "one"))
        await tx.insert_addon(addon("redis-b", "two"))
    async with store.transaction() as tx:
        assert [a.name for a in await tx.list_addons("one", "", 10)] == ["redis-a", "redis-c"]
        assert [a.name for a in await tx.list_addons(None, "", 2)] == ["redis-a", "redis-b"]
        assert [a.name for a in await tx.list_addons(None, "redis-a", 10)] == ["redis-b", "redis-c"]
        assert [a.name for a in await tx.list_addons("", "", 10)] == ["redis-a", "redis-b", "redis-c"]
        assert [a.name for a in await tx.list_addons_by_plan("premium-0")] == ["redis-a", "redis-b"]
        assert [a.name for a in await tx.list_addons_by_plan(None)] == ["redis-a", "redis-b", "redis-c"]
        await tx.delete_addon("redis-a")
    async with store.transaction() as tx:
        assert [a.name for a in await tx.list_addons(None, "", 10)] == ["redis-b", "redis-c"]


async def test_deleting_an_app_deletes_its_addons_config_and_webhooks(store: AnyStore) -> None:
    await seed(store)
    async with store.transaction() as tx:
        await tx.set_config("example-app", "REDIS_URL", "redis://x")
        await tx.insert_webhook(Webhook("hook-1", "example-app", "https://h.example/x", "s3cret", T0))
        await tx.delete_app("example-app")
    async with store.transaction() as tx:
        assert await tx.get_addon("redis-a") is None
        assert await tx.get_config("example-app") == {}
        assert await tx.get_webhook("hook-1") is None


async def test_credentials_round_trip_and_go_with_their_addon_or_app(store: AnyStore) -> None:
    await seed(store)
    first = AddonCredentials("redis-a", "app-secret", "agent-secret")
    second = AddonCredentials("redis-a", "app-secret-2", "agent-secret-2", tls=True)
    async with store.transaction() as tx:
        assert await tx.get_credentials("redis-a") is None
        await tx.set_credentials("redis-a", first)
    async with store.transaction() as tx:
        assert await tx.get_credentials("redis-a") == first
        await tx.set_credentials("redis-a", second)  # replaced, not added
    async with store.transaction() as tx:
        assert await tx.get_credentials("redis-a") == second
        await tx.delete_addon("redis-a")
    async with store.transaction() as tx:
        assert await tx.get_credentials("redis-a") is None
        await tx.insert_addon(addon("redis-a"))
        await tx.set_credentials("redis-a", first)
        await tx.delete_app("example-app")
    async with store.transaction() as tx:
        assert await tx.get_credentials("redis-a") is None


# maintenances


REQUIRED = {"id", "addon", "app", "reason", "method", "created_at", "required_by"}


async def test_maintenance_round_trip_with_every_field_and_history(store: AnyStore) -> None:
    await seed(store)
    full = maint(
        "m-1",
        status=Status.RUNNING,
        scheduled_for=T0 + timedelta(days=4),
        previously_scheduled_for=T0 + timedelta(days=3),
        started_at=T0 + timedelta(days=4, seconds=1),
        completed_at=T0 + timedelta(days=4, minutes=1),  # the store keeps what it is given
        window=Window(4, 18 * 60),
        current_step="promote",
        failure_reason="an earlier reason",
        write_pause_ms=412,
        attempts=2,
        last_failure_reason="catch-up timed out",
        needs_operator=True,
        target_build="valkey-8.1",
        target_version="8.1.8",
        allow_downgrade=True,
        redirect_ms=530,
        not_before=T0 + timedelta(days=2),
        state=DriverState(old_primary="db-1:7001", unknown=(("nested", "ünïcode"),)),
        history=(HistoryEntry(T0, Status.PENDING, "", "required"),),
    )
    bare = maint("m-1")
    unset = [f.name for f in fields(Maintenance) if f.name not in REQUIRED and getattr(full, f.name) == getattr(bare, f.name)]
    assert unset == [], f"give these new fields a non-default value here, so both stores must keep them: {unset}"
    async with store.transaction() as tx:
        await tx.insert_maintenance(full)
        await tx.add_history("m-1", HistoryEntry(T0 + timedelta(seconds=5, milliseconds=123), Status.RUNNING, "promote", "go"))
    expected = replace(
        full, history=(*full.history, HistoryEntry(T0 + timedelta(seconds=5, milliseconds=123), Status.RUNNING, "promote", "go"))
    )
    async with store.transaction() as tx:
        assert await tx.get_maintenance("m-1") == expected
        assert await tx.get_maintenance("missing") is None
        done = replace(
            expected, status=Status.COMPLETED, completed_at=T0 + timedelta(days=5), needs_operator=False, state=DriverState()
        )
        await tx.update_maintenance(done)
    async with store.transaction() as tx:
        assert await tx.get_maintenance("m-1") == done  # history is kept, not rewritten by an update


async def test_the_periodic_passes_read_maintenances_without_their_histories(store: AnyStore) -> None:
    """Histories are loaded for the reads that print them (get, active, latest, list), not for the
    planner's, the runner's and the reminders' (issue 9: they grow with every step ever taken)."""
    await seed(store)
    step = (HistoryEntry(T0, Status.PENDING, "", "required"),)
    async with store.transaction() as tx:
        await tx.insert_maintenance(maint("m-due", scheduled_for=T0 - timedelta(minutes=1), history=step))
        await tx.insert_maintenance(
            maint("m-run", "redis-b", status=Status.RUNNING, started_at=T0, history=step)
        )
    async with store.read() as tx:
        assert [m.history for m in await tx.due_maintenances(T0)] == [()]
        assert [m.history for m in await tx.in_progress_maintenances()] == [()]
        assert [m.history for m in await tx.starting_between(T0 - timedelta(hours=1), T0)] == [()]
        got = await tx.get_maintenance("m-due")
        assert got is not None and got.history == step
        assert [m.history for m in await tx.latest_maintenances("redis-a", 1)] == [step]
        assert [m.history for m in await tx.list_maintenances("example-app", "", 10)] == [step, step]


async def test_addons_on_a_host_and_latest_of(store: AnyStore) -> None:
    await seed(store)  # redis-a on db-1 and db-2
    async with store.transaction() as tx:
        await tx.insert_addon(replace(addon("redis-b"), servers=(ServerRef("db-2", 7003, Role.PRIMARY),)))
        await tx.insert_addon(replace(addon("redis-c"), servers=(ServerRef("db-3", 7004, Role.PRIMARY),)))
        await tx.insert_maintenance(maint("a-1", status=Status.COMPLETED, created_at=T0))
        await tx.insert_maintenance(maint("a-2", status=Status.FAILED, created_at=T0 + timedelta(hours=1),
                                          history=(HistoryEntry(T0, Status.FAILED, "", "x"),)))
        await tx.insert_maintenance(maint("b-1", "redis-b", status=Status.COMPLETED, created_at=T0))
        await tx.insert_maintenance(maint("b-2", "redis-b", status=Status.PENDING, created_at=T0))  # same time
    async with store.read() as tx:
        assert [a.name for a in await tx.addons_on_hosts(["db-2"])] == ["redis-a", "redis-b"]
        assert [a.name for a in await tx.addons_on_hosts(["db-1"])] == ["redis-a"]
        assert await tx.addons_on_hosts(["db-9"]) == []
        latest = await tx.latest_of(["redis-a", "redis-b", "redis-c", "missing"])
        assert {k: m.id for k, m in latest.items()} == {"redis-a": "a-2", "redis-b": "b-2"}  # id breaks ties
        assert latest["redis-a"].history == ()
        assert latest["redis-a"] == replace((await tx.latest_maintenances("redis-a", 1))[0], history=())
        assert await tx.latest_of([]) == {}
    async with store.transaction() as tx:  # moved servers move with the index
        await tx.update_addon(replace(addon("redis-b"), servers=(ServerRef("db-3", 7005, Role.PRIMARY),)))
    async with store.read() as tx:
        assert [a.name for a in await tx.addons_on_hosts(["db-3"])] == ["redis-b", "redis-c"]
        assert [a.name for a in await tx.addons_on_hosts(["db-2"])] == ["redis-a"]


async def test_active_latest_and_in_progress_maintenances(store: AnyStore) -> None:
    await seed(store)
    async with store.transaction() as tx:
        await tx.insert_maintenance(maint("m-old", status=Status.COMPLETED, created_at=T0,
                                          completed_at=T0 + timedelta(hours=1)))
        await tx.insert_maintenance(maint("m-run", status=Status.RUNNING, created_at=T0 + timedelta(hours=2),
                                          started_at=T0 + timedelta(hours=2)))
        await tx.insert_maintenance(maint("m-b", "redis-b", status=Status.PREPARING,
                                          created_at=T0 + timedelta(hours=3), started_at=T0 + timedelta(hours=1)))
        await tx.insert_maintenance(maint("m-c", "redis-c", status=Status.FAILED, created_at=T0))
    async with store.transaction() as tx:
        active = await tx.active_maintenance("redis-a")
        assert active is not None and active.id == "m-run"
        assert await tx.active_maintenance("redis-c") is None
        assert [m.id for m in await tx.latest_maintenances("redis-a", 10)] == ["m-run", "m-old"]
        assert [m.id for m in await tx.latest_maintenances("redis-a", 1)] == ["m-run"]
        assert [m.id for m in await tx.in_progress_maintenances()] == ["m-b", "m-run"]  # by started_at
    async with store.transaction() as tx:  # a completed one newer than the active one
        await tx.insert_maintenance(maint("m-b2", "redis-b", status=Status.COMPLETED,
                                          created_at=T0 + timedelta(hours=5), completed_at=T0 + timedelta(hours=6)))
    async with store.read() as tx:
        current = {a: await tx.current_maintenance(a) for a in ("redis-a", "redis-b", "redis-c", "redis-z")}
        assert {a: m.id if m else None for a, m in current.items()} == {
            "redis-a": "m-run", "redis-b": "m-b", "redis-c": "m-c", "redis-z": None}
        assert current["redis-b"] is not None and current["redis-b"] == await tx.active_maintenance("redis-b")
        assert [m.id for m in await tx.latest_maintenances("redis-b", 1)] == ["m-b2"]


async def test_list_maintenances_pages_newest_first_by_created_at_then_id(store: AnyStore) -> None:
    await seed(store)
    async with store.transaction() as tx:
        for i, mid in enumerate(["m-1", "m-2", "m-3", "m-4", "m-5"]):
            created = T0 + timedelta(minutes=i // 2)  # pairs share a created_at: the id breaks the tie
            await tx.insert_maintenance(maint(mid, status=Status.COMPLETED, created_at=created))
        await tx.insert_maintenance(maint("m-other", status=Status.COMPLETED, app="other-app"))
    seen: list[str] = []
    after = ""
    while True:
        async with store.transaction() as tx:
            page = await tx.list_maintenances("example-app", after, 2)
        if not page:
            break
        seen += [m.id for m in page]
        last = page[-1]
        after = f"{last.created_at.isoformat(timespec='microseconds')}|{last.id}"  # as the service encodes it
    assert seen == ["m-5", "m-4", "m-3", "m-2", "m-1"]


async def test_due_for_planning_is_due_maintenances_as_the_planners_input(store: AnyStore) -> None:
    await seed(store)
    shared = replace(addon("redis-b"), servers=(ServerRef("db-3", 7001, Role.PRIMARY),
                                                ServerRef("db-3", 7002, Role.STANDBY),
                                                ServerRef("db-1", 7003, Role.STANDBY)))
    async with store.transaction() as tx:
        await tx.insert_addon(shared)
        await tx.insert_maintenance(maint("due-a", scheduled_for=T0 - timedelta(hours=1), window=Window(4, 60),
                                          required_by=T0 + timedelta(days=2),
                                          state=DriverState(queued="waits: db-1 at its limit")))
        await tx.insert_maintenance(maint("due-b", "redis-b", scheduled_for=T0, reason=Reason.EMERGENCY,
                                          required_by=T0 + timedelta(days=1)))
        await tx.insert_maintenance(maint("due-gone", "redis-x", scheduled_for=T0 - timedelta(minutes=1),
                                          required_by=T0 + timedelta(days=3)))
        await tx.insert_maintenance(maint("later", "redis-c", scheduled_for=T0 + timedelta(hours=1)))
        await tx.insert_maintenance(maint("parked", "redis-d", scheduled_for=T0, needs_operator=True))
    async with store.read() as tx:
        whole = await tx.due_maintenances(T0)
        hosts = {"redis-a": ("db-1", "db-2"), "redis-b": ("db-1", "db-3"), "redis-x": ()}
        assert await tx.due_for_planning(T0) == [
            Due(m.id, m.addon, m.app, m.reason, m.required_by, m.scheduled_for or T0, m.window, hosts[m.addon],
                m.state.queued)
            for m in whole
        ]
        assert [m.id for m in whole] == ["due-b", "due-a", "due-gone"]
        assert [d.queued for d in await tx.due_for_planning(T0)] == ["", "waits: db-1 at its limit", ""]
        assert [d.id for d in await tx.due_for_planning(T0 + timedelta(hours=1))][-1] == "later"
        found = await tx.maintenances_by_id(["later", "due-a", "nope"])
        assert sorted(found, key=lambda m: m.id) == [
            replace(m, history=()) for m in [await tx.get_maintenance("due-a"), await tx.get_maintenance("later")]
            if m is not None
        ]
        assert await tx.maintenances_by_id([]) == []


async def test_note_queued_records_a_new_reason_once_on_pending_maintenances_only(store: AnyStore) -> None:
    await seed(store)
    kept = DriverState(done=("prepare",), old_primary="db-1:7000", queued="old", unknown=(("extra", "x"),))
    async with store.transaction() as tx:
        await tx.insert_maintenance(maint("m-a", state=kept, scheduled_for=T0,
                                          history=(HistoryEntry(T0, Status.PENDING, "", "filed"),)))
        await tx.insert_maintenance(maint("m-b", "redis-b", state=DriverState(queued="same")))
        await tx.insert_maintenance(maint("m-c", "redis-c", scheduled_for=T0 + timedelta(minutes=1)))
        await tx.insert_maintenance(maint("m-run", "redis-d", status=Status.RUNNING))
    later = T0 + timedelta(minutes=5)
    async with store.transaction() as tx:
        assert await tx.note_queued([], later) == []
        got = await tx.note_queued(
            [("m-c", "waits: db-3 at its limit"), ("m-b", "same"), ("m-run", "frozen"), ("m-a", "frozen"),
             ("nope", "frozen")],
            later,
        )
        assert got == ["m-a", "m-c"]
    async with store.read() as tx:
        a, b, c, run = [await tx.get_maintenance(i) for i in ("m-a", "m-b", "m-c", "m-run")]
    assert a is not None and b is not None and c is not None and run is not None
    assert a.state == replace(kept, queued="frozen")  # the rest of the driver's state untouched
    assert a.history == (HistoryEntry(T0, Status.PENDING, "", "filed"),
                         HistoryEntry(later, Status.PENDING, "", "Queued: frozen"))
    assert c.state.queued == "waits: db-3 at its limit"
    assert c.history[-1] == HistoryEntry(later, Status.PENDING, "", "Queued: waits: db-3 at its limit")
    assert (b.state.queued, b.history) == ("same", ())
    assert (run.state.queued, run.history) == ("", ())
    async with store.transaction() as tx:  # the same reasons again: nothing to write
        assert await tx.note_queued([("m-a", "frozen"), ("m-c", "waits: db-3 at its limit")], later) == []
    async with store.read() as tx:
        due = await tx.due_for_planning(T0 + timedelta(minutes=1))  # what the planner's next tick reads
    assert [(d.id, d.queued) for d in due] == [("m-a", "frozen"), ("m-c", "waits: db-3 at its limit")]


async def test_due_pending_and_starting_between(store: AnyStore) -> None:
    await seed(store)
    async with store.transaction() as tx:
        await tx.insert_maintenance(maint("due-late", scheduled_for=T0 - timedelta(hours=1),
                                          required_by=T0 + timedelta(days=2)))
        await tx.insert_maintenance(maint("due-soon", "redis-b", scheduled_for=T0 - timedelta(hours=2),
                                          required_by=T0 + timedelta(days=1)))
        await tx.insert_maintenance(maint("due-now", "redis-c", scheduled_for=T0,
                                          required_by=T0 + timedelta(days=1)))
        await tx.insert_maintenance(maint("parked", "redis-d", scheduled_for=T0 - timedelta(hours=3),
                                          needs_operator=True))
        await tx.insert_maintenance(maint("later", "redis-e", scheduled_for=T0 + timedelta(hours=20)))
        await tx.insert_maintenance(maint("unscheduled", "redis-f"))
        await tx.insert_maintenance(maint("elsewhere", "redis-g", app="other-app",
                                          scheduled_for=T0 + timedelta(hours=30)))
        await tx.insert_maintenance(maint("running", "redis-h", status=Status.RUNNING,
                                          scheduled_for=T0 - timedelta(hours=1)))
    async with store.transaction() as tx:
        # by required_by, then scheduled_for; never one that waits for an operator
        assert [m.id for m in await tx.due_maintenances(T0)] == ["due-soon", "due-now", "due-late"]
        assert {m.id for m in await tx.pending_maintenances("example-app")} == {
            "due-late", "due-soon", "due-now", "parked", "later", "unscheduled"
        }
        assert len(await tx.pending_maintenances(None)) == 7
        # after < scheduled_for <= until
        window = await tx.starting_between(T0, T0 + timedelta(hours=30))
        assert [m.id for m in window] == ["later", "elsewhere"]


async def test_counts_and_last_completed(store: AnyStore) -> None:
    await seed(store)
    async with store.transaction() as tx:
        await tx.insert_maintenance(maint("a1", status=Status.COMPLETED, completed_at=T0 + timedelta(days=1)))
        await tx.insert_maintenance(maint("a2", status=Status.COMPLETED, completed_at=T0 + timedelta(days=9)))
        await tx.insert_maintenance(maint("b1", "redis-b", status=Status.COMPLETED, completed_at=T0))
        await tx.insert_maintenance(maint("c1", "redis-c", status=Status.FAILED))
        await tx.insert_maintenance(maint("c2", "redis-c"))
    async with store.transaction() as tx:
        assert await tx.last_completed() == {"redis-a": T0 + timedelta(days=9), "redis-b": T0}
        assert await tx.maintenance_counts() == {"completed": 3, "failed": 1, "pending": 1}


async def test_routine_candidates_are_the_addons_last_maintained_by_the_cutoff_with_nothing_active(
    store: AnyStore,
) -> None:
    """An add-on's last maintenance is its latest completed one, else its creation (T0 for all here)."""
    await seed(store)
    async with store.transaction() as tx:
        for name in ("redis-b", "redis-c", "redis-d"):
            await tx.insert_addon(addon(name))
        await tx.insert_maintenance(maint("a1", status=Status.COMPLETED, completed_at=T0 + timedelta(days=1)))
        await tx.insert_maintenance(maint("b1", "redis-b"))  # pending: redis-b is never a candidate
        await tx.insert_maintenance(maint("c1", "redis-c", status=Status.RUNNING))
    async with store.transaction() as tx:
        assert await tx.routine_candidates(T0 - timedelta(seconds=1)) == []
        found = await tx.routine_candidates(T0)
        assert [(a.name, at) for a, at in found] == [("redis-d", T0)]
        found = await tx.routine_candidates(T0 + timedelta(days=2))
        assert [(a.name, at) for a, at in found] == [("redis-a", T0 + timedelta(days=1)), ("redis-d", T0)]
    async with store.transaction() as tx:
        c1 = await tx.get_maintenance("c1")
        assert c1 is not None
        await tx.update_maintenance(replace(c1, status=Status.COMPLETED, completed_at=T0 + timedelta(days=3)))
    async with store.transaction() as tx:
        found = await tx.routine_candidates(T0 + timedelta(days=2))
        assert [a.name for a, _ in found] == ["redis-a", "redis-d"]
        found = await tx.routine_candidates(T0 + timedelta(days=3))
        assert [(a.name, at) for a, at in found][1] == ("redis-c", T0 + timedelta(days=3))


async def test_server_owners_follow_addons_through_insert_update_and_delete(store: AnyStore) -> None:
    await seed(store)  # redis-a on db-1:7001 and db-2:7002
    async with store.transaction() as tx:
        assert await tx.server_owners([("db-1", 7001), ("db-2", 7002), ("db-3", 7003)]) == {
            "db-1:7001": "redis-a",
            "db-2:7002": "redis-a",
        }
        a = await tx.get_addon("redis-a")
        assert a is not None
        await tx.update_addon(replace(a, servers=(ServerRef("db-3", 7003, Role.PRIMARY),)))
        await tx.insert_addon(addon("redis-b"))
    async with store.transaction() as tx:
        assert await tx.server_owners([("db-1", 7001), ("db-3", 7003)]) == {
            "db-1:7001": "redis-b",
            "db-3:7003": "redis-a",
        }
        await tx.delete_addon("redis-b")
        assert await tx.server_owners([("db-1", 7001), ("db-2", 7002)]) == {}
        await tx.delete_app("example-app")
        assert await tx.server_owners([("db-3", 7003)]) == {}


async def test_migration_10_indexes_an_existing_fleet(store: AnyStore) -> None:
    """A database written at schema 9 gets each add-on's last maintenance and its servers backfilled.

    Written at 10, then taken back to what 9 had (the code that writes 9 is gone), then migrated again."""
    await seed(store)
    done = T0 + timedelta(days=2)
    async with store.transaction() as tx:
        mini = replace(addon("redis-b", plan="mini"), servers=(ServerRef("db-1", 7003, Role.PRIMARY),))
        await tx.insert_addon(mini)
        await tx.insert_maintenance(maint("a1", status=Status.COMPLETED, completed_at=done))
    db = location(store)
    await store.close()
    undo_migration_11(db)  # and every later one first
    for sql in (
        "DROP TABLE addon_servers",
        "DROP INDEX addons_maintained",
        "ALTER TABLE addons DROP COLUMN maintained_at",
        "DELETE FROM schema_migrations WHERE version >= 10",
    ):
        db_rows(db, sql)
    again = store_for(db)
    await again.open()
    try:
        assert await again.schema_version() == len(sqlite.MIGRATIONS)
        async with again.transaction() as tx:
            found = await tx.routine_candidates(T0 + timedelta(days=2))
            assert [(a.name, at) for a, at in found] == [("redis-a", done), ("redis-b", T0)]
            assert await tx.server_owners([("db-1", 7001), ("db-2", 7002), ("db-1", 7003)]) == {
                "db-1:7001": "redis-a",
                "db-2:7002": "redis-a",
                "db-1:7003": "redis-b",
            }
    finally:
        await again.close()



# reminders (migration 11)


def undo_migration_12(db: Path | str) -> None:
    """Takes a database back to schema 11: no replica tables (and migration 13 undone first)."""
    undo_migration_13(db)
    for sql in ("DROP TABLE leases", "DROP TABLE schedulers", "DELETE FROM schema_migrations WHERE version >= 12"):
        db_rows(db, sql)


def undo_migration_13(db: Path | str) -> None:
    """Takes a database back to schema 12: migration 13 (the filing of fleet-wide requests) undone
    (and migration 14 first)."""
    undo_migration_14(db)
    for sql in (
        "DROP INDEX maintenances_filing",
        "ALTER TABLE maintenances DROP COLUMN filing",
        "DELETE FROM schema_migrations WHERE version >= 13",
    ):
        db_rows(db, sql)


def undo_migration_14(db: Path | str) -> None:
    """Takes a database back to schema 13: no followers' cursors (and migration 15 undone first)."""
    undo_migration_15(db)
    for sql in ("DROP TABLE cursors", "DELETE FROM schema_migrations WHERE version >= 14"):
        db_rows(db, sql)


def undo_migration_15(db: Path | str) -> None:
    """Takes a database back to schema 14: no records of retried writes."""
    for sql in ("DROP TABLE requests", "DELETE FROM schema_migrations WHERE version >= 15"):
        db_rows(db, sql)


async def test_a_retried_write_is_recorded_with_its_answer(store: AnyStore) -> None:
    async with store.transaction() as tx:
        assert await tx.get_request("r1") is None
        await tx.record_request("r1", "/m/CreateAddon", "", T0)
        await tx.record_request("r1", "/m/CreateAddon", "redis-a", T0)  # the write that created it
        await tx.record_request("r1", "/m/CreateAddon", "", T0)  # a later commit keeps the key
        await tx.record_request("r0", "/m/CreateApp", "", T0 - timedelta(days=2))
    async with store.read() as tx:
        got = await tx.get_request("r1")
    assert got is not None and (got.method, got.key, got.response, got.created_at) == (
        "/m/CreateAddon", "redis-a", None, T0,
    )  # fmt: skip
    async with store.transaction() as tx:
        await tx.answer_request("r1", b"\x00answer\xff")
    async with store.read() as tx:
        answered = await tx.get_request("r1")
        assert answered is not None and answered.response == b"\x00answer\xff"
    async with store.transaction() as tx:
        assert await tx.prune_requests(T0 - timedelta(days=1)) == 1
        assert await tx.get_request("r0") is None and await tx.get_request("r1") is not None


async def test_a_retried_writes_mark_commits_with_the_write_and_only_then(store: AnyStore) -> None:
    mark = requests.Mark("r2", "/m/CreateApp", T0)
    token = requests.current.set(mark)
    try:
        with pytest.raises(RuntimeError):
            async with store.transaction() as tx:
                await tx.insert_app(app("rolled-back"))
                raise RuntimeError("the write fails")
        assert not mark.recorded
        async with store.read() as tx:
            assert await tx.get_request("r2") is None
        async with store.transaction() as tx:
            await tx.insert_app(app("made"))
        assert mark.recorded
        mark.open = False  # the handler returned: what runs on under its context records nothing
        async with store.transaction() as tx:
            await tx.insert_app(app("later"))
    finally:
        requests.current.reset(token)
    async with store.read() as tx:
        got = await tx.get_request("r2")
        assert got is not None and got.method == "/m/CreateApp" and got.response is None


async def test_migration_15_adds_requests_to_an_existing_database(store: AnyStore) -> None:
    db = location(store)
    await store.close()
    undo_migration_15(db)
    again = store_for(db)
    await again.open()
    try:
        assert await again.schema_version() == len(sqlite.MIGRATIONS)
        async with again.transaction() as tx:
            assert await tx.get_request("r1") is None
    finally:
        await again.close()


async def test_a_cursor_is_kept_and_never_moves_back(store: AnyStore) -> None:
    async with store.transaction() as tx:
        assert await tx.get_cursor("notices") is None
        await tx.set_cursor("notices", 7)
        await tx.set_cursor("other", 2)
    async with store.read() as tx:
        assert await tx.get_cursor("notices") == 7
    async with store.transaction() as tx:
        await tx.set_cursor("notices", 5)  # a late writer (an old leader) cannot move it back
        assert await tx.get_cursor("notices") == 7
        await tx.set_cursor("notices", 9)
    async with store.read() as tx:
        assert (await tx.get_cursor("notices"), await tx.get_cursor("other")) == (9, 2)


async def test_migration_14_adds_cursors_to_an_existing_database(store: AnyStore) -> None:
    db = location(store)
    await store.close()
    undo_migration_14(db)
    again = store_for(db)
    await again.open()
    try:
        assert await again.schema_version() == len(sqlite.MIGRATIONS)
        async with again.transaction() as tx:
            assert await tx.get_cursor("notices") is None
    finally:
        await again.close()


def undo_migration_11(db: Path | str) -> None:
    """Takes a database back to schema 10 (the code that wrote 10 is gone)."""
    undo_migration_12(db)
    drops = ["DROP TRIGGER reminders_given ON reminders", "DROP TRIGGER maintenances_remind ON maintenances",
             "DROP FUNCTION kvmaint_remind_at", "DROP FUNCTION kvmaint_reminded"]
    if not isinstance(db, str):  # SQLite's triggers are not per table
        drops = ["DROP TRIGGER reminders_given", "DROP TRIGGER maintenances_remind_insert",
                 "DROP TRIGGER maintenances_remind_update"]
    for sql in (*drops, "DROP INDEX maintenances_remind", "ALTER TABLE maintenances DROP COLUMN remind_at",
                "DELETE FROM schema_migrations WHERE version >= 11"):
        db_rows(db, sql)


MS = timedelta(milliseconds=1)


async def test_the_next_reminder_follows_every_write_of_a_pending_maintenance(store: AnyStore) -> None:
    """remind_at = scheduled_for - 24 h (policy.REMIND_BEFORE) while pending and not reminded, kept by
    the database itself, so whichever path writes a maintenance keeps it."""
    await seed(store)
    at = T0 + timedelta(days=3)
    day = timedelta(days=1)
    async with store.transaction() as tx:
        assert await tx.next_reminder() is None
        await tx.insert_maintenance(maint("m-1", scheduled_for=at))
        await tx.insert_maintenance(maint("m-unscheduled"))
        await tx.insert_maintenance(maint("m-done", status=Status.COMPLETED, scheduled_for=T0))
    async with store.read() as tx:
        nxt = await tx.next_reminder()
        assert nxt is not None and at - day - MS < nxt <= at - day  # to the millisecond
        assert await tx.reminders_due(at - day - 2 * MS) == []
        assert [m.id for m in await tx.reminders_due(at - day)] == ["m-1"]
        assert await tx.reminders_due(at - day) == [ReminderDue("m-1", "redis-a")]
    async with store.transaction() as tx:  # moved later: the reminder moves with it
        m = await tx.get_maintenance("m-1")
        assert m is not None
        await tx.update_maintenance(replace(m, scheduled_for=at + timedelta(hours=5)))
    async with store.read() as tx:
        assert await tx.reminders_due(at - day) == []
        assert [m.id for m in await tx.reminders_due(at + timedelta(hours=5) - day)] == ["m-1"]
    async with store.transaction() as tx:  # given: none due any more, for that time
        assert await tx.mark_reminded("m-1", at + timedelta(hours=5))
        assert await tx.next_reminder() is None
        m = await tx.get_maintenance("m-1")
        assert m is not None
        await tx.update_maintenance(replace(m, current_step="x"))  # a write of the same schedule
        assert await tx.next_reminder() is None
        await tx.update_maintenance(replace(m, scheduled_for=at + timedelta(days=7)))  # a new time
        assert [x.id for x in await tx.reminders_due(at + timedelta(days=6))] == ["m-1"]
        await tx.update_maintenance(replace(m, status=Status.RUNNING, scheduled_for=at + timedelta(days=7)))
        assert await tx.next_reminder() is None  # not pending: no reminder
        await tx.insert_maintenance(maint("m-2", "redis-b", scheduled_for=at))
        await tx.insert_maintenance(maint("m-3", "redis-c", scheduled_for=at + timedelta(hours=1)))
        await tx.insert_maintenance(maint("m-4", "redis-d", scheduled_for=at + timedelta(hours=2)))
        await tx.drop_reminders(["m-2", "m-4"])
        assert [x.id for x in await tx.reminders_due(at + timedelta(days=6))] == ["m-3"]
        await tx.drop_reminders(["m-3"])
        assert await tx.next_reminder() is None


async def test_migration_11_sets_the_reminders_of_an_existing_fleet(store: AnyStore) -> None:
    await seed(store)
    at = T0 + timedelta(days=3)
    async with store.transaction() as tx:
        await tx.insert_maintenance(maint("m-1", scheduled_for=at))
        await tx.insert_maintenance(maint("m-2", "redis-b", scheduled_for=at + timedelta(hours=1)))
        await tx.insert_maintenance(maint("m-3", "redis-c", status=Status.RUNNING, scheduled_for=at))
        await tx.mark_reminded("m-2", at + timedelta(hours=1))
    db = location(store)
    await store.close()
    undo_migration_11(db)  # and every later one first
    again = store_for(db)
    await again.open()
    try:
        assert await again.schema_version() == len(sqlite.MIGRATIONS)
        async with again.read() as tx:
            assert [m.id for m in await tx.reminders_due(at)] == ["m-1"]
            nxt = await tx.next_reminder()
            assert nxt is not None and at - timedelta(days=1) - MS < nxt <= at - timedelta(days=1)
    finally:
        await again.close()


# freezes


async def test_freezes_of_an_app_include_the_fleets(store: AnyStore) -> None:
    async with store.transaction() as tx:
        await tx.insert_freeze(Freeze("f-fleet", "", T0, T0 + timedelta(days=2), "holidays", T0))
        await tx.insert_freeze(Freeze("f-app", "example-app", T0 - timedelta(days=1), T0 + timedelta(days=1),
                                      "launch", T0))
        await tx.insert_freeze(Freeze("f-other", "other-app", T0, T0 + timedelta(days=3), "x", T0))
        await tx.insert_freeze(Freeze("f-past", "example-app", T0 - timedelta(days=9), T0, "over", T0))
    async with store.transaction() as tx:
        assert [f.id for f in await tx.list_freezes("example-app", T0)] == ["f-app", "f-fleet"]
        assert [f.id for f in await tx.list_freezes(None, T0)] == ["f-app", "f-fleet", "f-other"]
        got = (await tx.list_freezes("example-app", T0 + timedelta(days=1)))
        assert got == [Freeze("f-fleet", "", T0, T0 + timedelta(days=2), "holidays", T0)]
        assert await tx.delete_freeze("f-app") is True
        assert await tx.delete_freeze("f-app") is False


# agents


async def test_agents_upsert_newest_wins(store: AnyStore) -> None:
    async with store.transaction() as tx:
        await tx.upsert_agent("db-1", "10.0.0.1", "0.1.0", T0)
        await tx.upsert_agent("db-2", "10.0.0.2", "0.1.0", T0)
        await tx.upsert_agent("db-1", "10.0.0.9", "0.1.1", T0 + timedelta(seconds=1))
    async with store.transaction() as tx:
        assert await tx.list_agents() == {"db-1": "10.0.0.9", "db-2": "10.0.0.2"}


# leases and replicas (scheduler leadership, server/replica/)


async def test_a_lease_is_held_by_one_holder_renewed_at_its_term_and_taken_after_release(store: AnyStore) -> None:
    long = timedelta(seconds=30)
    async with store.transaction() as tx:
        assert await tx.get_leader() is None
        assert await tx.acquire_lease("scheduler", "a", "h:1", "h:2", long) == 1
        assert await tx.acquire_lease("scheduler", "a", "h:1", "h:2", long) == 1  # a renewal keeps the term
        assert await tx.acquire_lease("scheduler", "b", "k:1", "k:2", long) is None
        leader = await tx.get_leader()
        assert leader is not None
        assert (leader.holder, leader.term, leader.address, leader.agent_address) == ("a", 1, "h:1", "h:2")
        await tx.release_lease("scheduler", "b", 1)  # not b's: no effect
        assert (await tx.get_leader()) == leader
        await tx.release_lease("scheduler", "a", 1)
        assert await tx.get_leader() is None
        assert await tx.acquire_lease("scheduler", "b", "k:1", "k:2", long) == 2
        await tx.release_lease("scheduler", "a", 1)  # a stale release does not end b's term
        got = await tx.get_leader()
        assert got is not None and (got.holder, got.term) == ("b", 2)


async def test_an_expired_lease_is_taken_at_a_higher_term_even_by_its_old_holder(store: AnyStore) -> None:
    async with store.transaction() as tx:
        assert await tx.acquire_lease("scheduler", "a", "h:1", "h:2", timedelta(0)) == 1
        assert await tx.get_leader() is None  # expired at once
        assert await tx.acquire_lease("scheduler", "a", "h:1", "h:2", timedelta(0)) == 2
        assert await tx.acquire_lease("scheduler", "b", "k:1", "k:2", timedelta(seconds=30)) == 3
        assert await tx.take_lease("scheduler", "c", "m:1", "m:2", timedelta(seconds=30)) == 4
        got = await tx.get_leader()
        assert got is not None and (got.holder, got.term, got.address) == ("c", 4, "m:1")
        # another lease name is another term line
        assert await tx.acquire_lease("other", "a", "h:1", "h:2", timedelta(seconds=30)) == 1


async def test_postgres_replicas_racing_for_a_lease_give_it_to_exactly_one(tmp_path: Path) -> None:
    """Several processes ask at once: one term, one holder; the database serialises them."""
    with backend_db("postgres", tmp_path) as url:
        stores = [postgres.PostgresStore(str(url)) for _ in range(4)]
        await asyncio.gather(*(s.open() for s in stores))
        try:

            async def ask(i: int) -> int | None:
                async with stores[i].transaction() as tx:
                    return await tx.acquire_lease("scheduler", f"r{i}", f"h{i}:1", f"h{i}:2", timedelta(seconds=30))

            got = await asyncio.gather(*(ask(i) for i in range(4)))
            assert [t for t in got if t is not None] == [1]
            rows = db_rows(url, "SELECT holder, term FROM leases")
            assert rows == [{"holder": f"r{got.index(1)}", "term": 1}]
        finally:
            for s in stores:
                await s.close()


async def test_schedulers_heartbeat_rows_keep_their_start_and_refresh_seen(store: AnyStore) -> None:
    async with store.transaction() as tx:
        await tx.upsert_scheduler("r2", "h2:1", "h2:2", "0.1.0")
        await tx.upsert_scheduler("r1", "h1:1", "h1:2", "0.1.0")
    async with store.transaction() as tx:
        first = await tx.list_schedulers()
        await tx.upsert_scheduler("r1", "h1:9", "h1:8", "0.2.0")
    async with store.transaction() as tx:
        again = await tx.list_schedulers()
        assert [s.id for s in again] == ["r1", "r2"]
        r1 = again[0]
        assert (r1.address, r1.agent_address, r1.version) == ("h1:9", "h1:8", "0.2.0")
        assert r1.started_at == first[0].started_at and r1.seen_at >= first[0].seen_at
        await tx.delete_scheduler("r2")
        assert [s.id for s in await tx.list_schedulers()] == ["r1"]


# events


def event(message: str, app_name: str = "example-app", addon_name: str = "redis-a") -> Event:
    return Event(0, EventType.MAINTENANCE_REQUIRED, T0, app_name, addon_name, "m-1", message, {"k": "v", "a": "ü"})


async def test_event_sequence_is_gapless_across_rollbacks_and_filters_by_app_and_addon(store: AnyStore) -> None:
    assert await store.last_sequence() == 0
    async with store.transaction() as tx:
        assert await tx.append_event(event("one")) == 1
        assert await tx.append_event(event("two", addon_name="redis-b")) == 2
    with pytest.raises(ValueError):
        async with store.transaction() as tx:
            await tx.append_event(event("rolled back"))
            raise ValueError
    async with store.transaction() as tx:
        assert await tx.append_event(event("three", app_name="other-app")) == 3
    assert await store.last_sequence() == 3
    async with store.transaction() as tx:
        everything = await tx.events_after(0, "", "", 100)
        assert [(e.sequence, e.message) for e in everything] == [(1, "one"), (2, "two"), (3, "three")]
        assert everything[0] == Event(1, EventType.MAINTENANCE_REQUIRED, T0, "example-app", "redis-a", "m-1",
                                      "one", {"k": "v", "a": "ü"})
        assert [e.sequence for e in await tx.events_after(1, "", "", 100)] == [2, 3]
        assert [e.sequence for e in await tx.events_after(0, "", "", 1)] == [1]
        assert [e.sequence for e in await tx.events_after(0, "example-app", "", 100)] == [1, 2]
        assert [e.sequence for e in await tx.events_after(0, "example-app", "redis-b", 100)] == [2]


async def test_append_events_writes_them_in_order_after_single_appends(store: AnyStore) -> None:
    async with store.transaction() as tx:
        assert await tx.append_events([]) == []
        assert await tx.append_event(event("one")) == 1
        assert await tx.append_events([event("two"), event("three", addon_name="redis-b")]) == [2, 3]
    with pytest.raises(ValueError):
        async with store.transaction() as tx:
            await tx.append_events([event("rolled back"), event("rolled back too")])
            raise ValueError
    async with store.transaction() as tx:
        assert await tx.append_events([event("four", app_name="other-app")]) == [4]
        assert await tx.append_event(event("five")) == 5
    assert await store.last_sequence() == 5
    async with store.transaction() as tx:
        got = await tx.events_after(0, "", "", 100)
    assert [(e.sequence, e.message, e.app, e.addon) for e in got] == [
        (1, "one", "example-app", "redis-a"),
        (2, "two", "example-app", "redis-a"),
        (3, "three", "example-app", "redis-b"),
        (4, "four", "other-app", "redis-a"),
        (5, "five", "example-app", "redis-a"),
    ]
    assert got[2] == Event(3, EventType.MAINTENANCE_REQUIRED, T0, "example-app", "redis-b", "m-1", "three",
                           {"k": "v", "a": "ü"})


async def test_concurrent_writers_get_distinct_sequences_committed_in_order(store: AnyStore) -> None:
    async def write(i: int) -> int:
        async with store.transaction() as tx:
            return await tx.append_event(event(f"e{i}"))

    seqs = await asyncio.gather(*(write(i) for i in range(30)))
    assert sorted(seqs) == list(range(1, 31))
    async with store.transaction() as tx:
        assert [e.sequence for e in await tx.events_after(0, "", "", 100)] == list(range(1, 31))


# notifications


async def test_webhooks_round_trip_in_creation_order(store: AnyStore) -> None:
    await seed(store)
    async with store.transaction() as tx:
        await tx.insert_webhook(Webhook("h-2", "example-app", "https://b.example/", "s2", T0 + timedelta(seconds=1)))
        await tx.insert_webhook(Webhook("h-1", "example-app", "https://a.example/", "s1", T0))
    async with store.transaction() as tx:
        assert [h.id for h in await tx.list_webhooks("example-app")] == ["h-1", "h-2"]
        assert await tx.get_webhook("h-1") == Webhook("h-1", "example-app", "https://a.example/", "s1", T0)
        await tx.delete_webhook("h-1")
    async with store.transaction() as tx:
        assert await tx.get_webhook("h-1") is None


async def test_enqueue_is_idempotent_by_dedupe_key(store: AnyStore) -> None:
    async with store.transaction() as tx:
        assert await tx.enqueue(item("k1")) is True
        assert await tx.enqueue(item("k1", subject="a different subject")) is False
    with pytest.raises(ValueError):
        async with store.transaction() as tx:
            assert await tx.enqueue(item("k2")) is True
            raise ValueError
    async with store.transaction() as tx:
        assert await tx.enqueue(item("k2")) is True  # the rolled-back enqueue left nothing behind
        rows = await tx.list_outbox(0, 10)
    assert [(r.dedupe_key, r.subject) for r in rows] == [("k1", "subject k1"), ("k2", "subject k2")]
    first = rows[0]
    assert first.id > 0 and first.attempts == 0 and first.sent_at is None and first.dropped_at is None
    assert first == replace(item("k1"), id=first.id)


async def test_enqueue_all_is_enqueue_for_each_in_order(store: AnyStore) -> None:
    async with store.transaction() as tx:
        assert await tx.enqueue_all([]) == 0
        assert await tx.enqueue(item("k1")) is True
        # k1 is there already, and k3 is named twice: each key is written once, in the order given.
        assert await tx.enqueue_all([item("k3"), item("k1", subject="again"), item("k2"), item("k3")]) == 2
    with pytest.raises(ValueError):
        async with store.transaction() as tx:
            assert await tx.enqueue_all([item("k4")]) == 1
            raise ValueError
    async with store.transaction() as tx:
        rows = await tx.list_outbox(0, 10)
    assert [(r.dedupe_key, r.subject) for r in rows] == [("k1", "subject k1"), ("k3", "subject k3"), ("k2", "subject k2")]
    assert rows[0].id < rows[1].id < rows[2].id
    assert rows[1] == replace(item("k3"), id=rows[1].id)


async def test_due_outbox_keeps_each_destination_in_order(store: AnyStore) -> None:
    async with store.transaction() as tx:
        await tx.enqueue(item("a1", "a@example.com"))
        await tx.enqueue(item("b1", "b@example.com"))
        await tx.enqueue(item("a2", "a@example.com"))
        await tx.enqueue(item("later", "c@example.com", at=T0 + timedelta(hours=1)))
        await tx.enqueue(item("hook", "https://h.example/", kind=Channel.WEBHOOK, webhook_id="h-1"))
        rows = {r.dedupe_key: r for r in await tx.list_outbox(0, 10)}
        assert [r.dedupe_key for r in await tx.due_outbox(T0, 10)] == ["a1", "b1", "a2", "hook"]
        assert [r.dedupe_key for r in await tx.due_outbox(T0, 2)] == ["a1", "b1"]
        # a1 fails and waits: a2 waits behind it; b1 goes on
        await tx.mark_retry(rows["a1"].id, "connection refused", T0 + timedelta(minutes=5))
        assert [r.dedupe_key for r in await tx.due_outbox(T0, 10)] == ["b1", "hook"]
        await tx.mark_sent(rows["b1"].id, T0)
        await tx.mark_dropped(rows["hook"].id, "410 gone", T0)
        assert [r.dedupe_key for r in await tx.due_outbox(T0 + timedelta(minutes=5), 10)] == ["a1", "a2"]
    async with store.transaction() as tx:
        after = {r.dedupe_key: r for r in await tx.list_outbox(0, 10)}
    assert (after["a1"].attempts, after["a1"].last_error) == (1, "connection refused")
    assert after["a1"].next_attempt_at == T0 + timedelta(minutes=5)
    assert (after["b1"].attempts, after["b1"].sent_at, after["b1"].last_error) == (1, T0, "")
    assert (after["hook"].attempts, after["hook"].dropped_at, after["hook"].last_error) == (1, T0, "410 gone")
    assert [r.dedupe_key for r in await _page(store, after["a2"].id)] == ["later", "hook"]


async def _page(store: AnyStore, after_id: int) -> list[OutboxItem]:
    async with store.transaction() as tx:
        return await tx.list_outbox(after_id, 10)


async def test_backlog_counts_and_pruning(store: AnyStore) -> None:
    async with store.transaction() as tx:
        for key in ("s", "d", "open", "old-open"):
            await tx.enqueue(item(key, f"{key}@example.com"))
        await tx.enqueue(item("w", "https://h.example/", kind=Channel.WEBHOOK, webhook_id="h"))
        ids = {r.dedupe_key: r.id for r in await tx.list_outbox(0, 10)}
        await tx.mark_sent(ids["s"], T0)
        await tx.mark_dropped(ids["d"], "bounced", T0 + timedelta(days=2))
        assert await tx.outbox_backlog() == {"email": 2, "webhook": 1}
        assert await tx.prune_outbox(T0 + timedelta(days=1)) == 1  # sent before; dropped after; open kept
        assert [r.dedupe_key for r in await tx.list_outbox(0, 10)] == ["d", "open", "old-open", "w"]


async def test_reminders_are_given_once_per_maintenance_and_time(store: AnyStore) -> None:
    async with store.transaction() as tx:
        assert await tx.mark_reminded("m-1", T0) is True
        assert await tx.mark_reminded("m-1", T0) is False
        assert await tx.mark_reminded("m-1", T0 + timedelta(days=7)) is True  # rescheduled: a new reminder
        assert await tx.mark_reminded("m-2", T0) is True


async def test_reminders_given_together_return_only_those_given_now(store: AnyStore) -> None:
    async with store.transaction() as tx:
        assert await tx.mark_reminded_all([]) == set()
        assert await tx.mark_reminded("m-1", T0) is True
        given = [("m-1", T0), ("m-1", T0 + timedelta(days=7)), ("m-2", T0), ("m-3", T0)]
        assert await tx.mark_reminded_all(given) == {"m-1", "m-2", "m-3"}  # m-1 for its new time only
        assert await tx.mark_reminded_all(given) == set()
        assert await tx.mark_reminded_all([("m-1", T0), ("m-4", T0)]) == {"m-4"}  # m-1's was given
        assert await tx.mark_reminded("m-3", T0) is False  # one record, whichever call gave it


async def test_naive_times_are_taken_as_utc(store: AnyStore) -> None:
    async with store.transaction() as tx:
        await tx.insert_app(App("naive", "o@example.com", False, T0.replace(tzinfo=None)))
    async with store.transaction() as tx:
        got = await tx.get_app("naive")
    assert got is not None and got.created_at == T0


# campaigns


async def test_campaigns_round_trip_with_members_their_maintenances_and_what_the_planner_skips(
    store: AnyStore,
) -> None:
    from server.domain.campaigns import Campaign, CampaignStatus, Candidate, Member, Spec

    await seed(store)
    spec = Spec("valkey-8.1", "redis_upgrade", T0 + timedelta(days=30), 1, (25, 100), timedelta(seconds=90), 2, 500)
    c = Campaign("c-1", spec, "all", "8.1.8", True, CampaignStatus.RUNNING, 0, 2, T0, has_canary=True)
    members = [
        Member("redis-a", "example-app", 0, T0, Window(4, 18 * 60), True),
        Member("redis-b", "example-app", 1, T0 + timedelta(hours=5), None, False),
    ]
    async with store.transaction() as tx:
        await tx.insert_addon(replace(addon("redis-b"), window=None))
        await tx.insert_campaign(c, members)
        await tx.insert_maintenance(maint("m-a", "redis-a", scheduled_for=T0 - timedelta(hours=1), attempts=1,
                                          write_pause_ms=7))
        await tx.set_campaign_member("c-1", "redis-a", "m-a", "")
        await tx.set_campaign_member("c-1", "redis-b", "", "skipped: it already had maintenance x (pending)")
    async with store.transaction() as tx:
        assert await tx.get_campaign("c-1") == c and await tx.get_campaign("nope") is None
        assert await tx.list_campaigns() == [c] and await tx.list_campaigns(CampaignStatus.HALTED) == []
        [a, b] = await tx.campaign_members("c-1")
        assert (a.member.maintenance_id, a.status, a.attempts, a.write_pause_ms) == ("m-a", "pending", 1, 7)
        assert a.scheduled_for == T0 - timedelta(hours=1) and a.member.window == Window(4, 18 * 60)
        assert (b.status, b.member.note, b.member.planned_at, b.member.meets_deadline) == (
            None, "skipped: it already had maintenance x (pending)", T0 + timedelta(hours=5), False
        )
        assert [s.member.addon for s in await tx.campaign_members("c-1", 1)] == ["redis-b"]
        assert [m.id for m in await tx.due_maintenances(T0)] == ["m-a"]
        assert await tx.campaign_candidates(None, None) == [
            (Candidate("redis-a", "example-app", Window(4, 18 * 60)), ()),
            (Candidate("redis-b", "example-app", None), ()),
        ]
        assert await tx.campaign_candidates("premium-0", None, with_servers=True) == [
            (Candidate("redis-a", "example-app", Window(4, 18 * 60)), ("db-1:7001", "db-2:7002")),
            (Candidate("redis-b", "example-app", None), ("db-1:7001", "db-2:7002")),
        ]
        assert [x.addon for x, _ in await tx.campaign_candidates(None, ["other-app"])] == []
        halted = replace(c, status=CampaignStatus.HALTED, halt_reason="why", failure_baseline=1, resumed_at=T0)
        await tx.update_campaign(halted)
    async with store.transaction() as tx:
        assert await tx.get_campaign("c-1") == halted
        # A halted campaign's pending maintenances are not offered to the planner.
        assert await tx.due_maintenances(T0) == []
        assert [(k.status, m.addon) for k, m in await tx.campaign_memberships(["redis-a", "redis-z"])] == [
            (CampaignStatus.HALTED, "redis-a")
        ]
        await tx.update_campaign(replace(halted, status=CampaignStatus.COMPLETED, ended_at=T0))
    async with store.transaction() as tx:
        assert await tx.campaign_memberships(["redis-a"]) == []

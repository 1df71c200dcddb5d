"""The storage contract of fleet-wide work (storage/*/bulk.py), on SQLite and PostgreSQL alike: bulk writes
leave exactly the rows of their one-at-a-time counterparts, and the paged reads return what they say."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from server.domain.models import Addon, App, HistoryEntry, Maintenance, Role, ServerRef, Status
from server.storage.select import AnyStore, store_for
from tests.storage.test_contract import T0, addon, app, maint
from tests.support.stores import backend_db, db_rows, location

T = TypeVar("T")

TABLES = {
    "apps": "SELECT * FROM apps ORDER BY name",
    "addons": "SELECT * FROM addons ORDER BY name",
    "addon_servers": "SELECT host, port, addon FROM addon_servers ORDER BY addon, host, port",
    "maintenances": "SELECT * FROM maintenances ORDER BY id",
    "history": "SELECT maintenance_id, time, status, step, message FROM maintenance_history ORDER BY id",
}


async def on_another_store(store: AnyStore, tmp_path: Path, fn: Callable[[AnyStore], Awaitable[T]]) -> T:
    """`fn` on a fresh, open store of the same backend as `store` (for bulk against one-at-a-time)."""
    kind = "sqlite" if isinstance(location(store), Path) else "postgres"
    (tmp_path / "bulk").mkdir()
    with backend_db(kind, tmp_path / "bulk") as db:
        other = store_for(db)
        await other.open()
        try:
            return await fn(other)
        finally:
            await other.close()


def fleet() -> tuple[list[App], list[Addon], list[Maintenance]]:
    apps = [app("app-1"), app("app-2")]
    addons = [
        replace(
            addon(f"redis-{i}", f"app-{1 + i % 2}", "premium-0" if i % 3 else "mini"),
            servers=(
                ServerRef(f"db-{i}", 7000 + i, Role.PRIMARY),
                ServerRef(f"db-{i + 1}", 7000 + i, Role.STANDBY),
            ),
        )
        for i in range(6)
    ]
    h = (
        HistoryEntry(T0, Status.PENDING, "", "Required"),
        HistoryEntry(T0 + timedelta(hours=1), Status.COMPLETED, "", "Completed"),
    )
    maints = [
        maint(
            f"m-{i}",
            f"redis-{i}",
            Status.COMPLETED if i % 2 else Status.PENDING,
            app=f"app-{1 + i % 2}",
            completed_at=T0 + timedelta(days=i) if i % 2 else None,
            history=h,
        )
        for i in range(5)
    ]
    return apps, addons, maints


async def test_bulk_inserts_leave_the_rows_of_one_at_a_time_inserts(store: AnyStore, tmp_path: Path) -> None:
    apps, addons, maints = fleet()
    async with store.transaction() as tx:
        for a in apps:
            await tx.insert_app(a)
        for x in addons:
            await tx.insert_addon(x)
        for m in maints:
            await tx.insert_maintenance(m)
    one_by_one = {k: db_rows(location(store), sql) for k, sql in TABLES.items()}

    async def bulk_inserts(other: AnyStore) -> dict[str, list[dict[str, object]]]:
        async with other.transaction() as tx:
            await tx.insert_apps(apps)
            await tx.insert_addons(addons[:3])
            await tx.insert_addons(addons[3:])
            await tx.insert_maintenances(maints)
        return {k: db_rows(location(other), sql) for k, sql in TABLES.items()}

    bulk = await on_another_store(store, tmp_path, bulk_inserts)
    for k in TABLES:
        assert bulk[k] == one_by_one[k], k
    # maintained_at as insert_addon/insert_maintenance leave it: the latest completed, else the creation.
    by_name = {r["name"]: r["maintained_at"] for r in bulk["addons"]}
    assert by_name["redis-1"] != by_name["redis-0"] == by_name["redis-5"]


async def test_addons_page_named_active_and_filed(store: AnyStore) -> None:
    apps, addons, _ = fleet()
    async with store.transaction() as tx:
        await tx.insert_apps(apps)
        await tx.insert_addons(addons)
        await tx.insert_maintenances([maint("p-1", "redis-1", app="app-2")], filing="f-1")
        await tx.insert_maintenances(
            [maint("p-0", "redis-0", app="app-1"), maint("c-2", "redis-2", Status.COMPLETED, app="app-1")],
            filing="f-2",
        )
        await tx.insert_maintenances([maint("r-4", "redis-4", Status.RUNNING, app="app-1")])
    async with store.transaction() as tx:
        assert [a.name for a in await tx.addons_page(None, "", 4)] == [
            "redis-0",
            "redis-1",
            "redis-2",
            "redis-3",
        ]
        assert [a.name for a in await tx.addons_page(None, "redis-3", 4)] == ["redis-4", "redis-5"]
        assert [a.name for a in await tx.addons_page("mini", "", 10)] == ["redis-0", "redis-3"]
        assert [a.name for a in await tx.addons_page("mini", "redis-0", 10)] == ["redis-3"]
        assert await tx.addons_page("shield-1", "", 10) == []
        assert (
            await tx.count_addons(None),
            await tx.count_addons("mini"),
            await tx.count_addons("shield-1"),
        ) == (6, 2, 0)
        named = await tx.addons_named(["redis-5", "nope", "redis-1"])
        assert sorted(a.name for a in named) == ["redis-1", "redis-5"]
        assert named[0] == await tx.get_addon(named[0].name)
        assert await tx.active_addons(["redis-0", "redis-1", "redis-2", "redis-4", "nope"]) == {
            "redis-0",
            "redis-1",
            "redis-4",
        }
        assert await tx.active_addons([]) == set()
        # The hosts of each existing add-on, distinct and sorted, as its servers name them.
        names = ["redis-5", "nope", "redis-1", "redis-2"]
        assert await tx.hosts_of(names) == {
            a.name: tuple(sorted({s.host for s in a.servers})) for a in await tx.addons_named(names)
        }
        assert (await tx.hosts_of(["redis-1"]))["redis-1"] == ("db-1", "db-2")
        assert await tx.hosts_of([]) == {}
        assert [m.id for m in await tx.filed_maintenances("f-2", "", "", 10)] == ["c-2", "p-0"]
        assert [m.id for m in await tx.filed_maintenances("f-2", "", "c-2", 10)] == ["p-0"]
        assert [m.id for m in await tx.filed_maintenances("f-2", "app-2", "", 10)] == []
        assert [m.id for m in await tx.filed_maintenances("f-1", "app-2", "", 10)] == ["p-1"]
        [p0] = await tx.filed_maintenances("f-2", "", "c-2", 1)
        assert p0 == await tx.get_maintenance("p-0")
        assert await tx.filed_maintenances("", "", "", 10) == []  # unmarked ones are no filing's


async def test_addons_on_hosts_and_latest_of(store: AnyStore) -> None:
    apps, addons, _ = fleet()  # redis-i on db-i (primary) and db-(i+1) (standby)
    async with store.transaction() as tx:
        await tx.insert_apps(apps)
        await tx.insert_addons(addons)
        await tx.insert_maintenances(
            [
                maint("a", "redis-1", Status.COMPLETED, app="app-2"),
                maint("b", "redis-1", Status.FAILED, app="app-2", created_at=T0 + timedelta(hours=1)),
                maint("c", "redis-2", app="app-1"),
                maint("d", "redis-2", app="app-1"),  # same created_at: the greater id is the latest
            ]
        )
    async with store.transaction() as tx:
        assert [a.name for a in await tx.addons_on_hosts(["db-2"])] == ["redis-1", "redis-2"]
        assert [a.name for a in await tx.addons_on_hosts(["db-0", "db-6", "db-9"])] == ["redis-0", "redis-5"]
        assert await tx.addons_on_hosts([]) == []
        latest = await tx.latest_of(["redis-1", "redis-2", "redis-3"])
        assert {k: m.id for k, m in latest.items()} == {"redis-1": "b", "redis-2": "d"}


async def test_upsert_agents_writes_what_upsert_agent_writes(store: AnyStore) -> None:
    async with store.transaction() as tx:
        await tx.upsert_agent("db-1", "10.0.0.1", "0.1", T0)
        await tx.upsert_agents(
            [("db-1", "10.0.0.9", "0.2", T0 + timedelta(seconds=5)), ("db-2", "10.0.0.2", "0.2", T0)]
        )
        await tx.upsert_agents([])
    async with store.transaction() as tx:
        assert await tx.list_agents() == {"db-1": "10.0.0.9", "db-2": "10.0.0.2"}
    rows = db_rows(location(store), "SELECT host_id, agent_version FROM agents ORDER BY host_id")
    assert [(r["host_id"], r["agent_version"]) for r in rows] == [("db-1", "0.2"), ("db-2", "0.2")]


async def test_bulk_updates_leave_the_rows_of_one_at_a_time_updates(store: AnyStore, tmp_path: Path) -> None:
    apps, addons, maints = fleet()
    later = T0 + timedelta(days=40)
    changed = [
        replace(m, status=Status.COMPLETED, completed_at=later) if i == 0 else replace(m, scheduled_for=later)
        for i, m in enumerate(maints)
    ]
    entries = [(m.id, HistoryEntry(later, m.status, "", f"Queued: {m.id}")) for m in changed]

    async def written(s: AnyStore, bulk: bool) -> dict[str, list[dict[str, object]]]:
        async with s.transaction() as tx:
            await tx.insert_apps(apps)
            await tx.insert_addons(addons)
            await tx.insert_maintenances(maints)
        async with s.transaction() as tx:
            if bulk:
                await tx.update_maintenances(changed)
                await tx.add_histories(entries)
            else:
                for m in changed:
                    await tx.update_maintenance(m)
                for mid, h in entries:
                    await tx.add_history(mid, h)
        return {k: db_rows(location(s), sql) for k, sql in TABLES.items()}

    one_by_one = await written(store, bulk=False)
    bulk = await on_another_store(store, tmp_path, lambda other: written(other, bulk=True))
    for k in TABLES:
        assert bulk[k] == one_by_one[k], k
    # The completed one moved its add-on's maintained_at; the history gained one entry per maintenance.
    by_name = {r["name"]: r["maintained_at"] for r in bulk["addons"]}
    assert by_name["redis-0"] != by_name["redis-2"]
    assert len(bulk["history"]) == 2 * len(maints) + len(maints)

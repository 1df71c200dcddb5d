"""The control plane over real gRPC against the scheduler as a separate process on a real SQLite file;
the tests marked `on_both_stores` also on a real PostgreSQL database."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from kvmaint.v1 import events_pb2 as epb
from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb
from server.domain.models import Maintenance, Method, Reason, Status
from server.storage.select import store_for
from tests.conftest import APP_TOKENS, OPERATOR_TOKEN
from tests.support.rpc import Api, api, error_of, field_violations, registered_addon
from tests.support.stores import on_both_stores

APP = "example-app"


def require(a: Api, addon: str, days: int = 30, reason: int = rpb.MAINTENANCE_REASON_SECURITY_PATCH) -> None:
    when = Timestamp()
    when.FromDatetime(datetime.now(UTC) + timedelta(days=days))
    a.RequireMaintenance(
        fpb.RequireMaintenanceRequest(addons=fpb.AddonNames(names=[addon]), reason=reason, required_by=when)
    )


def all_events(a: Api, since: int = 0, **kw: str) -> list[rpb.Event]:
    return [r.event for r in a.StreamEvents(epb.StreamEventsRequest(since_sequence=since, **kw))]


@on_both_stores
def test_seed_flow_info_window_run_schedule_history(scheduler) -> None:
    with api(scheduler.address) as a:
        addon = registered_addon(a)
        assert addon.name.startswith("redis-") and addon.window.day in (
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
        )
        assert a.GetConfigVars(fpb.GetConfigVarsRequest(app=APP)).config_vars == {
            "REDIS_URL": "redis://db-1:7001"
        }

        info = a.GetAddonInfo(mpb.GetAddonInfoRequest(app=APP, addon="REDIS_URL"))
        assert info.maintenance == "not required" and info.addon.name == addon.name
        assert (
            a.GetMaintenanceInfo(mpb.GetMaintenanceInfoRequest(app=APP, addon=addon.name)).info.status
            == "none"
        )

        require(a, addon.name, days=30)
        info = a.GetAddonInfo(mpb.GetAddonInfoRequest(app=APP, addon="REDIS_URL"))
        assert info.maintenance.startswith("required by ") and info.maintenance.endswith(" +0000")
        m = a.GetMaintenanceInfo(mpb.GetMaintenanceInfoRequest(app=APP, addon="REDIS_URL")).info
        assert (m.status, m.method, m.reason, m.addon_plan, m.app_name) == (
            "pending",
            "failover",
            "security_patch",
            "premium-0",
            APP,
        )
        assert m.required_by.seconds > 0 and m.scheduled_for.seconds > 0
        assert m.window == addon.window.description == m.addon_window

        state = a.UpdateWindow(
            mpb.UpdateWindowRequest(app=APP, addon="REDIS_URL", day="Sunday", time="14:30")
        ).state
        assert state.window.description == "Sundays 14:30 to 18:30 UTC"
        assert state.previous_window.description == addon.window.description
        assert state.scheduled_for.ToDatetime().weekday() == 6
        assert state.previously_scheduled_for.seconds == m.scheduled_for.seconds
        again = a.GetWindow(mpb.GetWindowRequest(app=APP, addon=addon.name)).state
        assert again == state

        before = a.GetWindow(mpb.GetWindowRequest(app=APP, addon=addon.name)).state.scheduled_for.ToDatetime()
        sched = a.ScheduleMaintenance(mpb.ScheduleMaintenanceRequest(app=APP, addon=addon.name, weeks=1))
        assert sched.maintenance.scheduled_for.ToDatetime() - before == timedelta(weeks=1)
        assert sched.maintenance.previously_scheduled_for.ToDatetime() == before
        assert "Sundays 14:30" in sched.explanation
        err = error_of(
            lambda: a.ScheduleMaintenance(mpb.ScheduleMaintenanceRequest(app=APP, addon=addon.name, weeks=8))
        )
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "required by" in err.details()

        err = error_of(lambda: a.RunMaintenance(mpb.RunMaintenanceRequest(app=APP, addon="REDIS_URL")))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert err.details() == (
            "Application is not in maintenance mode. To proceed, put the application into maintenance mode "
            "or re-run the command with --confirm example-app"
        )
        err = error_of(
            lambda: a.RunMaintenance(mpb.RunMaintenanceRequest(app=APP, addon="REDIS_URL", confirm="other"))
        )
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert (
            a.GetMaintenanceInfo(mpb.GetMaintenanceInfoRequest(app=APP, addon=addon.name)).info.status
            == "pending"
        )

        run = a.RunMaintenance(mpb.RunMaintenanceRequest(app=APP, addon="REDIS_URL", confirm=APP)).maintenance
        assert run.status != rpb.MAINTENANCE_STATUS_PENDING and run.started_at.seconds > 0
        kinds = [e.type for e in all_events(a, addon=addon.name)]
        assert rpb.EVENT_TYPE_MAINTENANCE_STARTED in kinds
        err = error_of(
            lambda: a.RunMaintenance(mpb.RunMaintenanceRequest(app=APP, addon="REDIS_URL", confirm=APP))
        )
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "already" in err.details()


def test_run_accepted_in_maintenance_mode_and_nothing_pending_says_so(scheduler) -> None:
    with api(scheduler.address) as a:
        addon = registered_addon(a)
        a.SetMaintenanceMode(fpb.SetMaintenanceModeRequest(app=APP, enabled=True))
        err = error_of(lambda: a.RunMaintenance(mpb.RunMaintenanceRequest(app=APP, addon=addon.name)))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "No maintenance is required" in err.details()
        require(a, addon.name)
        run = a.RunMaintenance(mpb.RunMaintenanceRequest(app=APP, addon=addon.name)).maintenance
        assert run.status != rpb.MAINTENANCE_STATUS_PENDING


async def _seed_ended(db: Path | str, addon: str, count: int) -> list[str]:
    """Ended maintenances of `addon` written straight into the state database, oldest first."""
    store = store_for(db)
    await store.open()
    now = datetime.now(UTC)
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(count)]
    async with store.transaction() as tx:
        for i, mid in enumerate(ids):
            at = now - timedelta(minutes=count - i)
            await tx.insert_maintenance(Maintenance(
                id=mid, addon=addon, app=APP, reason=Reason.SECURITY_PATCH, method=Method.FAILOVER,
                status=Status.COMPLETED, required_by=now + timedelta(days=30), created_at=at,
                scheduled_for=at, started_at=at, completed_at=at + timedelta(seconds=1)))
    await store.close()
    return ids


@on_both_stores
def test_history_is_newest_first_with_limit(scheduler_factory) -> None:
    # No agent serves db-1/db-2 here: the run fails fast at its first command and is pending again.
    s = scheduler_factory(extra_args=["--catch-up-timeout", "0.5", "--command-timeout", "0.5"])
    with api(s.address) as a:
        addon = registered_addon(a)
        a.SetMaintenanceMode(fpb.SetMaintenanceModeRequest(app=APP, enabled=True))
    s.stop()
    ids = asyncio.run(_seed_ended(s.db, addon.name, 6))  # the add-on's earlier, completed maintenances
    s.start()
    with api(s.address) as a:
        require(a, addon.name)
        ids.append(a.GetMaintenanceInfo(mpb.GetMaintenanceInfoRequest(app=APP, addon=addon.name)).info.id)
        a.RunMaintenance(mpb.RunMaintenanceRequest(app=APP, addon=addon.name))
        info = wait_for_status(a, addon.name, "pending", attempts=1)
        assert "db-2" in info.last_failure_reason and "not connected" in info.last_failure_reason
        hist = a.ListMaintenanceHistory(
            mpb.ListMaintenanceHistoryRequest(app=APP, addon=addon.name)
        ).maintenances
        assert [h.id for h in hist] == ids[::-1][:5]
        hist = a.ListMaintenanceHistory(mpb.ListMaintenanceHistoryRequest(app=APP, addon=addon.name, limit=2))
        assert [h.id for h in hist.maintenances] == ids[::-1][:2]
        for bad in (21, -1):
            err = error_of(
                lambda bad=bad: a.ListMaintenanceHistory(
                    mpb.ListMaintenanceHistoryRequest(app=APP, addon=addon.name, limit=bad)
                )
            )
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violations(err) == ["limit"]
        listed = a.ListMaintenances(mpb.ListMaintenancesRequest(app=APP, page_size=3))
        assert [m.id for m in listed.maintenances] == ids[::-1][:3] and listed.next_page_token
        rest = a.ListMaintenances(
            mpb.ListMaintenancesRequest(app=APP, page_size=10, page_token=listed.next_page_token)
        )
        assert [m.id for m in rest.maintenances] == ids[::-1][3:]


def wait_for_status(
    a: Api, addon: str, status: str, timeout: float = 20.0, attempts: int = 0
) -> mpb.MaintenanceInfo:
    deadline = time.monotonic() + timeout
    while True:
        info = a.GetMaintenanceInfo(mpb.GetMaintenanceInfoRequest(addon=addon)).info
        if (info.status == status and info.attempts >= attempts) or time.monotonic() > deadline:
            assert info.status == status, info
            return info
        time.sleep(0.05)


def test_mini_plan_rules(scheduler) -> None:
    with api(scheduler.address) as a:
        addon = registered_addon(a, plan="mini")
        assert not addon.HasField("window")
        require(a, addon.name)
        a.SetMaintenanceMode(fpb.SetMaintenanceModeRequest(app=APP, enabled=True))
        for call in (
            lambda: a.UpdateWindow(
                mpb.UpdateWindowRequest(app=APP, addon=addon.name, day="Sunday", time="14:30")
            ),
            lambda: a.RunMaintenance(mpb.RunMaintenanceRequest(app=APP, addon=addon.name, confirm=APP)),
            lambda: a.ScheduleMaintenance(mpb.ScheduleMaintenanceRequest(app=APP, addon=addon.name, weeks=1)),
        ):
            err = error_of(call)
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "mini plan" in err.details() and "premium, private and shield" in err.details()
        err = error_of(
            lambda: a.CreateAddon(
                fpb.CreateAddonRequest(
                    app=APP,
                    plan="mini",
                    primary=rpb.ServerAddress(host="db-1", port=9000),
                    standby=rpb.ServerAddress(host="db-2", port=9001),
                )
            )
        )
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


@on_both_stores
def test_require_by_plan_and_all_skips_pending(scheduler) -> None:
    with api(scheduler.address) as a:
        p0 = registered_addon(a, p=7001)
        p1 = registered_addon(a, app="app-two", plan="premium-1", p=7003)
        mini = registered_addon(a, app="app-three", plan="mini", p=7005)
        got = a.RequireMaintenance(
            fpb.RequireMaintenanceRequest(plan="premium-1", reason=rpb.MAINTENANCE_REASON_REDIS_UPGRADE)
        )
        assert [m.addon for m in got.maintenances] == [p1.name]
        got = a.RequireMaintenance(
            fpb.RequireMaintenanceRequest(
                all=True, reason=rpb.MAINTENANCE_REASON_INFRASTRUCTURE, method=rpb.MAINTENANCE_METHOD_RESTART
            )
        )
        assert sorted(m.addon for m in got.maintenances) == sorted([p0.name, mini.name])
        assert list(got.already_pending) == [p1.name]
        assert all(m.method == rpb.MAINTENANCE_METHOD_RESTART for m in got.maintenances)


@on_both_stores
def test_bad_input_is_refused_and_writes_nothing(scheduler) -> None:
    with api(scheduler.address) as a:
        addon = registered_addon(a)
        before = len(all_events(a))
        cases = [
            (lambda: a.CreateApp(fpb.CreateAppRequest(name="")), "name"),
            (lambda: a.CreateApp(fpb.CreateAppRequest(name="x" * 10_000)), "name"),
            (lambda: a.CreateApp(fpb.CreateAppRequest(name="Bad Name")), "name"),
            (lambda: a.CreateApp(fpb.CreateAppRequest(name="good-name", owner_email="nope")), "owner_email"),
            (lambda: a.CreateAddon(fpb.CreateAddonRequest(app=APP, plan="gold-7")), "plan"),
            (
                lambda: a.CreateAddon(
                    fpb.CreateAddonRequest(
                        app=APP,
                        plan="premium-0",
                        attachments=["bad var"],
                        primary=rpb.ServerAddress(host="db-1", port=8001),
                        standby=rpb.ServerAddress(host="db-2", port=8002),
                    )
                ),
                "attachments",
            ),
            (
                lambda: a.CreateAddon(
                    fpb.CreateAddonRequest(
                        app=APP,
                        plan="premium-0",
                        primary=rpb.ServerAddress(host="db-1", port=70000),
                        standby=rpb.ServerAddress(host="db-2", port=8002),
                    )
                ),
                "primary.port",
            ),
            (
                lambda: a.UpdateWindow(
                    mpb.UpdateWindowRequest(app=APP, addon=addon.name, day="Funday", time="14:30")
                ),
                "day",
            ),
            (
                lambda: a.UpdateWindow(
                    mpb.UpdateWindowRequest(app=APP, addon=addon.name, day="Sunday", time="25:61")
                ),
                "time",
            ),
            (
                lambda: a.ScheduleMaintenance(
                    mpb.ScheduleMaintenanceRequest(app=APP, addon=addon.name, week="2026-13-45")
                ),
                "week",
            ),
            (lambda: a.ListApps(fpb.ListAppsRequest(page_token="garbage!")), "page_token"),
            (lambda: a.ListApps(fpb.ListAppsRequest(page_size=-5)), "page_size"),
            (lambda: a.RequireMaintenance(fpb.RequireMaintenanceRequest(all=True)), "reason"),
            (lambda: a.RequireMaintenance(fpb.RequireMaintenanceRequest(all=True, reason=99)), "reason"),
            (
                lambda: a.RequireMaintenance(fpb.RequireMaintenanceRequest(all=True, reason=1, method=42)),
                "method",
            ),
            (
                lambda: a.RequireMaintenance(
                    fpb.RequireMaintenanceRequest(all=True, reason=1, required_by=Timestamp(seconds=1000))
                ),
                "required_by",
            ),
            (lambda: a.StreamEvents(epb.StreamEventsRequest(since_sequence=-1)).next(), "since_sequence"),
        ]
        for call, field in cases:
            err = error_of(call)
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, err.details())
            assert field_violations(err) == [field] or field_violations(err)[0] == field, (
                field,
                err.details(),
            )
        for call, code in [
            (
                lambda: a.GetAddonInfo(mpb.GetAddonInfoRequest(app="no-such-app", addon="REDIS_URL")),
                grpc.StatusCode.NOT_FOUND,
            ),
            (
                lambda: a.GetAddonInfo(mpb.GetAddonInfoRequest(app=APP, addon="redis-nope-1")),
                grpc.StatusCode.NOT_FOUND,
            ),
            (lambda: a.CreateApp(fpb.CreateAppRequest(name=APP)), grpc.StatusCode.ALREADY_EXISTS),
            (lambda: registered_addon(a, p=7001), grpc.StatusCode.ALREADY_EXISTS),
        ]:
            assert error_of(call).code() == code
        assert (
            "no-such-app"
            in error_of(
                lambda: a.GetAddonInfo(mpb.GetAddonInfoRequest(app="no-such-app", addon="X"))
            ).details()
        )
        assert len(all_events(a)) == before
        assert len(a.ListApps(fpb.ListAppsRequest()).apps) == 1
        assert a.GetWindow(mpb.GetWindowRequest(app=APP, addon=addon.name)).state.window == addon.window


def test_auth_scopes(scheduler_factory) -> None:
    s = scheduler_factory(tokens=True)
    with api(s.address, OPERATOR_TOKEN) as op:
        addon = registered_addon(op)
        registered_addon(op, app="other-app", p=7101)
        mine = op.with_token(APP_TOKENS[APP])
        theirs = op.with_token(APP_TOKENS["other-app"])
        anonymous = op.with_token(None)
        bogus = op.with_token("not-a-real-token")

        for who in (anonymous, bogus):
            err = error_of(
                lambda who=who: who.GetAddonInfo(mpb.GetAddonInfoRequest(app=APP, addon="REDIS_URL"))
            )
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        assert mine.GetAddonInfo(mpb.GetAddonInfoRequest(app=APP, addon="REDIS_URL")).addon.name == addon.name
        # An app token without -a acts on its own app.
        assert mine.GetAddonInfo(mpb.GetAddonInfoRequest(addon="REDIS_URL")).addon.name == addon.name
        mine.SetMaintenanceMode(fpb.SetMaintenanceModeRequest(app=APP, enabled=True))
        for call in (
            lambda: theirs.GetAddonInfo(mpb.GetAddonInfoRequest(app=APP, addon="REDIS_URL")),
            lambda: theirs.SetMaintenanceMode(fpb.SetMaintenanceModeRequest(app=APP, enabled=False)),
            lambda: theirs.GetConfigVars(fpb.GetConfigVarsRequest(app=APP)),
            lambda: mine.CreateApp(fpb.CreateAppRequest(name="sneaky")),
            lambda: mine.ListApps(fpb.ListAppsRequest()),
            lambda: mine.RequireMaintenance(fpb.RequireMaintenanceRequest(all=True, reason=1)),
        ):
            assert error_of(call).code() == grpc.StatusCode.PERMISSION_DENIED
        # An add-on of another app named directly is not visible to an app token.
        err = error_of(lambda: theirs.GetAddonInfo(mpb.GetAddonInfoRequest(addon=addon.name)))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        evs = [r.event for r in theirs.StreamEvents(epb.StreamEventsRequest())]
        assert evs and {e.app for e in evs} == {"other-app"}
        # No agent runs here, so nothing reports on the registered servers.
        assert op.GetAddonInfo(mpb.GetAddonInfoRequest(app=APP, addon="REDIS_URL")).status == "unknown"


@on_both_stores
def test_events_resume_after_scheduler_restart(scheduler) -> None:
    with api(scheduler.address) as a:
        addon = registered_addon(a)
        first = all_events(a)
        assert [e.sequence for e in first] == list(range(1, len(first) + 1))
        mark = first[-1].sequence
    scheduler.kill()  # a crash, not a graceful stop
    scheduler.start()
    with api(scheduler.address) as a:
        assert all_events(a) == first  # nothing acknowledged was lost
        a.UpdateWindow(mpb.UpdateWindowRequest(app=APP, addon=addon.name, day="tue", time="9:00AM"))
        missed = all_events(a, since=mark)
        assert [e.type for e in missed] == [rpb.EVENT_TYPE_WINDOW_UPDATED]
        assert missed[0].sequence == mark + 1
        assert a.GetWindow(mpb.GetWindowRequest(app=APP, addon=addon.name)).state.window.description == (
            "Tuesdays 09:00 to 13:00 UTC"
        )


@on_both_stores
def test_follow_stream_and_config_watch_see_new_changes(scheduler) -> None:
    with api(scheduler.address) as a:
        a.CreateApp(fpb.CreateAppRequest(name=APP))
        follow = a.StreamEvents(epb.StreamEventsRequest(app=APP, follow=True), timeout=20)
        watch = a.WatchConfigVars(fpb.WatchConfigVarsRequest(app=APP), timeout=20)
        assert next(follow).event.type == rpb.EVENT_TYPE_APP_CREATED
        assert dict(next(watch).config_vars) == {}
        registered_addon(a)
        assert next(follow).event.type == rpb.EVENT_TYPE_ADDON_CREATED
        assert next(follow).event.type == rpb.EVENT_TYPE_CONFIG_VAR_CHANGED
        assert dict(next(watch).config_vars) == {"REDIS_URL": "redis://db-1:7001"}
        follow.cancel()
        watch.cancel()


def test_health_and_reflection(scheduler) -> None:
    with grpc.insecure_channel(scheduler.address) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for service in ("", "kvmaint.v1.MaintenanceService", "kvmaint.v1.FleetService"):
            resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        replies = list(
            refl.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            )
        )
        names = {s.name for s in replies[0].list_services_response.service}
        assert {
            "kvmaint.v1.FleetService",
            "kvmaint.v1.MaintenanceService",
            "kvmaint.v1.EventService",
            "grpc.health.v1.Health",
        } <= names


@on_both_stores
def test_delete_app_removes_its_addons(scheduler) -> None:
    with api(scheduler.address) as a:
        addon = registered_addon(a)
        require(a, addon.name)
        a.DeleteApp(fpb.DeleteAppRequest(name=APP))
        assert error_of(lambda: a.GetAddonInfo(mpb.GetAddonInfoRequest(addon=addon.name))).code() == (
            grpc.StatusCode.NOT_FOUND
        )
        assert a.ListAddons(fpb.ListAddonsRequest()).addons == []


def test_graceful_stop_on_sigterm(scheduler) -> None:
    assert scheduler.stop() == 0


@pytest.mark.parametrize("name", ["redis-custom-1"])
def test_custom_name_and_several_attachments(scheduler, name: str) -> None:
    with api(scheduler.address) as a:
        a.CreateApp(fpb.CreateAppRequest(name=APP))
        addon = a.CreateAddon(
            fpb.CreateAddonRequest(
                app=APP,
                plan="premium-2",
                name=name,
                attachments=["REDIS_URL", "CACHE_URL"],
                primary=rpb.ServerAddress(host="db-1", port=7001),
                standby=rpb.ServerAddress(host="db-2", port=7002),
            )
        ).addon
        assert addon.name == name and list(addon.attachments) == ["REDIS_URL", "CACHE_URL"]
        assert a.GetAddonInfo(mpb.GetAddonInfoRequest(app=APP, addon="CACHE_URL")).addon.name == name
        assert set(a.GetConfigVars(fpb.GetConfigVarsRequest(app=APP)).config_vars) == {
            "REDIS_URL",
            "CACHE_URL",
        }

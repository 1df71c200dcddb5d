"""AIP-193 error details over real gRPC: every kvmaint error carries google.rpc.ErrorInfo (a stable
reason, domain kvmaint), and ResourceInfo / PreconditionFailure / BadRequest where they apply; clients
(`kvmaint.channel`, `kvmaint.client`, the CLI) read the reason, never the sentence."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from kvmaint.channel import ChannelOptions, Connection
from kvmaint.cli import maintenance as cli_maintenance
from kvmaint.cli.context import Context
from kvmaint.cli.output import Output
from kvmaint.client import attach
from kvmaint.errors import ErrorReason, KvmaintError, RPCError
from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb
from tests.conftest import APP_TOKENS
from tests.rpc.test_health_watch import GRPCURL
from tests.support.rpc import api, error_of, registered_addon

APP = "example-app"


def details_of(err: grpc.RpcError) -> dict[str, object]:
    """The google.rpc details of a failed call, by type name."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, "no google.rpc.Status in the trailers"
    found: dict[str, object] = {}
    for kind in (
        error_details_pb2.ErrorInfo,
        error_details_pb2.ResourceInfo,
        error_details_pb2.PreconditionFailure,
        error_details_pb2.BadRequest,
    ):
        for detail in status.details:
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                found[kind.__name__] = message
    return found


def require(a, addon: str) -> None:
    when = Timestamp()
    when.FromDatetime(datetime.now(UTC) + timedelta(days=30))
    a.RequireMaintenance(
        fpb.RequireMaintenanceRequest(
            addons=fpb.AddonNames(names=[addon]),
            reason=rpb.MAINTENANCE_REASON_SECURITY_PATCH,
            required_by=when,
        )
    )


def test_not_found_carries_error_info_and_resource_info(scheduler) -> None:
    with api(scheduler.address) as a:
        registered_addon(a)
        err = error_of(lambda: a.GetAddonInfo(mpb.GetAddonInfoRequest(app="nope", addon="REDIS_URL")))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        d = details_of(err)
        assert (d["ErrorInfo"].reason, d["ErrorInfo"].domain) == ("APP_NOT_FOUND", "kvmaint")
        assert (d["ResourceInfo"].resource_type, d["ResourceInfo"].resource_name) == ("kvmaint.v1.App", "nope")

        err = error_of(lambda: a.GetAddonInfo(mpb.GetAddonInfoRequest(app=APP, addon="CACHE_URL")))
        d = details_of(err)
        assert d["ErrorInfo"].reason == "ADDON_NOT_FOUND"
        assert (d["ResourceInfo"].resource_name, d["ResourceInfo"].owner) == ("CACHE_URL", f"apps/{APP}")


def test_failed_preconditions_say_which_rule_on_what(scheduler) -> None:
    with api(scheduler.address) as a:
        addon = registered_addon(a)
        err = error_of(lambda: a.ScheduleMaintenance(mpb.ScheduleMaintenanceRequest(app=APP, addon="REDIS_URL")))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        d = details_of(err)
        assert d["ErrorInfo"].reason == ErrorReason.MAINTENANCE_NOT_REQUIRED == "MAINTENANCE_NOT_REQUIRED"
        [violation] = d["PreconditionFailure"].violations
        assert (violation.type, violation.subject) == ("MAINTENANCE_NOT_REQUIRED", f"addons/{addon.name}")
        assert d["ResourceInfo"].owner == f"apps/{APP}"

        require(a, addon.name)
        err = error_of(lambda: a.RunMaintenance(mpb.RunMaintenanceRequest(app=APP, addon="REDIS_URL")))
        d = details_of(err)
        assert d["ErrorInfo"].reason == "APP_NOT_IN_MAINTENANCE_MODE"
        assert [v.subject for v in d["PreconditionFailure"].violations] == [f"apps/{APP}"]
        assert "maintenance mode" in err.details()  # the sentence is still there, for people


def test_invalid_argument_keeps_bad_request_and_gains_error_info(scheduler) -> None:
    with api(scheduler.address) as a:
        registered_addon(a)
        err = error_of(
            lambda: a.UpdateWindow(mpb.UpdateWindowRequest(app=APP, addon="REDIS_URL", day="Funday", time="25:00"))
        )
        d = details_of(err)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert d["ErrorInfo"].reason == "INVALID_ARGUMENT" and d["ErrorInfo"].domain == "kvmaint"
        assert {v.field for v in d["BadRequest"].field_violations} >= {"day"}


def test_auth_refusals_have_reasons(scheduler_factory) -> None:
    sched = scheduler_factory(tokens=True)
    with api(sched.address) as a:
        err = error_of(lambda: a.ListApps(fpb.ListAppsRequest()))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        assert details_of(err)["ErrorInfo"].reason == "TOKEN_REQUIRED"
        err = error_of(lambda: a.with_token("wrong").ListApps(fpb.ListAppsRequest()))
        assert details_of(err)["ErrorInfo"].reason == "TOKEN_INVALID"
        other = a.with_token(APP_TOKENS["other-app"])
        err = error_of(lambda: other.GetConfigVars(fpb.GetConfigVarsRequest(app=APP)))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert details_of(err)["ErrorInfo"].reason == "OTHER_APP"


def test_kvmaint_channel_raises_rpc_error_with_the_details(scheduler) -> None:
    with api(scheduler.address) as a:
        addon = registered_addon(a)
    with Connection(ChannelOptions(address=scheduler.address)) as conn:
        with pytest.raises(RPCError) as caught:
            conn.call(conn.maintenance.ScheduleMaintenance, mpb.ScheduleMaintenanceRequest(app=APP, addon=addon.name))
    err = caught.value
    assert (err.code, err.reason, err.domain) == ("FAILED_PRECONDITION", "MAINTENANCE_NOT_REQUIRED", "kvmaint")
    assert err.resource is not None and (err.resource.kind, err.resource.name) == ("Addon", addon.name)
    assert [p.subject for p in err.preconditions] == [f"addons/{addon.name}"]


def test_grpcurl_shows_the_error_info(scheduler) -> None:
    """A tool no one here wrote decodes the details through server reflection."""
    done = subprocess.run(
        [
            GRPCURL,
            "-plaintext",
            "-format-error",
            "-d",
            json.dumps({"app": "nope", "addon": "REDIS_URL"}),
            scheduler.address,
            "kvmaint.v1.MaintenanceService/GetAddonInfo",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    status = json.loads(done.stderr[done.stderr.index("{") :])
    assert status["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    info = next(d for d in status["details"] if d["@type"].endswith("google.rpc.ErrorInfo"))
    assert (info["reason"], info["domain"]) == ("APP_NOT_FOUND", "kvmaint")


async def test_client_attach_fails_at_once_on_a_permanent_reason(scheduler) -> None:
    with pytest.raises(RPCError) as caught:
        await attach(scheduler.address, "no-such-app", connect_timeout=100)  # far above the test timeout
    assert caught.value.reason == ErrorReason.APP_NOT_FOUND


def test_cli_wait_branches_on_the_reason(scheduler) -> None:
    """WaitMaintenance refusing with MAINTENANCE_NOT_REQUIRED reads as Heroku's sentence."""
    with api(scheduler.address) as a:
        addon = registered_addon(a)
    ctx = Context(options=ChannelOptions(address=scheduler.address), out=Output())
    try:
        with pytest.raises(KvmaintError) as caught:
            cli_maintenance._wait(ctx, APP, "REDIS_URL")
    finally:
        ctx.close()
    assert str(caught.value) == f"There currently isn't any maintenance in progress for {addon.name}."

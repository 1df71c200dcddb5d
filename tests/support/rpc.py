"""Synchronous gRPC stubs for tests, with the token as call metadata."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from kvmaint.v1 import events_pb2_grpc, fleet_pb2_grpc, maintenance_pb2_grpc
from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import resources_pb2 as rpb


@dataclass
class Api:
    channel: grpc.Channel
    token: str | None = None

    def _md(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")] if self.token else []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        for stub in (self.fleet, self.maint, self.events):
            if hasattr(stub, name):
                method = getattr(stub, name)
                return lambda request, **kw: method(
                    request, metadata=self._md(), timeout=kw.pop("timeout", 10), **kw
                )
        raise AttributeError(name)

    @property
    def fleet(self) -> Any:
        return fleet_pb2_grpc.FleetServiceStub(self.channel)

    @property
    def maint(self) -> Any:
        return maintenance_pb2_grpc.MaintenanceServiceStub(self.channel)

    @property
    def events(self) -> Any:
        return events_pb2_grpc.EventServiceStub(self.channel)

    def with_token(self, token: str | None) -> Api:
        return Api(self.channel, token)


@contextmanager
def api(address: str, token: str | None = None) -> Iterator[Api]:
    channel = grpc.insecure_channel(address)
    try:
        yield Api(channel, token)
    finally:
        channel.close()


def error_of(fn: Callable[[], Any]) -> grpc.RpcError:
    try:
        fn()
    except grpc.RpcError as err:
        return err
    raise AssertionError("the call succeeded but was expected to fail")


def field_violations(err: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        return []
    out = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out.extend(v.field for v in bad.field_violations)
    return out


def registered_addon(
    a: Api, app: str = "example-app", plan: str = "premium-0", p: int = 7001, name: str = ""
) -> rpb.Addon:
    """An app (created if missing) with an add-on registered on servers at fake hosts db-1/db-2."""
    try:
        a.CreateApp(fpb.CreateAppRequest(name=app, owner_email="owner@example.com"))
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
    req = fpb.CreateAddonRequest(
        app=app, plan=plan, name=name, primary=rpb.ServerAddress(host="db-1", port=p)
    )
    if plan != "mini":
        req.standby.CopyFrom(rpb.ServerAddress(host="db-2", port=p + 1))
    addon: rpb.Addon = a.CreateAddon(req).addon
    return addon

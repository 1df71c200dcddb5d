"""The channel against a stand-in FleetService on port 0: what reaches the server (the bearer token)
and what a failure becomes on the client (one RPCError with the BadRequest's field violations)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from kvmaint.channel import ChannelOptions, Connection, to_rpc_error, transport_reason
from kvmaint.cli.entry import error_sentence
from kvmaint.errors import FieldViolation, RPCError
from kvmaint.v1 import fleet_pb2, fleet_pb2_grpc, resources_pb2


class StandInFleet(fleet_pb2_grpc.FleetServiceServicer):
    def __init__(self) -> None:
        self.metadata: list[tuple[str, str]] = []

    def ListApps(self, request: Any, context: Any) -> Any:
        self.metadata = list(context.invocation_metadata())
        return fleet_pb2.ListAppsResponse(apps=[resources_pb2.App(name="example-app")])

    def CreateApp(self, request: Any, context: Any) -> Any:
        bad = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="name", description="name 'Bad App' may only "
                                                        "hold lowercase letters, digits and dashes")])
        detail = any_pb2.Any()
        detail.Pack(bad)
        context.abort_with_status(rpc_status.to_status(status_pb2.Status(
            code=code_pb2.INVALID_ARGUMENT, message="Invalid app name.", details=[detail])))

    def DeleteApp(self, request: Any, context: Any) -> Any:
        context.abort(grpc.StatusCode.NOT_FOUND, "App nope does not exist.")


@pytest.fixture
def stand_in() -> Iterator[tuple[str, StandInFleet]]:
    servicer = StandInFleet()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    fleet_pb2_grpc.add_FleetServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(None)


def test_token_travels_as_bearer_metadata(stand_in: tuple[str, StandInFleet]) -> None:
    address, servicer = stand_in
    with Connection(ChannelOptions(address=address, token="s3cret")) as conn:
        resp = conn.call(conn.fleet.ListApps, fleet_pb2.ListAppsRequest())
    assert [a.name for a in resp.apps] == ["example-app"]
    assert ("authorization", "Bearer s3cret") in servicer.metadata


def test_no_token_no_authorization_header(stand_in: tuple[str, StandInFleet]) -> None:
    address, servicer = stand_in
    with Connection(ChannelOptions(address=address)) as conn:
        conn.call(conn.fleet.ListApps, fleet_pb2.ListAppsRequest())
    assert "authorization" not in dict(servicer.metadata)


def test_bad_request_violations_are_read_from_the_rich_status(stand_in: tuple[str, StandInFleet]) -> None:
    address, _ = stand_in
    with Connection(ChannelOptions(address=address)) as conn, pytest.raises(RPCError) as err:
        conn.call(conn.fleet.CreateApp, fleet_pb2.CreateAppRequest(name="Bad App"))
    assert err.value.code == "INVALID_ARGUMENT"
    assert err.value.details == "Invalid app name."
    assert err.value.violations == [FieldViolation(
        "name", "name 'Bad App' may only hold lowercase letters, digits and dashes")]
    assert error_sentence(err.value) == (
        "Invalid app name: name 'Bad App' may only hold lowercase letters, digits and dashes.")


def test_plain_status_keeps_the_servers_sentence(stand_in: tuple[str, StandInFleet]) -> None:
    address, _ = stand_in
    with Connection(ChannelOptions(address=address)) as conn, pytest.raises(RPCError) as err:
        conn.call(conn.fleet.DeleteApp, fleet_pb2.DeleteAppRequest(name="nope"))
    assert (err.value.code, str(err.value)) == ("NOT_FOUND", "App nope does not exist.")
    assert err.value.violations == []


def test_unreachable_scheduler_names_the_address() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    with Connection(ChannelOptions(address=address, timeout=10)) as conn, pytest.raises(RPCError) as err:
        conn.call(conn.fleet.ListApps, fleet_pb2.ListAppsRequest())
    assert err.value.code == "UNAVAILABLE"
    assert str(err.value) == f"Cannot reach the scheduler at {address}: connection refused."


def test_transport_reason_and_server_sent_unavailable() -> None:
    assert transport_reason("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
                            "Failed to connect to remote host: Connection refused") == "connection refused"
    assert transport_reason("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:38393: Tls "
                            "handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL routines:"
                            "OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate: OK"
                            ) == "TLS handshake failed: unable to get local issuer certificate"
    assert transport_reason("errors resolving nosuchhost.invalid:50051: [field:hostname lookup error:address "
                            "lookup failed for nosuchhost.invalid:50051: Domain name not found]"
                            ) == "domain name not found"

    class Err(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.UNAVAILABLE

        def details(self) -> str:
            return "The agent on db-1 is not connected."

    assert str(to_rpc_error(Err(), "h:1")) == "The agent on db-1 is not connected."


def test_error_sentence_does_not_repeat_a_violation_already_in_the_details() -> None:
    err = RPCError("INVALID_ARGUMENT", "Funday is not a day of the week.",
                   [FieldViolation("day", "Funday is not a day of the week")])
    assert error_sentence(err) == "Funday is not a day of the week."
    err = RPCError("INVALID_ARGUMENT", "", [FieldViolation("day", "bad day"),
                                            FieldViolation("time", "bad time")])
    assert error_sentence(err) == "bad day; bad time"


def test_options_resolve_flags_then_environment_then_default() -> None:
    env = {"KVMAINT_SCHEDULER": "sched:1", "KVMAINT_TOKEN": "envtok"}
    assert ChannelOptions.resolve(env={}).address == "127.0.0.1:50051"
    assert ChannelOptions.resolve(env=env) == ChannelOptions(address="sched:1", token="envtok")
    assert ChannelOptions.resolve("flag:2", "flagtok", env=env) == ChannelOptions(address="flag:2",
                                                                                  token="flagtok")


def dead_address() -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


class StreamingFleet(StandInFleet):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.calls = 0

    def ListApps(self, request: Any, context: Any) -> Any:
        self.calls += 1
        return fleet_pb2.ListAppsResponse(apps=[resources_pb2.App(name=self.name)])

    def WatchConfigVars(self, request: Any, context: Any) -> Any:
        yield fleet_pb2.WatchConfigVarsResponse(config_vars={"FROM": self.name})


@pytest.fixture
def replicas() -> Iterator[list[tuple[str, StreamingFleet]]]:
    out, servers = [], []
    for name in ("b", "c"):
        servicer = StreamingFleet(name)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        fleet_pb2_grpc.add_FleetServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        out.append((f"127.0.0.1:{port}", servicer))
    yield out
    for server in servers:
        server.stop(None)


def test_several_addresses_a_dead_first_one_is_skipped_and_the_live_one_kept(
    replicas: list[tuple[str, StreamingFleet]],
) -> None:
    dead = dead_address()
    (b, sb), (c, sc) = replicas
    with Connection(ChannelOptions(address=f"{dead},{b},{c}", timeout=10)) as conn:
        assert [a.name for a in conn.call(conn.fleet.ListApps, fleet_pb2.ListAppsRequest()).apps] == ["b"]
        assert conn.address == b
        conn.call(conn.fleet.ListApps, fleet_pb2.ListAppsRequest())
        assert (sb.calls, sc.calls) == (2, 0)  # it stays with the one that answered
        # A stream that cannot start on one address starts on the next.
        conn.next_address()
        conn.next_address()
        assert conn.address == dead
        got = list(conn.stream(conn.fleet.WatchConfigVars, fleet_pb2.WatchConfigVarsRequest(app="x")))
        assert [dict(m.config_vars) for m in got] == [{"FROM": "b"}]
    # A server's own refusal is not a reason to move on.
    with Connection(ChannelOptions(address=f"{b},{c}", timeout=10)) as conn, pytest.raises(RPCError) as err:
        conn.call(conn.fleet.DeleteApp, fleet_pb2.DeleteAppRequest(name="nope"))
    assert str(err.value) == "App nope does not exist." and conn.address == b


def test_several_addresses_all_unreachable_names_them_all() -> None:
    a, b = dead_address(), dead_address()
    with Connection(ChannelOptions(address=f"{a}, {b}", timeout=10)) as conn, pytest.raises(RPCError) as err:
        conn.call(conn.fleet.ListApps, fleet_pb2.ListAppsRequest())
    assert err.value.code == "UNAVAILABLE"
    assert str(err.value) == f"Cannot reach the scheduler at any of {a}, {b}: connection refused."
    with Connection(ChannelOptions(address=f"{a},{b}", timeout=10)) as conn, pytest.raises(RPCError) as err:
        list(conn.stream(conn.fleet.WatchConfigVars, fleet_pb2.WatchConfigVarsRequest(app="x")))
    assert str(err.value) == f"Cannot reach the scheduler at any of {a}, {b}: connection refused."

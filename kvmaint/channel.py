"""The client side of the scheduler connection: where to dial, how to authenticate, and one error type.

Every gRPC failure a client sees leaves this module as `kvmaint.errors.RPCError`, so callers never
import `grpc` to handle errors and a failure to connect reads as a sentence naming the address.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from kvmaint.errors import (
    DOMAIN,
    ErrorReason,
    FieldViolation,
    KvmaintError,
    PreconditionViolation,
    Resource,
    RPCError,
)
from kvmaint.tlsprobe import speaks_tls
from kvmaint.v1 import campaigns_pb2_grpc, events_pb2_grpc, fleet_pb2_grpc, maintenance_pb2_grpc

DEFAULT_SCHEDULER = "127.0.0.1:50051"
ENV_SCHEDULER = "KVMAINT_SCHEDULER"
ENV_TOKEN = "KVMAINT_TOKEN"
ENV_CA = "KVMAINT_CA"
# Unary calls answer quickly; a scheduler silent for this long is as good as unreachable.
DEFAULT_TIMEOUT = 60.0

# Phrases gRPC core uses when the transport, not the server, failed. A server-sent UNAVAILABLE
# (an agent down) carries its own sentence instead.
# The metadata key of a call's request id: the same on every address a call is resent to.
REQUEST_ID = "kvmaint-request-id"

_TRANSPORT_PHRASES = (
    "failed to connect to all addresses",
    "errors resolving",
    "dns resolution failed",
    "connections to all backends failing",
    "socket closed",
    "connection reset by peer",
    "broken pipe",
    "connection refused",
    "goaway",
    "ssl_error",
    "handshake failed",
)

Request = TypeVar("Request")
Response = TypeVar("Response")


@dataclass(frozen=True)
class ChannelOptions:
    """Resolved connection settings: flags win over environment variables, which win over defaults."""

    address: str = DEFAULT_SCHEDULER
    token: str | None = None
    ca_file: Path | None = None
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def resolve(
        cls,
        address: str | None = None,
        token: str | None = None,
        ca_file: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ChannelOptions:
        env = os.environ if env is None else env
        ca = ca_file or env.get(ENV_CA) or None
        return cls(
            address=address or env.get(ENV_SCHEDULER) or DEFAULT_SCHEDULER,
            token=token or env.get(ENV_TOKEN) or None,
            ca_file=Path(ca) if ca else None,
        )


class _ClientCallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Adds `authorization: Bearer TOKEN` to every call; works on plaintext channels too, unlike
    grpc.access_token_call_credentials, which gRPC only sends over TLS."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: Any) -> _ClientCallDetails:
        metadata = [*(details.metadata or ()), self._header]
        return _ClientCallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)


# A campaign's dry run over 100,000 add-ons is a few MB, past gRPC's 4 MB default.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]


def open_channel(options: ChannelOptions) -> grpc.Channel:
    """A sync channel to the scheduler: TLS when a CA file is given, plaintext otherwise."""
    if options.ca_file is not None:
        try:
            root = options.ca_file.read_bytes()
        except OSError as err:
            raise KvmaintError(f"Cannot read the CA file {options.ca_file}: {err.strerror}.") from err
        channel = grpc.secure_channel(
            options.address, grpc.ssl_channel_credentials(root_certificates=root), CHANNEL_OPTIONS
        )
    else:
        channel = grpc.insecure_channel(options.address, CHANNEL_OPTIONS)
    if options.token:
        channel = grpc.intercept_channel(channel, _BearerToken(options.token))
    return channel


def rich_error(code: grpc.StatusCode, message: str, trailing: Iterable[tuple[str, Any]] | None) -> RPCError:
    """The server's status with its google.rpc details (ErrorInfo, BadRequest, ResourceInfo,
    PreconditionFailure), for sync and grpc.aio calls alike."""
    raw = next((v for k, v in trailing or () if k == "grpc-status-details-bin"), None)
    status = status_pb2.Status()
    if isinstance(raw, bytes):
        try:
            status.ParseFromString(raw)
        except DecodeError:
            status = status_pb2.Status()
    info = error_details_pb2.ErrorInfo()
    bad = error_details_pb2.BadRequest()
    resource = error_details_pb2.ResourceInfo()
    failure = error_details_pb2.PreconditionFailure()
    for detail in status.details:
        for target in (info, bad, resource, failure):
            if detail.Is(target.DESCRIPTOR):
                detail.Unpack(target)
    return RPCError(
        code.name,
        message or f"The scheduler answered {code.name}.",
        [FieldViolation(v.field, v.description) for v in bad.field_violations],
        reason=info.reason,
        domain=info.domain,
        metadata=dict(info.metadata),
        resource=(
            Resource(
                resource.resource_type.removeprefix("kvmaint.v1."), resource.resource_name, resource.owner
            )
            if resource.resource_type
            else None
        ),
        preconditions=[PreconditionViolation(v.type, v.subject, v.description) for v in failure.violations],
    )


def is_transport_failure(code: grpc.StatusCode, details: str) -> bool:
    if code != grpc.StatusCode.UNAVAILABLE:
        return False
    lowered = details.lower()
    return any(phrase in lowered for phrase in _TRANSPORT_PHRASES)


def transport_reason(details: str) -> str:
    """The useful tail of a gRPC core message: "...: Connection refused" -> "connection refused";
    a failed TLS handshake keeps saying so ("TLS handshake failed: unable to get local issuer ...")."""
    parts = [p.strip(" ]") for p in details.split(": ")]
    parts = [p for p in parts if p and p != "OK"]
    tail = parts[-1] if parts else details
    tail = tail[:1].lower() + tail[1:]
    if "handshake failed" in details.lower() and "handshake" not in tail.lower():
        return f"TLS handshake failed: {tail}"
    return tail


def to_rpc_error(err: grpc.RpcError, address: str) -> RPCError:
    """One place that turns a gRPC failure into the sentence a person reads."""
    code: grpc.StatusCode = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details: str = (err.details() if hasattr(err, "details") else "") or ""
    trailing = err.trailing_metadata() if isinstance(err, grpc.Call) else None
    rich = rich_error(code, details, trailing)
    if rich.domain == DOMAIN:
        return rich
    if is_transport_failure(code, details):
        reason = transport_reason(details)
        return RPCError(
            "UNAVAILABLE",
            f"Cannot reach the scheduler at {address}: {reason}.",
            reason=ErrorReason.SCHEDULER_UNREACHABLE,
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED and details.strip(". ").lower() in ("", "deadline exceeded"):
        return RPCError(code.name, f"The scheduler at {address} did not answer in time.")
    return rich


def with_tls_hint(err: RPCError, options: ChannelOptions, address: str | None = None) -> RPCError:
    """A plaintext client that cannot reach a server speaking TLS: say so, and what to pass."""
    address = address or options.address
    if err.reason != ErrorReason.SCHEDULER_UNREACHABLE or options.ca_file is not None:
        return err
    if not speaks_tls(address):
        return err
    return RPCError(
        err.code,
        f"{str(err).rstrip('.')}. The scheduler at {address} speaks TLS: pass --ca FILE (or set "
        f"{ENV_CA}) with the CA certificate that signed its certificate.",
        reason=err.reason,
    )


class _Method:
    """A stub method resolved on the connection's current channel at each call, so a call retried on
    the next scheduler address goes to that address."""

    def __init__(self, conn: Connection, service: str, name: str) -> None:
        self.conn, self.service, self.name = conn, service, name

    def __call__(self, request: Any, **kwargs: Any) -> Any:
        return getattr(self.conn._stubs[self.service], self.name)(request, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        """`future`, `with_call`: the current channel's stub method's own."""
        return getattr(getattr(self.conn._stubs[self.service], self.name), attr)


class _Service:
    def __init__(self, conn: Connection, service: str) -> None:
        self._conn, self._service = conn, service

    def __getattr__(self, name: str) -> _Method:
        return _Method(self._conn, self._service, name)


_STUBS = {
    "fleet": fleet_pb2_grpc.FleetServiceStub,
    "maintenance": maintenance_pb2_grpc.MaintenanceServiceStub,
    "events": events_pb2_grpc.EventServiceStub,
    "campaigns": campaigns_pb2_grpc.CampaignServiceStub,
}


def split_addresses(address: str) -> list[str]:
    """`a:1,b:2,c:3` (the scheduler replicas, in the order to try) -> ["a:1", "b:2", "c:3"]."""
    return [a.strip() for a in address.split(",") if a.strip()] or [address]


def describe_addresses(addresses: list[str]) -> str:
    """What an error names: the one address, or "any of a:1, b:2"."""
    return addresses[0] if len(addresses) == 1 else "any of " + ", ".join(addresses)


class Connection:
    """The scheduler services over one channel; calls raise RPCError instead of grpc errors.

    With several addresses (`--scheduler a:1,b:2,c:3`, the replicas of one control plane) a call that
    cannot reach one (the transport failed: UNAVAILABLE before any server answered) is tried on the
    next, and the connection stays with the one that answered. With one address nothing changes."""

    def __init__(self, options: ChannelOptions) -> None:
        self.options = options
        self.addresses = split_addresses(options.address)
        self._index = 0
        self._open()
        self.fleet: Any = _Service(self, "fleet")
        self.maintenance: Any = _Service(self, "maintenance")
        self.events: Any = _Service(self, "events")
        self.campaigns: Any = _Service(self, "campaigns")

    @property
    def address(self) -> str:
        """The scheduler address calls go to now."""
        return self.addresses[self._index]

    def _open(self) -> None:
        self.channel = open_channel(replace(self.options, address=self.address))
        self._stubs = {name: stub(self.channel) for name, stub in _STUBS.items()}

    def next_address(self) -> None:
        """Moves to the next scheduler address (wrapping around)."""
        if len(self.addresses) == 1:
            return
        self.channel.close()
        self._index = (self._index + 1) % len(self.addresses)
        self._open()

    def _error(self, err: grpc.RpcError) -> RPCError:
        rpc_error = to_rpc_error(err, describe_addresses(self.addresses))
        return with_tls_hint(rpc_error, self.options, self.address)

    def _unreachable(self, err: grpc.RpcError) -> bool:
        code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
        details = (err.details() if hasattr(err, "details") else "") or ""
        return is_transport_failure(code, details) and len(self.addresses) > 1

    def call(self, method: Callable[..., Response], request: Any) -> Response:
        """A unary call with the default deadline; on an unreachable address, the next one.

        Every call carries a request id (`kvmaint-request-id`), the same on each address it is sent to:
        a write the unreachable replica had committed before it died is answered by the next one as it
        was answered there (the server records writes with their answers, server/rpc/requests.py),
        not refused as ALREADY_EXISTS nor carried out twice."""
        metadata = ((REQUEST_ID, uuid.uuid4().hex),)
        for _ in range(len(self.addresses) - 1):
            try:
                return method(request, timeout=self.options.timeout, metadata=metadata)
            except grpc.RpcError as err:
                if not self._unreachable(err):
                    raise self._error(err) from None
                self.next_address()
        try:
            return method(request, timeout=self.options.timeout, metadata=metadata)
        except grpc.RpcError as err:
            raise self._error(err) from None

    def paginate(self, method: Callable[..., Any], request: Any, field: str) -> list[Any]:
        """Every item of a paged List call: follows next_page_token until the server sends none."""
        items: list[Any] = []
        while True:
            response = self.call(method, request)
            items.extend(getattr(response, field))
            if not response.next_page_token:
                return items
            request.page_token = response.next_page_token

    def stream(self, method: Callable[..., Any], request: Any) -> Iterator[Any]:
        """A server stream, without deadline (it may follow for hours); cancelled when the caller stops.
        An address unreachable before the first message is skipped as in `call`; a stream that breaks
        later raises (the caller knows where to resume from)."""
        tries = len(self.addresses)
        while True:
            tries -= 1
            call = method(request)
            started = False
            try:
                for item in call:
                    started = True
                    yield item
                return
            except grpc.RpcError as err:
                if err.code() == grpc.StatusCode.CANCELLED and call.cancelled():
                    return
                if started or tries <= 0 or not self._unreachable(err):
                    raise self._error(err) from None
                self.next_address()
            finally:
                call.cancel()

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

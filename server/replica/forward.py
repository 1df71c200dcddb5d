"""Non-leader replicas serve the whole API: the RPCs that need the agents' streams are relayed to the
leader, the rest are answered here from the database.

Agents hold their streams with the leader only, so what the hub knows (which agents are connected,
their builds, each server's last report, placing servers, kicking the runner) exists in the leader's
process alone. `FORWARDED` names every RPC that reads or drives it, with the reason; a non-leader relays
those as bytes to the leader's client address with the caller's metadata (so the leader checks the
bearer token again and answers exactly as if asked directly), and relays the answer or the error
(status, message and google.rpc details) back unchanged. Every other RPC reads and writes the shared
database here, and streams that follow events are woken by LISTEN/NOTIFY (server/storage/pgnotify.py).

A relayed call that finds no leader, or cannot reach the one the lease names, is UNAVAILABLE with a
sentence that says which (`NO_LEADER`, `LEADER_UNREACHABLE`), so a client may try again in a moment.

A relayed call is waited on only while the leader it went to keeps its lease: a leader that stopped
renewing (frozen, partitioned from the database, dead without a FIN) is noticed when its lease expires
or another replica takes it, and the call ends then instead of at the caller's deadline. A read (`READS`)
is relayed again to the next leader; a write answers `LEADER_UNREACHABLE` (it may have committed: the
client's retry carries its request id, server/rpc/requests.py); a relayed `WaitMaintenance` re-attaches
to the next leader (after a lapse or a broken stream) and goes on waiting for the same maintenance
within the first wait's bounds, so it ends with the maintenance's real outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

import grpc

from kvmaint.channel import is_transport_failure, transport_reason
from kvmaint.clock import Clock, iso
from kvmaint.errors import ErrorReason, Unavailable
from kvmaint.v1 import maintenance_pb2 as mpb

log = logging.getLogger(__name__)

# Marks a call a replica relayed, so that a replica that is no longer the leader does not relay it on.
FORWARDED_BY = "kvmaint-forwarded-by"

_FLEET = "/kvmaint.v1.FleetService/"
_MAINT = "/kvmaint.v1.MaintenanceService/"
_CAMPAIGN = "/kvmaint.v1.CampaignService/"

# Every RPC that needs the agents' streams, and why (docs/architecture.md "Replicas" repeats this).
FORWARDED: dict[str, str] = {
    _FLEET + "ListAgents": "connected agents, their servers' reports and builds live in the leader's hub",
    _FLEET + "CreateAddon": "places servers through agents (or adopts them) and pushes the new roles",
    _FLEET + "ListAddons": "each server's endpoint, build and version come from its agent's reports",
    _FLEET + "DeleteApp": "pushes the changed roles to the agents of the destroyed add-ons' hosts",
    _FLEET + "RequireMaintenance": "--build is checked against the builds and versions the agents report",
    _FLEET + "GetFiling": "a fleet-wide request's progress is kept by the leader that runs it (in memory)",
    _MAINT + "GetAddonInfo": "the add-on's status is assessed from its agents' reports",
    _MAINT + "RunMaintenance": "refuses an unavailable add-on (agents' reports), kicks the leader's runner",
    _MAINT + "WaitMaintenance": "the standby's live lag and note are the leader's runner's, not stored",
    _CAMPAIGN + "CreateCampaign": "the target build is checked against the builds the agents report",
}

# Relayed RPCs that only read: when the leader a call went to lapses under it, it is relayed again to the
# next leader (a write is not: it may have committed there).
READS = frozenset(
    {_FLEET + "ListAgents", _FLEET + "ListAddons", _FLEET + "GetFiling", _MAINT + "GetAddonInfo"}
)


def resume_wait(request: bytes, first: bytes | None) -> bytes:
    """A relayed WaitMaintenance to send again to the next leader: bound to the maintenance and the
    attempts the first answer named, so the resumed wait ends as the first would have."""
    req = mpb.WaitMaintenanceRequest.FromString(request)
    if first is not None and not req.maintenance_id:
        m = mpb.WaitMaintenanceResponse.FromString(first).maintenance
        req.maintenance_id, req.attempts_before = m.id, m.attempts
    return req.SerializeToString()


# Relayed streams that resume on the next leader, and how their request is resumed from the first answer.
RESUMABLE: dict[str, Callable[[bytes, bytes | None], bytes]] = {_MAINT + "WaitMaintenance": resume_wait}


class _Lapsed(Exception):
    """The leader a relayed call went to stopped renewing its lease (or another replica took it)."""


# Headers that belong to one HTTP/2 hop, never relayed.
_HOP_HEADERS = frozenset({"user-agent", "content-type", "te", "grpc-accept-encoding", "grpc-encoding"})


class LeaderInfo(Protocol):
    """The lease row as every replica reads it (`server/replica/models.LeaderInfo`)."""

    @property
    def holder(self) -> str: ...
    @property
    def term(self) -> int: ...
    @property
    def address(self) -> str: ...  # the leader's client API address
    @property
    def expires_at(self) -> datetime: ...


class Leadership(Protocol):
    """What this module needs of `server/replica/leader.Leadership` (whose `leader()` gives None once
    the lease has expired)."""

    @property
    def is_leader(self) -> bool: ...

    async def leader(self) -> LeaderInfo | None: ...


class SoleScheduler:
    """The leadership of a scheduler that is alone on its database (SQLite, or one process): it always
    leads, so nothing is forwarded."""

    is_leader = True
    term = 0

    async def leader(self) -> LeaderInfo | None:
        return None


class NoLeaderYet:
    """A replica's leadership before its lease loop exists (the few moments of start-up)."""

    is_leader = False
    term = 0

    async def leader(self) -> LeaderInfo | None:
        return None


def no_leader(info: LeaderInfo | None, now: datetime) -> str:
    """The sentence for a call that found no leader to relay to."""
    if info is None:
        return (
            "no leader: the lease expired (or was never taken) and no scheduler replica holds it now; "
            "a live replica takes it over within a lease time, so try again in a few seconds."
        )
    return (
        f"no leader: the lease of {info.holder} (term {info.term}) expired at {iso(info.expires_at)} "
        f"and no replica has taken it over yet (now {iso(now)}); try again in a few seconds."
    )


def relayed_metadata(metadata: Any, replica: str) -> tuple[tuple[str, str | bytes], ...]:
    """The caller's metadata (bearer token, trace context, ...) without hop headers, marked as relayed."""
    kept = tuple(
        (k, v)
        for k, v in (metadata or ())
        if not k.startswith(":") and k not in _HOP_HEADERS and k != FORWARDED_BY
    )
    return (*kept, (FORWARDED_BY, replica or "replica"))


def _relayed_trailers(err: grpc.aio.AioRpcError) -> tuple[tuple[str, str | bytes], ...]:
    return tuple((k, v) for k, v in (err.trailing_metadata() or ()) if not k.startswith(":"))


# How often a call waiting for a leader looks again (Leadership.leader() reads the database at most
# once a renewal interval).
SETTLE_POLL_SECONDS = 0.1


class Forwarder:
    """Relays calls to the leader's client address over one cached channel per address."""

    def __init__(
        self,
        leadership: Leadership,
        clock: Clock,
        credentials: grpc.ChannelCredentials | None = None,
        replica: str = "",
        settle_seconds: float = 5.0,
    ) -> None:
        self.settle_seconds = settle_seconds
        self.leadership = leadership
        self.clock = clock
        self.credentials = credentials
        self.replica = replica
        # How often a relayed call in flight checks that its leader still holds the lease (the lease
        # row is read at most once a renewal interval: Leadership.leader()).
        self.watch_seconds = 0.2
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, address: str) -> grpc.aio.Channel:
        ch = self._channels.get(address)
        if ch is None:
            options = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]
            ch = (
                grpc.aio.secure_channel(address, self.credentials, options)
                if self.credentials is not None
                else grpc.aio.insecure_channel(address, options)
            )
            self._channels[address] = ch
        return ch

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for ch in channels.values():
            await ch.close(None)

    async def target(self, context: grpc.aio.ServicerContext) -> LeaderInfo:
        """The leader to relay to, or Unavailable saying why there is none."""
        forwarded = any(k == FORWARDED_BY for k, _ in context.invocation_metadata() or ())
        return await self.target_for(forwarded, context.time_remaining())

    async def target_for(self, forwarded: bool, remaining: float | None) -> LeaderInfo:
        if forwarded:
            raise Unavailable(
                "no leader: another replica relayed this call here as to the leader, but this replica "
                "no longer leads (the leadership is moving); try again in a few seconds.",
                reason=ErrorReason.NO_LEADER,
            )
        # A takeover (or this replica's own renewal after a stall) takes about a lease time: the call
        # waits that long for a leader, within its own deadline, rather than failing in the gap.
        settle = self.settle_seconds if remaining is None else min(self.settle_seconds, remaining - 0.5)
        deadline = self.clock.monotonic() + max(0.0, settle)
        while True:
            info = await self.leadership.leader()
            problem = self._problem(info)
            if problem is None:
                assert info is not None
                return info  # another replica, or this one leading again (the call comes back to it)
            if self.clock.monotonic() >= deadline:
                raise problem
            await self.clock.sleep(SETTLE_POLL_SECONDS)

    async def lapse(self, info: LeaderInfo) -> None:
        """Returns once the leader `info` names has stopped holding its lease: it expired unrenewed, or
        another replica holds it now (never while that leader keeps renewing)."""
        while True:
            await self.clock.sleep(self.watch_seconds)
            latest = await self.leadership.leader()
            if (
                latest is None
                or latest.expires_at <= self.clock.now()
                or (latest.holder, latest.term) != (info.holder, info.term)
            ):
                return

    def lapsed(self, info: LeaderInfo) -> Unavailable:
        return Unavailable(
            f"the leader {info.holder} (term {info.term}) at {info.address} stopped answering and did not "
            f"renew its lease (it ran until {iso(info.expires_at)}), so this call was not waited on any "
            "longer; another replica takes over within a lease time. Try again in a few seconds.",
            reason=ErrorReason.LEADER_UNREACHABLE,
        )

    def _problem(self, info: LeaderInfo | None) -> Unavailable | None:
        now = self.clock.now()
        if info is None or info.expires_at <= now or not info.address:
            return Unavailable(no_leader(info, now), reason=ErrorReason.NO_LEADER)
        if self.replica and info.holder == self.replica and not self.leadership.is_leader:
            return Unavailable(
                f"no leader: the lease (term {info.term}) names this replica, which has stopped acting on "
                f"it (it could not renew in time); it lapses at {iso(info.expires_at)}. Try again then.",
                reason=ErrorReason.NO_LEADER,
            )
        return None

    def unreachable(self, info: LeaderInfo, err: grpc.aio.AioRpcError) -> Unavailable:
        return Unavailable(
            f"the leader {info.holder} (term {info.term}) at {info.address} cannot be reached: "
            f"{transport_reason(err.details() or '')}; its lease runs until {iso(info.expires_at)}, after "
            "which another replica takes over. Try again in a few seconds.",
            reason=ErrorReason.LEADER_UNREACHABLE,
        )

    async def relay_error(
        self, info: LeaderInfo, err: grpc.aio.AioRpcError, context: grpc.aio.ServicerContext
    ) -> None:
        if is_transport_failure(err.code(), err.details() or ""):
            raise self.unreachable(info, err) from None
        # The leader's own answer (its token check, validation, FailedPrecondition...): as it gave it.
        await context.abort(err.code(), err.details() or "", _relayed_trailers(err))

    async def _unary_once(
        self, info: LeaderInfo, method: str, request: bytes, md: Any, timeout: float | None
    ) -> bytes:
        """One relay to `info`'s leader, given up (`_Lapsed`) once that leader lost its lease."""
        call = self.channel(info.address).unary_unary(method)(request, metadata=md, timeout=timeout)

        async def answer() -> bytes:
            got: bytes = await call
            return got

        answering = asyncio.ensure_future(answer())
        watching = asyncio.ensure_future(self.lapse(info))
        try:
            await asyncio.wait({answering, watching}, return_when=asyncio.FIRST_COMPLETED)
            if answering.done():
                return answering.result()  # or the leader's AioRpcError
            raise _Lapsed()
        finally:
            watching.cancel()
            if not answering.done():
                call.cancel()
                answering.cancel()
            await asyncio.gather(answering, watching, return_exceptions=True)

    async def call(
        self, method: str, request: bytes, metadata: Any, timeout: float | None, forwarded: bool = False
    ) -> bytes:
        """Relays one unary call to the leader and returns its answer's bytes. Raises Unavailable when
        there is no leader to relay to or it cannot be reached (or lapsed under a write), and the
        leader's own error (grpc.aio.AioRpcError) as it gave it."""
        md = relayed_metadata(metadata, self.replica)
        until = None if timeout is None else self.clock.monotonic() + timeout

        def left() -> float | None:
            return None if until is None else max(0.0, until - self.clock.monotonic())

        while True:
            info = await self.target_for(forwarded, left())
            try:
                return await self._unary_once(info, method, request, md, left())
            except grpc.aio.AioRpcError as err:
                if is_transport_failure(err.code(), err.details() or ""):
                    raise self.unreachable(info, err) from None
                raise
            except _Lapsed:
                if method not in READS:
                    raise self.lapsed(info) from None
                log.info("leader %s (term %d) lapsed under %s: relay again", info.holder, info.term, method)

    def unary(self, method: str) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]:
        async def relay(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            forwarded = any(k == FORWARDED_BY for k, _ in context.invocation_metadata() or ())
            try:
                return await self.call(
                    method, request, context.invocation_metadata(), context.time_remaining(), forwarded
                )
            except grpc.aio.AioRpcError as err:
                # The leader's own answer (its token check, validation, FailedPrecondition...): as it gave it.
                await context.abort(err.code(), err.details() or "", _relayed_trailers(err))
                raise  # not reached: abort raises

        return relay

    async def _stream_once(
        self, info: LeaderInfo, method: str, request: bytes, md: Any, timeout: float | None
    ) -> AsyncIterator[bytes]:
        call = self.channel(info.address).unary_stream(method)(request, metadata=md, timeout=timeout)
        watching = asyncio.ensure_future(self.lapse(info))
        try:
            while True:
                reading = asyncio.ensure_future(call.read())
                await asyncio.wait({reading, watching}, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    reading.cancel()
                    await asyncio.gather(reading, return_exceptions=True)
                    raise _Lapsed()
                item = reading.result()  # or the leader's AioRpcError
                if item is grpc.aio.EOF:
                    return
                yield item
        finally:
            watching.cancel()
            call.cancel()
            await asyncio.gather(watching, return_exceptions=True)

    def stream(self, method: str) -> Callable[[bytes, grpc.aio.ServicerContext], AsyncIterator[bytes]]:
        resume = RESUMABLE.get(method)

        async def relay(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
            md = relayed_metadata(context.invocation_metadata(), self.replica)
            first: bytes | None = None
            failed: LeaderInfo | None = None  # the leader the last attempt lost
            lost: Unavailable | None = None  # and how
            give_up = 0.0
            while True:
                info = await self.target(context)
                if failed is not None and (info.holder, info.term) == (failed.holder, failed.term):
                    # The lost leader's lease still runs: wait for it to lapse and another to take over.
                    if self.clock.monotonic() >= give_up:
                        raise lost or self.lapsed(failed)
                    await self.clock.sleep(SETTLE_POLL_SECONDS)
                    continue
                try:
                    async for item in self._stream_once(info, method, request, md, context.time_remaining()):
                        if first is None:
                            first = item
                        yield item
                    return
                except grpc.aio.AioRpcError as err:
                    if resume is None or not is_transport_failure(err.code(), err.details() or ""):
                        await self.relay_error(info, err, context)
                        return
                    lost = self.unreachable(info, err)
                except _Lapsed:
                    if resume is None:
                        raise self.lapsed(info) from None
                    lost = self.lapsed(info)
                # Re-attach on the next leader, for the same maintenance and bounds.
                log.info("relayed %s lost the leader %s (term %d): resuming", method, info.holder, info.term)
                request = resume(request, first)
                failed, give_up = info, self.clock.monotonic() + 2 * self.settle_seconds

        return relay


class ForwardInterceptor(grpc.aio.ServerInterceptor):
    """Innermost interceptor: on a non-leader, the RPCs of `FORWARDED` get a relaying handler (raw
    bytes in and out) instead of the servicer's. Authentication and error mapping (ServiceInterceptor,
    outside it) still apply here first, so an unauthenticated call never reaches the leader."""

    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or method not in FORWARDED or self.forwarder.leadership.is_leader:
            return handler
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self.forwarder.unary(method))
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(self.forwarder.stream(method))
        return handler

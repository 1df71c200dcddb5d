"""AgentService: one bidirectional stream per agent host.

Per-message work is O(1): a heartbeat replaces the host's inventory, a result resolves one future.
Commands wait for their host to (re)connect until their deadline; a reconnecting agent is sent every
command still awaiting a result, and answers repeats from its kept results, so a command runs once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import grpc

from kvmaint.clock import Clock
from kvmaint.devcerts import peer_common_name
from kvmaint.errors import (
    ErrorReason,
    InvalidArgument,
    NotLeader,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from kvmaint.obs import logs, tracing
from kvmaint.v1 import agent_pb2, agent_pb2_grpc
from server.agents.connlog import ConnectionLog
from server.auth import current_principal
from server.domain.builds import HostBuild, Running
from server.metrics import SchedulerMetrics
from server.replica.models import LeaderInfo
from server.rpc.convert import ts

log = logging.getLogger(__name__)

SCHEDULER_VERSION = "0.1.0"
HEARTBEAT_SECONDS = 5

ProgressFn = Callable[[agent_pb2.CommandProgress], None]
# The scheduler's record of one host's managed servers (server/driver/roles.host_roles).
RolesSource = Callable[[str], Awaitable[agent_pb2.ServerRoles]]
REFRESH_SECONDS = 2.0


@dataclass
class AgentSession:
    host_id: str
    advertise_host: str
    agent_version: str
    servers: dict[int, agent_pb2.RedisServerStatus]
    # The server builds on the host, its default first (from the hello).
    builds: tuple[HostBuild, ...] = ()
    outbox: asyncio.Queue[agent_pb2.ConnectResponse | None] = field(default_factory=asyncio.Queue)
    # Roles are read and sent one at a time, so the last sent is the last read (never an older record).
    roles_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # StatusRequest id -> waiter for the heartbeat that answers it.
    refreshes: dict[int, asyncio.Future[None]] = field(default_factory=dict)

    def send(self, msg: agent_pb2.ConnectResponse | None) -> None:
        self.outbox.put_nowait(msg)


@dataclass
class _Pending:
    host: str
    command: agent_pb2.AgentCommand
    future: asyncio.Future[agent_pb2.CommandResult]
    progress: list[ProgressFn]


def _peer_is_loopback(peer: str) -> bool:
    return peer.startswith(("ipv4:127.", "ipv6:[::1]", "unix:"))


class Fence(Protocol):
    """What the hub needs of server/replica/leader.Leadership (None: one scheduler, always acting)."""

    @property
    def is_leader(self) -> bool: ...

    @property
    def term(self) -> int: ...

    @property
    def known(self) -> LeaderInfo | None: ...

    @property
    def replica_id(self) -> str: ...

    def step_down(self, why: str) -> None: ...


class AgentHub(agent_pb2_grpc.AgentServiceServicer):
    def __init__(
        self,
        clock: Clock,
        *,
        require_certificates: bool,
        require_agent_token: bool = False,
        on_hello: Callable[[AgentSession], None] | None = None,
        metrics: SchedulerMetrics | None = None,
    ) -> None:
        self.clock = clock
        self.metrics = metrics or SchedulerMetrics()
        self.metrics.count_agents(lambda: len(self.sessions))
        self.require_certificates = require_certificates
        self.require_agent_token = require_agent_token
        self.sessions: dict[str, AgentSession] = {}
        self._pending: dict[str, _Pending] = {}
        # The same commands by host, so a (re)connecting agent costs O(its own pending commands).
        self._pending_by_host: dict[str, dict[str, _Pending]] = {}
        self._on_hello = on_hello
        self.connlog = ConnectionLog(log, clock)  # bounded in a reconnect storm (agents/connlog.py)
        # host id -> advertise host, kept after disconnects (config vars name servers by it).
        self.advertised: dict[str, str] = {}
        # Set by the app: what each host's servers are in the record, sent to its agent's keeper.
        self.roles_source: RolesSource | None = None
        self._refresh_ids = 0
        # Set by the app on replicas: only the leader holds agent streams and sends commands, each
        # carrying its term.
        self.leadership: Fence | None = None
        # How often the leader sends LeaderBeat (0: never), so agents of a paused leader move on.
        self.beat_seconds = 0.0

    # --- the stream -------------------------------------------------------------------------
    def _check_identity(self, host_id: str, context: grpc.aio.ServicerContext) -> None:
        name = peer_common_name(context.auth_context() or {})
        if name is not None:
            if name != host_id:
                raise PermissionDenied(
                    f"This certificate is for host {name}; it cannot act as host {host_id}."
                )
            return
        if self.require_certificates:
            raise Unauthenticated("Agents must present a client certificate signed by the scheduler's CA.")
        if not _peer_is_loopback(context.peer()):
            raise Unauthenticated("Plain-text agents are accepted on loopback only; use mutual TLS.")
        if self.require_agent_token:
            # Without mTLS, with tokens: only an agent token, bound to this host or to any.
            principal = current_principal.get()
            if not principal.is_agent:
                raise Unauthenticated(
                    'Without mutual TLS an agent must present an agent token (role = "agent" in the '
                    "scheduler's tokens file): pass kvmaint-agent --token."
                )
            if not principal.may_be_host(host_id):
                raise PermissionDenied(
                    f"This agent token is for host(s) {', '.join(sorted(principal.hosts))}; it cannot act "
                    f"as host {host_id}."
                )

    @property
    def term(self) -> int:
        return self.leadership.term if self.leadership is not None else 0

    def acting(self) -> bool:
        return self.leadership is None or self.leadership.is_leader

    def _refuse_unless_leader(self) -> None:
        """Agents follow the leader: a replica that does not lead names the one that does, if known."""
        if self.acting():
            return
        assert self.leadership is not None
        known = self.leadership.known
        if known is not None and known.holder != self.leadership.replica_id:
            raise NotLeader(
                f"This scheduler replica does not lead; connect to the leader at {known.agent_address}.",
                metadata={"leader": known.agent_address},
            )
        raise NotLeader("This scheduler replica does not lead and no leader is known yet; try another.")

    def drop_all(self) -> None:
        """Ends every agent stream (on losing leadership): agents reconnect and find the new leader."""
        for session in list(self.sessions.values()):
            session.send(None)

    async def beat(self) -> None:
        """Sends LeaderBeat to every agent every `beat_seconds` while leading."""
        while True:
            await self.clock.sleep(self.beat_seconds)
            if not self.acting():
                continue
            msg = agent_pb2.ConnectResponse(beat=agent_pb2.LeaderBeat(term=self.term))
            for session in list(self.sessions.values()):
                session.send(msg)

    async def Connect(
        self, request_iterator: AsyncIterator[agent_pb2.ConnectRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[agent_pb2.ConnectResponse]:
        self._refuse_unless_leader()
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("body") != "hello":
            raise InvalidArgument.field("hello", "The first message on the agent stream must be a hello.")
        hello = first.hello
        if not hello.host_id or len(hello.host_id) > 63:
            raise InvalidArgument.field(
                "hello.host_id", "The hello must carry a host id of 1 to 63 characters."
            )
        self._check_identity(hello.host_id, context)
        self._refuse_unless_leader()
        logs.bind(host=hello.host_id)

        session = AgentSession(
            host_id=hello.host_id,
            advertise_host=hello.advertise_host or "127.0.0.1",
            agent_version=hello.agent_version,
            servers={s.port: s for s in hello.servers},
            builds=tuple(HostBuild(hello.host_id, b.name, b.version, b.kind) for b in hello.builds),
        )
        previous = self.sessions.get(session.host_id)
        if previous is not None:
            previous.send(None)  # the newer stream wins
        self.sessions[session.host_id] = session
        self.advertised[session.host_id] = session.advertise_host
        self.connlog.connected(session.host_id, session.advertise_host, len(session.servers))
        if self._on_hello is not None:
            self._on_hello(session)

        session.send(
            agent_pb2.ConnectResponse(
                welcome=agent_pb2.SchedulerWelcome(
                    scheduler_version=SCHEDULER_VERSION,
                    heartbeat_interval_seconds=HEARTBEAT_SECONDS,
                    term=self.term,
                    beat_interval_ms=int(self.beat_seconds * 1000),
                )
            )
        )
        # The roles before any command: a keeper must know a maintenance holds a server before the
        # maintenance's first command reaches it.
        await self._send_roles(session)
        for pending in self._pending_by_host.get(session.host_id, {}).values():
            session.send(agent_pb2.ConnectResponse(command=pending.command))

        reader = asyncio.create_task(self._read(session, request_iterator))
        try:
            while True:
                msg = await session.outbox.get()
                if msg is None:
                    return
                yield msg
        finally:
            reader.cancel()
            if self.sessions.get(session.host_id) is session:
                del self.sessions[session.host_id]
                self.connlog.disconnected(session.host_id)

    async def _read(self, session: AgentSession, requests: AsyncIterator[agent_pb2.ConnectRequest]) -> None:
        try:
            async for msg in requests:
                kind = msg.WhichOneof("body")
                if kind == "heartbeat":
                    session.servers = {s.port: s for s in msg.heartbeat.servers}
                    waiter = session.refreshes.pop(msg.heartbeat.answers, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
                elif kind == "result":
                    if msg.result.HasField("server") and msg.result.server.port:
                        # Fresher than the last heartbeat: roles change with failovers.
                        session.servers[msg.result.server.port] = msg.result.server
                    pending = self._pending.get(msg.result.command_id)
                    if pending is not None and not pending.future.done():
                        pending.future.set_result(msg.result)
                elif kind == "progress":
                    pending = self._pending.get(msg.progress.command_id)
                    for fn in pending.progress if pending else ():
                        fn(msg.progress)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("agent %s stream failed", session.host_id)
        finally:
            session.send(None)

    # --- roles and fresh reports -----------------------------------------------------------
    async def _send_roles(self, session: AgentSession) -> None:
        if self.roles_source is None:
            return
        async with session.roles_lock:
            try:
                roles = await self.roles_source(session.host_id)
            except Exception:
                log.exception("could not read the roles of host %s", session.host_id)
                return
            if not self.acting():
                return
            roles.term = self.term
            session.send(agent_pb2.ConnectResponse(roles=roles))

    async def push_roles(self, hosts: Iterable[str]) -> None:
        """Sends each connected host's roles as the record has them now (after the commit that changed
        them). A host not connected gets them with its next hello."""
        for host in sorted(set(hosts)):
            session = self.sessions.get(host)
            if session is not None:
                await self._send_roles(session)

    async def refresh(self, hosts: Iterable[str], timeout: float = REFRESH_SECONDS) -> bool:
        """Asks each connected host for a heartbeat now and waits (up to `timeout`) until they arrived, so
        the next status read sees the servers as they are, not as a heartbeat before a failover saw them.
        False when some did not answer in time (an agent older than StatusRequest, or a slow one)."""
        waiters: dict[asyncio.Future[None], tuple[AgentSession, int]] = {}
        for host in sorted(set(hosts)):
            session = self.sessions.get(host)
            if session is None:
                continue
            self._refresh_ids += 1
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            session.refreshes[self._refresh_ids] = waiter
            session.send(
                agent_pb2.ConnectResponse(status_request=agent_pb2.StatusRequest(id=self._refresh_ids))
            )
            waiters[waiter] = (session, self._refresh_ids)
        if not waiters:
            return True
        with contextlib.suppress(TimeoutError):  # asyncio.wait never cancels the waiters themselves
            await self.clock.wait_for(asyncio.wait(waiters), timeout)
        pending = [waiter for waiter in waiters if not waiter.done()]
        for waiter in pending:
            session, request_id = waiters[waiter]
            session.refreshes.pop(request_id, None)
            waiter.cancel()
        return not pending

    # --- commands ---------------------------------------------------------------------------
    def is_connected(self, host: str) -> bool:
        return host in self.sessions

    def server_status(self, host: str, port: int) -> agent_pb2.RedisServerStatus | None:
        session = self.sessions.get(host)
        return session.servers.get(port) if session else None

    def endpoint_host(self, host: str) -> str:
        return self.advertised.get(host, host)

    def host_builds(self) -> list[HostBuild]:
        """Every connected host's builds."""
        return [b for host in sorted(self.sessions) for b in self.sessions[host].builds]

    def builds_of(self, host: str) -> tuple[HostBuild, ...] | None:
        """A connected host's builds; None when it is not connected."""
        session = self.sessions.get(host)
        return session.builds if session is not None else None

    def running(self, host: str, port: int) -> Running | None:
        """What a server runs, as its agent last reported; None when unknown or unreachable."""
        status = self.server_status(host, port)
        if status is None or not status.reachable:
            return None
        return Running(status.build, status.version)

    def running_servers(self) -> dict[str, Running]:
        """What every reachable server runs, by host:port, as its agent last reported."""
        return {
            f"{host}:{port}": Running(st.build, st.version)
            for host, session in self.sessions.items()
            for port, st in session.servers.items()
            if st.reachable
        }

    async def call(
        self,
        host: str,
        command_id: str,
        action: str,
        message: object,
        timeout: float,
        progress: ProgressFn | None = None,
    ) -> agent_pb2.CommandResult:
        """Sends one command and waits for its result, across agent reconnects, until `timeout`.

        Only while leading, under the leader's term; an agent's STALE_TERM refusal means a newer leader
        exists: this replica steps down and the caller gets NotLeader (its maintenance is not failed)."""
        if not self.acting():
            raise NotLeader(f"Not sending {action} to {host}: this scheduler replica no longer leads.")
        pending = self._pending.get(command_id)
        if pending is not None and pending.command.term != self.term:
            self._forget(pending, command_id)  # an older term's: resent under ours
            pending = None
        if pending is None:
            cmd = agent_pb2.AgentCommand(
                command_id=command_id,
                deadline=ts(self.clock.now() + timedelta(seconds=timeout)),
                term=self.term,
            )
            getattr(cmd, action).CopyFrom(message)
            cmd.trace_context.update(tracing.inject())
            pending = _Pending(host, cmd, asyncio.get_running_loop().create_future(), [])
            self._pending[command_id] = pending
            self._pending_by_host.setdefault(host, {})[command_id] = pending
            session = self.sessions.get(host)
            if session is not None:
                session.send(agent_pb2.ConnectResponse(command=cmd))
        if progress is not None:
            pending.progress.append(progress)
        started = time.monotonic()  # real time on purpose: the command-duration histogram, no decision
        try:
            result = await self.clock.wait_for(asyncio.shield(pending.future), timeout)
            self.metrics.command(action, started, "ok" if result.ok else "failed")
            if not result.ok and result.reason == ErrorReason.STALE_TERM:
                if self.leadership is not None:
                    self.leadership.step_down(f"agent {host} refused {command_id}: {result.error}")
                raise NotLeader(
                    f"Agent {host} refused {action}: {result.error}", reason=ErrorReason.STALE_TERM
                )
            return result
        except TimeoutError:
            self.metrics.command(action, started, "timeout")
            state = "connected" if self.is_connected(host) else "not connected"
            raise Unavailable(
                f"Agent {host} ({state}) did not answer {action} within {timeout:.1f} s."
            ) from None
        finally:
            self._forget(pending, command_id)

    def _forget(self, pending: _Pending, command_id: str) -> None:
        if self._pending.get(command_id) is pending:
            del self._pending[command_id]
            by_host = self._pending_by_host.get(pending.host, {})
            by_host.pop(command_id, None)
            if not by_host:
                self._pending_by_host.pop(pending.host, None)

    def hosts(self) -> list[str]:
        return sorted(self.sessions)

    def lag_bytes(self, status: agent_pb2.RedisServerStatus) -> int:
        """A replica's distance from its primary, from the latest reports of both (-1: unknown)."""
        if status.role != "slave":
            return 0
        for session in self.sessions.values():
            if session.advertise_host == status.primary_host or session.host_id == status.primary_host:
                primary = session.servers.get(status.primary_port)
                if primary is not None:
                    return max(0, primary.repl_offset - status.repl_offset)
        return -1

    def describe(self) -> list[tuple[str, str, str, bool, list[agent_pb2.RedisServerStatus]]]:
        """(host id, advertise host, version, connected, servers) for every host ever seen."""
        out = []
        for host in sorted(set(self.advertised) | set(self.sessions)):
            session = self.sessions.get(host)
            if session is not None:
                out.append(
                    (
                        host,
                        session.advertise_host,
                        session.agent_version,
                        True,
                        sorted(session.servers.values(), key=lambda s: s.port),
                    )
                )
            else:
                out.append((host, self.advertised[host], "", False, []))
        return out

"""The RPC edge: AgentCommand protos in, CommandResult and status protos out. Nothing else touches *_pb2."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.builds import Build
from agent.keep import Assignment, Report, Supervision
from agent.outcome import Outcome
from agent.redisnode.acl import Credentials, ServerAuth
from agent.redisnode.role import DesiredRole
from agent.redisnode.status import RedisServerStatus
from kvmaint.notices import Notice, NoticeType
from kvmaint.v1 import agent_pb2, resources_pb2


@dataclass(frozen=True)
class CatchUpCheck:
    port: int
    primary_host: str
    primary_port: int
    max_lag_bytes: int
    max_last_io_seconds: int


@dataclass(frozen=True)
class Failover:
    port: int
    target_host: str
    target_port: int
    timeout_ms: int
    # Notices to publish around the switch (kvmaint/notices.py); None: none (older schedulers).
    failing_over: Notice | None = None
    failed_over: Notice | None = None


@dataclass(frozen=True)
class PublishNotice:
    port: int
    notice: Notice


@dataclass(frozen=True)
class ForcePromote:
    port: int
    last_lag_bytes: int
    max_lag_bytes: int


@dataclass(frozen=True)
class StartServer:
    port: int
    replicate_from_host: str
    replicate_from_port: int
    # Empty: the host's default build.
    build: str = ""
    # The add-on's ACL users; None: no authentication (older schedulers).
    auth: ServerAuth | None = None


@dataclass(frozen=True)
class RestartServer:
    port: int
    # The scheduler's record of the server's role; None: the role in its config (older schedulers).
    role: DesiredRole | None = None
    # Empty: the build it runs.
    build: str = ""


@dataclass(frozen=True)
class Invalid:
    """A command that cannot be run as sent; answered with `reason`."""

    reason: str


@dataclass(frozen=True)
class StopServer:
    port: int


@dataclass(frozen=True)
class ReplicateFrom:
    port: int
    primary_host: str
    primary_port: int


Action = (
    CatchUpCheck
    | Failover
    | ForcePromote
    | StartServer
    | RestartServer
    | StopServer
    | ReplicateFrom
    | PublishNotice
    | Invalid
)


@dataclass(frozen=True)
class Command:
    command_id: str
    # None: no deadline.
    deadline: datetime | None
    action: Action | None
    # W3C headers of the scheduler's step span (traceparent, baggage).
    trace_context: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return type(self.action).__name__ if self.action is not None else "unknown"


def command_from_proto(msg: agent_pb2.AgentCommand) -> Command:
    deadline = None
    if msg.HasField("deadline") and (msg.deadline.seconds or msg.deadline.nanos):
        deadline = msg.deadline.ToDatetime(tzinfo=UTC)
    which = msg.WhichOneof("action")
    action: Action | None = None
    if which == "catch_up_check":
        c = msg.catch_up_check
        action = CatchUpCheck(c.port, c.primary_host, c.primary_port, c.max_lag_bytes, c.max_last_io_seconds)
    elif which == "failover":
        f = msg.failover
        action = Failover(
            f.port,
            f.target_host,
            f.target_port,
            f.timeout_ms,
            notice_from_proto(f.failing_over) if f.HasField("failing_over") else None,
            notice_from_proto(f.failed_over) if f.HasField("failed_over") else None,
        )
    elif which == "force_promote":
        p = msg.force_promote
        action = ForcePromote(p.port, p.last_lag_bytes, p.max_lag_bytes)
    elif which == "start_server":
        s = msg.start_server
        action = StartServer(s.port, s.replicate_from_host, s.replicate_from_port, s.build, _auth(s))
    elif which == "restart_server":
        action = _restart(msg.restart_server)
    elif which == "stop_server":
        action = StopServer(msg.stop_server.port)
    elif which == "replicate_from":
        r = msg.replicate_from
        action = ReplicateFrom(r.port, r.primary_host, r.primary_port)
    elif which == "publish_notice":
        n = msg.publish_notice
        notice = notice_from_proto(n.notice)
        action = PublishNotice(n.port, notice) if notice is not None else Invalid(_BAD_NOTICE)
    return Command(msg.command_id, deadline, action, dict(msg.trace_context))


_BAD_NOTICE = "publish_notice.notice.type is not a notice type this agent knows."


def notice_from_proto(n: agent_pb2.MaintenanceNotice) -> Notice | None:
    """None for a type this agent does not know (a newer scheduler's)."""
    try:
        kind = NoticeType(n.type)
    except ValueError:
        return None
    return Notice(kind, n.maintenance_id, n.addon, dict(n.fields))


def _restart(r: agent_pb2.RestartServerCommand) -> RestartServer | Invalid:
    if not r.HasField("role"):
        return RestartServer(r.port, build=r.build)
    if r.role.primary:
        return RestartServer(r.port, DesiredRole.primary(), r.build)
    if not r.role.primary_host or not 0 < r.role.primary_port < 65536:
        return Invalid("restart_server.role must be primary or name the primary's host and port.")
    return RestartServer(r.port, DesiredRole.replica_of(r.role.primary_host, r.role.primary_port), r.build)


def _auth(s: agent_pb2.StartServerCommand) -> ServerAuth | None:
    if not s.HasField("auth"):
        return None
    a = s.auth
    return ServerAuth(Credentials(a.app_user, a.app_password), Credentials(a.agent_user, a.agent_password))


def status_to_proto(status: RedisServerStatus) -> agent_pb2.RedisServerStatus:
    return agent_pb2.RedisServerStatus(
        port=status.port,
        reachable=status.reachable,
        role=status.role,
        run_id=status.run_id,
        redis_version=status.redis_version,
        repl_offset=status.repl_offset,
        primary_host=status.primary_host,
        primary_port=status.primary_port,
        link_up=status.link_up,
        last_io_seconds_ago=status.last_io_seconds_ago,
        replicas=[
            agent_pb2.ReplicaStatus(
                ip=r.ip, port=r.port, state=r.state, offset=r.offset, lag_seconds=r.lag_seconds
            )
            for r in status.replicas
        ],
        managed=status.managed,
        error=status.error,
        build=status.build,
        version=status.version,
        tls=status.tls,
    )


_SUPERVISION = {
    Supervision.KEPT: agent_pb2.SUPERVISION_KEPT,
    Supervision.WATCHED: agent_pb2.SUPERVISION_WATCHED,
    Supervision.NO_ROLE: agent_pb2.SUPERVISION_NO_ROLE,
    Supervision.HELD: agent_pb2.SUPERVISION_HELD,
    Supervision.RESTARTING: agent_pb2.SUPERVISION_RESTARTING,
    Supervision.CRASH_LOOPING: agent_pb2.SUPERVISION_CRASH_LOOPING,
}


def supervision_to_proto(msg: agent_pb2.RedisServerStatus, report: Report) -> None:
    msg.supervision = _SUPERVISION[report.supervision]
    msg.restarts = report.restarts
    msg.supervision_detail = report.detail


def roles_from_proto(roles: agent_pb2.ServerRoles) -> dict[int, Assignment]:
    out: dict[int, Assignment] = {}
    for entry in roles.servers:
        if entry.port <= 0:
            continue
        r = entry.role
        role = DesiredRole.primary() if r.primary else DesiredRole.replica_of(r.primary_host, r.primary_port)
        out[entry.port] = Assignment(role, entry.addon, entry.hold)
    return out


def build_to_proto(build: Build, is_default: bool) -> resources_pb2.ServerBuild:
    return resources_pb2.ServerBuild(
        name=build.name, version=build.version, kind=build.kind, is_default=is_default
    )


def outcome_to_result(command_id: str, outcome: Outcome) -> agent_pb2.CommandResult:
    result = agent_pb2.CommandResult(
        command_id=command_id,
        ok=outcome.ok,
        error=outcome.error if not outcome.ok else "",
        message=outcome.message or (outcome.error if not outcome.ok else ""),
        lag_bytes=outcome.lag_bytes,
        last_io_seconds_ago=outcome.last_io_seconds_ago,
        link_up=outcome.link_up,
        write_pause_ms=outcome.write_pause_ms,
        port=outcome.port,
        fields=outcome.fields,
    )
    if outcome.server is not None:
        result.server.CopyFrom(status_to_proto(outcome.server))
    return result


def progress_message(
    command_id: str, message: str, lag_bytes: int = 0, fields: dict[str, str] | None = None
) -> agent_pb2.ConnectRequest:
    return agent_pb2.ConnectRequest(
        progress=agent_pb2.CommandProgress(
            command_id=command_id, message=message, lag_bytes=lag_bytes, fields=fields or {}
        )
    )

import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kvmaint.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Supervision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUPERVISION_UNSPECIFIED: _ClassVar[Supervision]
    SUPERVISION_KEPT: _ClassVar[Supervision]
    SUPERVISION_WATCHED: _ClassVar[Supervision]
    SUPERVISION_NO_ROLE: _ClassVar[Supervision]
    SUPERVISION_HELD: _ClassVar[Supervision]
    SUPERVISION_RESTARTING: _ClassVar[Supervision]
    SUPERVISION_CRASH_LOOPING: _ClassVar[Supervision]
SUPERVISION_UNSPECIFIED: Supervision
SUPERVISION_KEPT: Supervision
SUPERVISION_WATCHED: Supervision
SUPERVISION_NO_ROLE: Supervision
SUPERVISION_HELD: Supervision
SUPERVISION_RESTARTING: Supervision
SUPERVISION_CRASH_LOOPING: Supervision

class ConnectRequest(_message.Message):
    __slots__ = ("hello", "heartbeat", "progress", "result")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    hello: AgentHello
    heartbeat: AgentHeartbeat
    progress: CommandProgress
    result: CommandResult
    def __init__(self, hello: _Optional[_Union[AgentHello, _Mapping]] = ..., heartbeat: _Optional[_Union[AgentHeartbeat, _Mapping]] = ..., progress: _Optional[_Union[CommandProgress, _Mapping]] = ..., result: _Optional[_Union[CommandResult, _Mapping]] = ...) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("welcome", "command", "roles", "status_request", "beat")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    STATUS_REQUEST_FIELD_NUMBER: _ClassVar[int]
    BEAT_FIELD_NUMBER: _ClassVar[int]
    welcome: SchedulerWelcome
    command: AgentCommand
    roles: ServerRoles
    status_request: StatusRequest
    beat: LeaderBeat
    def __init__(self, welcome: _Optional[_Union[SchedulerWelcome, _Mapping]] = ..., command: _Optional[_Union[AgentCommand, _Mapping]] = ..., roles: _Optional[_Union[ServerRoles, _Mapping]] = ..., status_request: _Optional[_Union[StatusRequest, _Mapping]] = ..., beat: _Optional[_Union[LeaderBeat, _Mapping]] = ...) -> None: ...

class LeaderBeat(_message.Message):
    __slots__ = ("term",)
    TERM_FIELD_NUMBER: _ClassVar[int]
    term: int
    def __init__(self, term: _Optional[int] = ...) -> None: ...

class ManagedRole(_message.Message):
    __slots__ = ("port", "role", "addon", "hold")
    PORT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ADDON_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    port: int
    role: DesiredRole
    addon: str
    hold: bool
    def __init__(self, port: _Optional[int] = ..., role: _Optional[_Union[DesiredRole, _Mapping]] = ..., addon: _Optional[str] = ..., hold: _Optional[bool] = ...) -> None: ...

class ServerRoles(_message.Message):
    __slots__ = ("servers", "term")
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    servers: _containers.RepeatedCompositeFieldContainer[ManagedRole]
    term: int
    def __init__(self, servers: _Optional[_Iterable[_Union[ManagedRole, _Mapping]]] = ..., term: _Optional[int] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class ReplicaStatus(_message.Message):
    __slots__ = ("ip", "port", "state", "offset", "lag_seconds")
    IP_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LAG_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ip: str
    port: int
    state: str
    offset: int
    lag_seconds: int
    def __init__(self, ip: _Optional[str] = ..., port: _Optional[int] = ..., state: _Optional[str] = ..., offset: _Optional[int] = ..., lag_seconds: _Optional[int] = ...) -> None: ...

class RedisServerStatus(_message.Message):
    __slots__ = ("port", "reachable", "role", "run_id", "redis_version", "repl_offset", "primary_host", "primary_port", "link_up", "last_io_seconds_ago", "replicas", "managed", "error", "build", "version", "tls", "supervision", "restarts", "supervision_detail")
    PORT_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REDIS_VERSION_FIELD_NUMBER: _ClassVar[int]
    REPL_OFFSET_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_HOST_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_PORT_FIELD_NUMBER: _ClassVar[int]
    LINK_UP_FIELD_NUMBER: _ClassVar[int]
    LAST_IO_SECONDS_AGO_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    MANAGED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    SUPERVISION_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    SUPERVISION_DETAIL_FIELD_NUMBER: _ClassVar[int]
    port: int
    reachable: bool
    role: str
    run_id: str
    redis_version: str
    repl_offset: int
    primary_host: str
    primary_port: int
    link_up: bool
    last_io_seconds_ago: int
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaStatus]
    managed: bool
    error: str
    build: str
    version: str
    tls: bool
    supervision: Supervision
    restarts: int
    supervision_detail: str
    def __init__(self, port: _Optional[int] = ..., reachable: _Optional[bool] = ..., role: _Optional[str] = ..., run_id: _Optional[str] = ..., redis_version: _Optional[str] = ..., repl_offset: _Optional[int] = ..., primary_host: _Optional[str] = ..., primary_port: _Optional[int] = ..., link_up: _Optional[bool] = ..., last_io_seconds_ago: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[ReplicaStatus, _Mapping]]] = ..., managed: _Optional[bool] = ..., error: _Optional[str] = ..., build: _Optional[str] = ..., version: _Optional[str] = ..., tls: _Optional[bool] = ..., supervision: _Optional[_Union[Supervision, str]] = ..., restarts: _Optional[int] = ..., supervision_detail: _Optional[str] = ...) -> None: ...

class AgentHello(_message.Message):
    __slots__ = ("host_id", "agent_version", "advertise_host", "servers", "builds")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    ADVERTISE_HOST_FIELD_NUMBER: _ClassVar[int]
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    BUILDS_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    agent_version: str
    advertise_host: str
    servers: _containers.RepeatedCompositeFieldContainer[RedisServerStatus]
    builds: _containers.RepeatedCompositeFieldContainer[_resources_pb2.ServerBuild]
    def __init__(self, host_id: _Optional[str] = ..., agent_version: _Optional[str] = ..., advertise_host: _Optional[str] = ..., servers: _Optional[_Iterable[_Union[RedisServerStatus, _Mapping]]] = ..., builds: _Optional[_Iterable[_Union[_resources_pb2.ServerBuild, _Mapping]]] = ...) -> None: ...

class AgentHeartbeat(_message.Message):
    __slots__ = ("servers", "answers")
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    servers: _containers.RepeatedCompositeFieldContainer[RedisServerStatus]
    answers: int
    def __init__(self, servers: _Optional[_Iterable[_Union[RedisServerStatus, _Mapping]]] = ..., answers: _Optional[int] = ...) -> None: ...

class SchedulerWelcome(_message.Message):
    __slots__ = ("scheduler_version", "heartbeat_interval_seconds", "term", "beat_interval_ms")
    SCHEDULER_VERSION_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    BEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    scheduler_version: str
    heartbeat_interval_seconds: int
    term: int
    beat_interval_ms: int
    def __init__(self, scheduler_version: _Optional[str] = ..., heartbeat_interval_seconds: _Optional[int] = ..., term: _Optional[int] = ..., beat_interval_ms: _Optional[int] = ...) -> None: ...

class CatchUpCheckCommand(_message.Message):
    __slots__ = ("port", "primary_host", "primary_port", "max_lag_bytes", "max_last_io_seconds")
    PORT_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_HOST_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_PORT_FIELD_NUMBER: _ClassVar[int]
    MAX_LAG_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_LAST_IO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    port: int
    primary_host: str
    primary_port: int
    max_lag_bytes: int
    max_last_io_seconds: int
    def __init__(self, port: _Optional[int] = ..., primary_host: _Optional[str] = ..., primary_port: _Optional[int] = ..., max_lag_bytes: _Optional[int] = ..., max_last_io_seconds: _Optional[int] = ...) -> None: ...

class FailoverCommand(_message.Message):
    __slots__ = ("port", "target_host", "target_port", "timeout_ms", "failing_over", "failed_over")
    PORT_FIELD_NUMBER: _ClassVar[int]
    TARGET_HOST_FIELD_NUMBER: _ClassVar[int]
    TARGET_PORT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    FAILING_OVER_FIELD_NUMBER: _ClassVar[int]
    FAILED_OVER_FIELD_NUMBER: _ClassVar[int]
    port: int
    target_host: str
    target_port: int
    timeout_ms: int
    failing_over: MaintenanceNotice
    failed_over: MaintenanceNotice
    def __init__(self, port: _Optional[int] = ..., target_host: _Optional[str] = ..., target_port: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., failing_over: _Optional[_Union[MaintenanceNotice, _Mapping]] = ..., failed_over: _Optional[_Union[MaintenanceNotice, _Mapping]] = ...) -> None: ...

class MaintenanceNotice(_message.Message):
    __slots__ = ("type", "maintenance_id", "addon", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDON_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    type: str
    maintenance_id: str
    addon: str
    fields: _containers.ScalarMap[str, str]
    def __init__(self, type: _Optional[str] = ..., maintenance_id: _Optional[str] = ..., addon: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PublishNoticeCommand(_message.Message):
    __slots__ = ("port", "notice")
    PORT_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    port: int
    notice: MaintenanceNotice
    def __init__(self, port: _Optional[int] = ..., notice: _Optional[_Union[MaintenanceNotice, _Mapping]] = ...) -> None: ...

class ForcePromoteCommand(_message.Message):
    __slots__ = ("port", "last_lag_bytes", "max_lag_bytes")
    PORT_FIELD_NUMBER: _ClassVar[int]
    LAST_LAG_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_LAG_BYTES_FIELD_NUMBER: _ClassVar[int]
    port: int
    last_lag_bytes: int
    max_lag_bytes: int
    def __init__(self, port: _Optional[int] = ..., last_lag_bytes: _Optional[int] = ..., max_lag_bytes: _Optional[int] = ...) -> None: ...

class StartServerCommand(_message.Message):
    __slots__ = ("port", "replicate_from_host", "replicate_from_port", "build", "auth")
    PORT_FIELD_NUMBER: _ClassVar[int]
    REPLICATE_FROM_HOST_FIELD_NUMBER: _ClassVar[int]
    REPLICATE_FROM_PORT_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    port: int
    replicate_from_host: str
    replicate_from_port: int
    build: str
    auth: ServerAuth
    def __init__(self, port: _Optional[int] = ..., replicate_from_host: _Optional[str] = ..., replicate_from_port: _Optional[int] = ..., build: _Optional[str] = ..., auth: _Optional[_Union[ServerAuth, _Mapping]] = ...) -> None: ...

class ServerAuth(_message.Message):
    __slots__ = ("app_user", "app_password", "agent_user", "agent_password")
    APP_USER_FIELD_NUMBER: _ClassVar[int]
    APP_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    AGENT_USER_FIELD_NUMBER: _ClassVar[int]
    AGENT_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    app_user: str
    app_password: str
    agent_user: str
    agent_password: str
    def __init__(self, app_user: _Optional[str] = ..., app_password: _Optional[str] = ..., agent_user: _Optional[str] = ..., agent_password: _Optional[str] = ...) -> None: ...

class DesiredRole(_message.Message):
    __slots__ = ("primary", "primary_host", "primary_port")
    PRIMARY_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_HOST_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_PORT_FIELD_NUMBER: _ClassVar[int]
    primary: bool
    primary_host: str
    primary_port: int
    def __init__(self, primary: _Optional[bool] = ..., primary_host: _Optional[str] = ..., primary_port: _Optional[int] = ...) -> None: ...

class RestartServerCommand(_message.Message):
    __slots__ = ("port", "role", "build")
    PORT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    port: int
    role: DesiredRole
    build: str
    def __init__(self, port: _Optional[int] = ..., role: _Optional[_Union[DesiredRole, _Mapping]] = ..., build: _Optional[str] = ...) -> None: ...

class StopServerCommand(_message.Message):
    __slots__ = ("port",)
    PORT_FIELD_NUMBER: _ClassVar[int]
    port: int
    def __init__(self, port: _Optional[int] = ...) -> None: ...

class ReplicateFromCommand(_message.Message):
    __slots__ = ("port", "primary_host", "primary_port")
    PORT_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_HOST_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_PORT_FIELD_NUMBER: _ClassVar[int]
    port: int
    primary_host: str
    primary_port: int
    def __init__(self, port: _Optional[int] = ..., primary_host: _Optional[str] = ..., primary_port: _Optional[int] = ...) -> None: ...

class AgentCommand(_message.Message):
    __slots__ = ("command_id", "deadline", "catch_up_check", "failover", "force_promote", "start_server", "restart_server", "stop_server", "replicate_from", "publish_notice", "trace_context", "term")
    class TraceContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_CHECK_FIELD_NUMBER: _ClassVar[int]
    FAILOVER_FIELD_NUMBER: _ClassVar[int]
    FORCE_PROMOTE_FIELD_NUMBER: _ClassVar[int]
    START_SERVER_FIELD_NUMBER: _ClassVar[int]
    RESTART_SERVER_FIELD_NUMBER: _ClassVar[int]
    STOP_SERVER_FIELD_NUMBER: _ClassVar[int]
    REPLICATE_FROM_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_NOTICE_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    deadline: _timestamp_pb2.Timestamp
    catch_up_check: CatchUpCheckCommand
    failover: FailoverCommand
    force_promote: ForcePromoteCommand
    start_server: StartServerCommand
    restart_server: RestartServerCommand
    stop_server: StopServerCommand
    replicate_from: ReplicateFromCommand
    publish_notice: PublishNoticeCommand
    trace_context: _containers.ScalarMap[str, str]
    term: int
    def __init__(self, command_id: _Optional[str] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., catch_up_check: _Optional[_Union[CatchUpCheckCommand, _Mapping]] = ..., failover: _Optional[_Union[FailoverCommand, _Mapping]] = ..., force_promote: _Optional[_Union[ForcePromoteCommand, _Mapping]] = ..., start_server: _Optional[_Union[StartServerCommand, _Mapping]] = ..., restart_server: _Optional[_Union[RestartServerCommand, _Mapping]] = ..., stop_server: _Optional[_Union[StopServerCommand, _Mapping]] = ..., replicate_from: _Optional[_Union[ReplicateFromCommand, _Mapping]] = ..., publish_notice: _Optional[_Union[PublishNoticeCommand, _Mapping]] = ..., trace_context: _Optional[_Mapping[str, str]] = ..., term: _Optional[int] = ...) -> None: ...

class CommandProgress(_message.Message):
    __slots__ = ("command_id", "message", "lag_bytes", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAG_BYTES_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    message: str
    lag_bytes: int
    fields: _containers.ScalarMap[str, str]
    def __init__(self, command_id: _Optional[str] = ..., message: _Optional[str] = ..., lag_bytes: _Optional[int] = ..., fields: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CommandResult(_message.Message):
    __slots__ = ("command_id", "ok", "error", "message", "server", "lag_bytes", "last_io_seconds_ago", "link_up", "write_pause_ms", "port", "fields", "reason")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    LAG_BYTES_FIELD_NUMBER: _ClassVar[int]
    LAST_IO_SECONDS_AGO_FIELD_NUMBER: _ClassVar[int]
    LINK_UP_FIELD_NUMBER: _ClassVar[int]
    WRITE_PAUSE_MS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    ok: bool
    error: str
    message: str
    server: RedisServerStatus
    lag_bytes: int
    last_io_seconds_ago: int
    link_up: bool
    write_pause_ms: int
    port: int
    fields: _containers.ScalarMap[str, str]
    reason: str
    def __init__(self, command_id: _Optional[str] = ..., ok: _Optional[bool] = ..., error: _Optional[str] = ..., message: _Optional[str] = ..., server: _Optional[_Union[RedisServerStatus, _Mapping]] = ..., lag_bytes: _Optional[int] = ..., last_io_seconds_ago: _Optional[int] = ..., link_up: _Optional[bool] = ..., write_pause_ms: _Optional[int] = ..., port: _Optional[int] = ..., fields: _Optional[_Mapping[str, str]] = ..., reason: _Optional[str] = ...) -> None: ...

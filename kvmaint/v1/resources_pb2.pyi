import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ServerRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVER_ROLE_UNSPECIFIED: _ClassVar[ServerRole]
    SERVER_ROLE_PRIMARY: _ClassVar[ServerRole]
    SERVER_ROLE_STANDBY: _ClassVar[ServerRole]
    SERVER_ROLE_HIDDEN_STANDBY: _ClassVar[ServerRole]

class MaintenanceReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MAINTENANCE_REASON_UNSPECIFIED: _ClassVar[MaintenanceReason]
    MAINTENANCE_REASON_ROUTINE_MAINTENANCE: _ClassVar[MaintenanceReason]
    MAINTENANCE_REASON_SECURITY_PATCH: _ClassVar[MaintenanceReason]
    MAINTENANCE_REASON_REDIS_UPGRADE: _ClassVar[MaintenanceReason]
    MAINTENANCE_REASON_INFRASTRUCTURE: _ClassVar[MaintenanceReason]
    MAINTENANCE_REASON_EMERGENCY: _ClassVar[MaintenanceReason]

class MaintenanceMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MAINTENANCE_METHOD_UNSPECIFIED: _ClassVar[MaintenanceMethod]
    MAINTENANCE_METHOD_FAILOVER: _ClassVar[MaintenanceMethod]
    MAINTENANCE_METHOD_RESTART: _ClassVar[MaintenanceMethod]

class MaintenanceStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MAINTENANCE_STATUS_UNSPECIFIED: _ClassVar[MaintenanceStatus]
    MAINTENANCE_STATUS_NONE: _ClassVar[MaintenanceStatus]
    MAINTENANCE_STATUS_PENDING: _ClassVar[MaintenanceStatus]
    MAINTENANCE_STATUS_PREPARING: _ClassVar[MaintenanceStatus]
    MAINTENANCE_STATUS_READY: _ClassVar[MaintenanceStatus]
    MAINTENANCE_STATUS_RUNNING: _ClassVar[MaintenanceStatus]
    MAINTENANCE_STATUS_COMPLETED: _ClassVar[MaintenanceStatus]
    MAINTENANCE_STATUS_FAILED: _ClassVar[MaintenanceStatus]
    MAINTENANCE_STATUS_CANCELED: _ClassVar[MaintenanceStatus]

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_MAINTENANCE_REQUIRED: _ClassVar[EventType]
    EVENT_TYPE_MAINTENANCE_SCHEDULED: _ClassVar[EventType]
    EVENT_TYPE_MAINTENANCE_RESCHEDULED: _ClassVar[EventType]
    EVENT_TYPE_WINDOW_UPDATED: _ClassVar[EventType]
    EVENT_TYPE_MAINTENANCE_STARTED: _ClassVar[EventType]
    EVENT_TYPE_MAINTENANCE_STEP: _ClassVar[EventType]
    EVENT_TYPE_MAINTENANCE_COMPLETED: _ClassVar[EventType]
    EVENT_TYPE_MAINTENANCE_FAILED: _ClassVar[EventType]
    EVENT_TYPE_MAINTENANCE_CANCELED: _ClassVar[EventType]
    EVENT_TYPE_CONFIG_VAR_CHANGED: _ClassVar[EventType]
    EVENT_TYPE_APP_CREATED: _ClassVar[EventType]
    EVENT_TYPE_APP_DELETED: _ClassVar[EventType]
    EVENT_TYPE_MAINTENANCE_MODE_CHANGED: _ClassVar[EventType]
    EVENT_TYPE_ADDON_CREATED: _ClassVar[EventType]
    EVENT_TYPE_ADDON_DELETED: _ClassVar[EventType]
    EVENT_TYPE_FREEZE_ADDED: _ClassVar[EventType]
    EVENT_TYPE_FREEZE_REMOVED: _ClassVar[EventType]
    EVENT_TYPE_MAINTENANCE_REMINDER: _ClassVar[EventType]
    EVENT_TYPE_CAMPAIGN_CREATED: _ClassVar[EventType]
    EVENT_TYPE_CAMPAIGN_WAVE_RELEASED: _ClassVar[EventType]
    EVENT_TYPE_CAMPAIGN_HALTED: _ClassVar[EventType]
    EVENT_TYPE_CAMPAIGN_RESUMED: _ClassVar[EventType]
    EVENT_TYPE_CAMPAIGN_CANCELED: _ClassVar[EventType]
    EVENT_TYPE_CAMPAIGN_COMPLETED: _ClassVar[EventType]
SERVER_ROLE_UNSPECIFIED: ServerRole
SERVER_ROLE_PRIMARY: ServerRole
SERVER_ROLE_STANDBY: ServerRole
SERVER_ROLE_HIDDEN_STANDBY: ServerRole
MAINTENANCE_REASON_UNSPECIFIED: MaintenanceReason
MAINTENANCE_REASON_ROUTINE_MAINTENANCE: MaintenanceReason
MAINTENANCE_REASON_SECURITY_PATCH: MaintenanceReason
MAINTENANCE_REASON_REDIS_UPGRADE: MaintenanceReason
MAINTENANCE_REASON_INFRASTRUCTURE: MaintenanceReason
MAINTENANCE_REASON_EMERGENCY: MaintenanceReason
MAINTENANCE_METHOD_UNSPECIFIED: MaintenanceMethod
MAINTENANCE_METHOD_FAILOVER: MaintenanceMethod
MAINTENANCE_METHOD_RESTART: MaintenanceMethod
MAINTENANCE_STATUS_UNSPECIFIED: MaintenanceStatus
MAINTENANCE_STATUS_NONE: MaintenanceStatus
MAINTENANCE_STATUS_PENDING: MaintenanceStatus
MAINTENANCE_STATUS_PREPARING: MaintenanceStatus
MAINTENANCE_STATUS_READY: MaintenanceStatus
MAINTENANCE_STATUS_RUNNING: MaintenanceStatus
MAINTENANCE_STATUS_COMPLETED: MaintenanceStatus
MAINTENANCE_STATUS_FAILED: MaintenanceStatus
MAINTENANCE_STATUS_CANCELED: MaintenanceStatus
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_MAINTENANCE_REQUIRED: EventType
EVENT_TYPE_MAINTENANCE_SCHEDULED: EventType
EVENT_TYPE_MAINTENANCE_RESCHEDULED: EventType
EVENT_TYPE_WINDOW_UPDATED: EventType
EVENT_TYPE_MAINTENANCE_STARTED: EventType
EVENT_TYPE_MAINTENANCE_STEP: EventType
EVENT_TYPE_MAINTENANCE_COMPLETED: EventType
EVENT_TYPE_MAINTENANCE_FAILED: EventType
EVENT_TYPE_MAINTENANCE_CANCELED: EventType
EVENT_TYPE_CONFIG_VAR_CHANGED: EventType
EVENT_TYPE_APP_CREATED: EventType
EVENT_TYPE_APP_DELETED: EventType
EVENT_TYPE_MAINTENANCE_MODE_CHANGED: EventType
EVENT_TYPE_ADDON_CREATED: EventType
EVENT_TYPE_ADDON_DELETED: EventType
EVENT_TYPE_FREEZE_ADDED: EventType
EVENT_TYPE_FREEZE_REMOVED: EventType
EVENT_TYPE_MAINTENANCE_REMINDER: EventType
EVENT_TYPE_CAMPAIGN_CREATED: EventType
EVENT_TYPE_CAMPAIGN_WAVE_RELEASED: EventType
EVENT_TYPE_CAMPAIGN_HALTED: EventType
EVENT_TYPE_CAMPAIGN_RESUMED: EventType
EVENT_TYPE_CAMPAIGN_CANCELED: EventType
EVENT_TYPE_CAMPAIGN_COMPLETED: EventType

class App(_message.Message):
    __slots__ = ("name", "owner_email", "maintenance_mode", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OWNER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_MODE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    owner_email: str
    maintenance_mode: bool
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., owner_email: _Optional[str] = ..., maintenance_mode: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ServerAddress(_message.Message):
    __slots__ = ("host", "port")
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    host: str
    port: int
    def __init__(self, host: _Optional[str] = ..., port: _Optional[int] = ...) -> None: ...

class Server(_message.Message):
    __slots__ = ("address", "role", "endpoint", "build", "version")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    address: ServerAddress
    role: ServerRole
    endpoint: str
    build: str
    version: str
    def __init__(self, address: _Optional[_Union[ServerAddress, _Mapping]] = ..., role: _Optional[_Union[ServerRole, str]] = ..., endpoint: _Optional[str] = ..., build: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class ServerBuild(_message.Message):
    __slots__ = ("name", "version", "kind", "is_default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    kind: str
    is_default: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., kind: _Optional[str] = ..., is_default: _Optional[bool] = ...) -> None: ...

class Window(_message.Message):
    __slots__ = ("day", "start_time", "duration_hours", "description")
    DAY_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_HOURS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    day: str
    start_time: str
    duration_hours: int
    description: str
    def __init__(self, day: _Optional[str] = ..., start_time: _Optional[str] = ..., duration_hours: _Optional[int] = ..., description: _Optional[str] = ...) -> None: ...

class Addon(_message.Message):
    __slots__ = ("name", "app", "plan", "kind", "description", "attachments", "server_create_time", "servers", "window")
    NAME_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    SERVER_CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    name: str
    app: str
    plan: str
    kind: str
    description: str
    attachments: _containers.RepeatedScalarFieldContainer[str]
    server_create_time: _timestamp_pb2.Timestamp
    servers: _containers.RepeatedCompositeFieldContainer[Server]
    window: Window
    def __init__(self, name: _Optional[str] = ..., app: _Optional[str] = ..., plan: _Optional[str] = ..., kind: _Optional[str] = ..., description: _Optional[str] = ..., attachments: _Optional[_Iterable[str]] = ..., server_create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., servers: _Optional[_Iterable[_Union[Server, _Mapping]]] = ..., window: _Optional[_Union[Window, _Mapping]] = ...) -> None: ...

class MaintenanceHistoryEntry(_message.Message):
    __slots__ = ("time", "status", "step", "message")
    TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    status: MaintenanceStatus
    step: str
    message: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[MaintenanceStatus, str]] = ..., step: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Maintenance(_message.Message):
    __slots__ = ("id", "addon", "app", "reason", "method", "status", "required_by", "scheduled_for", "previously_scheduled_for", "started_at", "completed_at", "duration_seconds", "window", "current_step", "history", "failure_reason", "write_pause_ms", "create_time", "attempts", "last_failure_reason", "needs_operator", "target_build", "target_version", "allow_downgrade", "redirect_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDON_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_BY_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FOR_FIELD_NUMBER: _ClassVar[int]
    PREVIOUSLY_SCHEDULED_FOR_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STEP_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    WRITE_PAUSE_MS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    NEEDS_OPERATOR_FIELD_NUMBER: _ClassVar[int]
    TARGET_BUILD_FIELD_NUMBER: _ClassVar[int]
    TARGET_VERSION_FIELD_NUMBER: _ClassVar[int]
    ALLOW_DOWNGRADE_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    addon: str
    app: str
    reason: MaintenanceReason
    method: MaintenanceMethod
    status: MaintenanceStatus
    required_by: _timestamp_pb2.Timestamp
    scheduled_for: _timestamp_pb2.Timestamp
    previously_scheduled_for: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    duration_seconds: int
    window: Window
    current_step: str
    history: _containers.RepeatedCompositeFieldContainer[MaintenanceHistoryEntry]
    failure_reason: str
    write_pause_ms: int
    create_time: _timestamp_pb2.Timestamp
    attempts: int
    last_failure_reason: str
    needs_operator: bool
    target_build: str
    target_version: str
    allow_downgrade: bool
    redirect_ms: int
    def __init__(self, id: _Optional[str] = ..., addon: _Optional[str] = ..., app: _Optional[str] = ..., reason: _Optional[_Union[MaintenanceReason, str]] = ..., method: _Optional[_Union[MaintenanceMethod, str]] = ..., status: _Optional[_Union[MaintenanceStatus, str]] = ..., required_by: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scheduled_for: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., previously_scheduled_for: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_seconds: _Optional[int] = ..., window: _Optional[_Union[Window, _Mapping]] = ..., current_step: _Optional[str] = ..., history: _Optional[_Iterable[_Union[MaintenanceHistoryEntry, _Mapping]]] = ..., failure_reason: _Optional[str] = ..., write_pause_ms: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempts: _Optional[int] = ..., last_failure_reason: _Optional[str] = ..., needs_operator: _Optional[bool] = ..., target_build: _Optional[str] = ..., target_version: _Optional[str] = ..., allow_downgrade: _Optional[bool] = ..., redirect_ms: _Optional[int] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("sequence", "type", "time", "app", "addon", "maintenance_id", "message", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    ADDON_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    type: EventType
    time: _timestamp_pb2.Timestamp
    app: str
    addon: str
    maintenance_id: str
    message: str
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, sequence: _Optional[int] = ..., type: _Optional[_Union[EventType, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., app: _Optional[str] = ..., addon: _Optional[str] = ..., maintenance_id: _Optional[str] = ..., message: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Freeze(_message.Message):
    __slots__ = ("id", "app", "start_time", "end_time", "reason", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    app: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    reason: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., app: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

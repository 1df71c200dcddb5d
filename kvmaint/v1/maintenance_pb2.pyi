import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kvmaint.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetAddonInfoRequest(_message.Message):
    __slots__ = ("app", "addon")
    APP_FIELD_NUMBER: _ClassVar[int]
    ADDON_FIELD_NUMBER: _ClassVar[int]
    app: str
    addon: str
    def __init__(self, app: _Optional[str] = ..., addon: _Optional[str] = ...) -> None: ...

class GetAddonInfoResponse(_message.Message):
    __slots__ = ("addon", "status", "maintenance_required_by", "maintenance", "overdue", "status_reason")
    ADDON_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_REQUIRED_BY_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    addon: _resources_pb2.Addon
    status: str
    maintenance_required_by: _timestamp_pb2.Timestamp
    maintenance: str
    overdue: bool
    status_reason: str
    def __init__(self, addon: _Optional[_Union[_resources_pb2.Addon, _Mapping]] = ..., status: _Optional[str] = ..., maintenance_required_by: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., maintenance: _Optional[str] = ..., overdue: _Optional[bool] = ..., status_reason: _Optional[str] = ...) -> None: ...

class GetMaintenanceInfoRequest(_message.Message):
    __slots__ = ("app", "addon")
    APP_FIELD_NUMBER: _ClassVar[int]
    ADDON_FIELD_NUMBER: _ClassVar[int]
    app: str
    addon: str
    def __init__(self, app: _Optional[str] = ..., addon: _Optional[str] = ...) -> None: ...

class MaintenanceInfo(_message.Message):
    __slots__ = ("addon_attachments", "addon_description", "addon_kind", "addon_name", "addon_plan", "addon_window", "app_name", "completed_at", "duration_approximate", "duration_seconds", "method", "reason", "required_by", "scheduled_for", "server_created_at", "started_at", "status", "window", "id", "previously_scheduled_for", "write_pause_ms", "failure_reason", "current_step", "attempts", "last_failure_reason", "needs_operator", "target_build", "target_version", "redirect_ms")
    ADDON_ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    ADDON_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ADDON_KIND_FIELD_NUMBER: _ClassVar[int]
    ADDON_NAME_FIELD_NUMBER: _ClassVar[int]
    ADDON_PLAN_FIELD_NUMBER: _ClassVar[int]
    ADDON_WINDOW_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_APPROXIMATE_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_BY_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FOR_FIELD_NUMBER: _ClassVar[int]
    SERVER_CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUSLY_SCHEDULED_FOR_FIELD_NUMBER: _ClassVar[int]
    WRITE_PAUSE_MS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STEP_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    NEEDS_OPERATOR_FIELD_NUMBER: _ClassVar[int]
    TARGET_BUILD_FIELD_NUMBER: _ClassVar[int]
    TARGET_VERSION_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_MS_FIELD_NUMBER: _ClassVar[int]
    addon_attachments: str
    addon_description: str
    addon_kind: str
    addon_name: str
    addon_plan: str
    addon_window: str
    app_name: str
    completed_at: _timestamp_pb2.Timestamp
    duration_approximate: str
    duration_seconds: int
    method: str
    reason: str
    required_by: _timestamp_pb2.Timestamp
    scheduled_for: _timestamp_pb2.Timestamp
    server_created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    status: str
    window: str
    id: str
    previously_scheduled_for: _timestamp_pb2.Timestamp
    write_pause_ms: int
    failure_reason: str
    current_step: str
    attempts: int
    last_failure_reason: str
    needs_operator: bool
    target_build: str
    target_version: str
    redirect_ms: int
    def __init__(self, addon_attachments: _Optional[str] = ..., addon_description: _Optional[str] = ..., addon_kind: _Optional[str] = ..., addon_name: _Optional[str] = ..., addon_plan: _Optional[str] = ..., addon_window: _Optional[str] = ..., app_name: _Optional[str] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_approximate: _Optional[str] = ..., duration_seconds: _Optional[int] = ..., method: _Optional[str] = ..., reason: _Optional[str] = ..., required_by: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scheduled_for: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., server_created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[str] = ..., window: _Optional[str] = ..., id: _Optional[str] = ..., previously_scheduled_for: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., write_pause_ms: _Optional[int] = ..., failure_reason: _Optional[str] = ..., current_step: _Optional[str] = ..., attempts: _Optional[int] = ..., last_failure_reason: _Optional[str] = ..., needs_operator: _Optional[bool] = ..., target_build: _Optional[str] = ..., target_version: _Optional[str] = ..., redirect_ms: _Optional[int] = ...) -> None: ...

class GetMaintenanceInfoResponse(_message.Message):
    __slots__ = ("info", "maintenance")
    INFO_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    info: MaintenanceInfo
    maintenance: _resources_pb2.Maintenance
    def __init__(self, info: _Optional[_Union[MaintenanceInfo, _Mapping]] = ..., maintenance: _Optional[_Union[_resources_pb2.Maintenance, _Mapping]] = ...) -> None: ...

class WindowState(_message.Message):
    __slots__ = ("window", "previous_window", "scheduled_for", "previously_scheduled_for")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_WINDOW_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FOR_FIELD_NUMBER: _ClassVar[int]
    PREVIOUSLY_SCHEDULED_FOR_FIELD_NUMBER: _ClassVar[int]
    window: _resources_pb2.Window
    previous_window: _resources_pb2.Window
    scheduled_for: _timestamp_pb2.Timestamp
    previously_scheduled_for: _timestamp_pb2.Timestamp
    def __init__(self, window: _Optional[_Union[_resources_pb2.Window, _Mapping]] = ..., previous_window: _Optional[_Union[_resources_pb2.Window, _Mapping]] = ..., scheduled_for: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., previously_scheduled_for: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetWindowRequest(_message.Message):
    __slots__ = ("app", "addon")
    APP_FIELD_NUMBER: _ClassVar[int]
    ADDON_FIELD_NUMBER: _ClassVar[int]
    app: str
    addon: str
    def __init__(self, app: _Optional[str] = ..., addon: _Optional[str] = ...) -> None: ...

class GetWindowResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: WindowState
    def __init__(self, state: _Optional[_Union[WindowState, _Mapping]] = ...) -> None: ...

class UpdateWindowRequest(_message.Message):
    __slots__ = ("app", "addon", "day", "time")
    APP_FIELD_NUMBER: _ClassVar[int]
    ADDON_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    app: str
    addon: str
    day: str
    time: str
    def __init__(self, app: _Optional[str] = ..., addon: _Optional[str] = ..., day: _Optional[str] = ..., time: _Optional[str] = ...) -> None: ...

class UpdateWindowResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: WindowState
    def __init__(self, state: _Optional[_Union[WindowState, _Mapping]] = ...) -> None: ...

class ScheduleMaintenanceRequest(_message.Message):
    __slots__ = ("app", "addon", "weeks", "week")
    APP_FIELD_NUMBER: _ClassVar[int]
    ADDON_FIELD_NUMBER: _ClassVar[int]
    WEEKS_FIELD_NUMBER: _ClassVar[int]
    WEEK_FIELD_NUMBER: _ClassVar[int]
    app: str
    addon: str
    weeks: int
    week: str
    def __init__(self, app: _Optional[str] = ..., addon: _Optional[str] = ..., weeks: _Optional[int] = ..., week: _Optional[str] = ...) -> None: ...

class ScheduleMaintenanceResponse(_message.Message):
    __slots__ = ("maintenance", "explanation")
    MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    maintenance: _resources_pb2.Maintenance
    explanation: str
    def __init__(self, maintenance: _Optional[_Union[_resources_pb2.Maintenance, _Mapping]] = ..., explanation: _Optional[str] = ...) -> None: ...

class RunMaintenanceRequest(_message.Message):
    __slots__ = ("app", "addon", "confirm")
    APP_FIELD_NUMBER: _ClassVar[int]
    ADDON_FIELD_NUMBER: _ClassVar[int]
    CONFIRM_FIELD_NUMBER: _ClassVar[int]
    app: str
    addon: str
    confirm: str
    def __init__(self, app: _Optional[str] = ..., addon: _Optional[str] = ..., confirm: _Optional[str] = ...) -> None: ...

class RunMaintenanceResponse(_message.Message):
    __slots__ = ("maintenance",)
    MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    maintenance: _resources_pb2.Maintenance
    def __init__(self, maintenance: _Optional[_Union[_resources_pb2.Maintenance, _Mapping]] = ...) -> None: ...

class WaitMaintenanceRequest(_message.Message):
    __slots__ = ("app", "addon", "maintenance_id", "attempts_before")
    APP_FIELD_NUMBER: _ClassVar[int]
    ADDON_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_BEFORE_FIELD_NUMBER: _ClassVar[int]
    app: str
    addon: str
    maintenance_id: str
    attempts_before: int
    def __init__(self, app: _Optional[str] = ..., addon: _Optional[str] = ..., maintenance_id: _Optional[str] = ..., attempts_before: _Optional[int] = ...) -> None: ...

class WaitMaintenanceResponse(_message.Message):
    __slots__ = ("maintenance", "standby_lag_bytes", "elapsed_seconds", "message")
    MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    STANDBY_LAG_BYTES_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    maintenance: _resources_pb2.Maintenance
    standby_lag_bytes: int
    elapsed_seconds: float
    message: str
    def __init__(self, maintenance: _Optional[_Union[_resources_pb2.Maintenance, _Mapping]] = ..., standby_lag_bytes: _Optional[int] = ..., elapsed_seconds: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class ListMaintenanceHistoryRequest(_message.Message):
    __slots__ = ("app", "addon", "limit")
    APP_FIELD_NUMBER: _ClassVar[int]
    ADDON_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    app: str
    addon: str
    limit: int
    def __init__(self, app: _Optional[str] = ..., addon: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListMaintenanceHistoryResponse(_message.Message):
    __slots__ = ("maintenances",)
    MAINTENANCES_FIELD_NUMBER: _ClassVar[int]
    maintenances: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Maintenance]
    def __init__(self, maintenances: _Optional[_Iterable[_Union[_resources_pb2.Maintenance, _Mapping]]] = ...) -> None: ...

class ListMaintenancesRequest(_message.Message):
    __slots__ = ("app", "page_size", "page_token", "filing")
    APP_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILING_FIELD_NUMBER: _ClassVar[int]
    app: str
    page_size: int
    page_token: str
    filing: str
    def __init__(self, app: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filing: _Optional[str] = ...) -> None: ...

class ListMaintenancesResponse(_message.Message):
    __slots__ = ("maintenances", "next_page_token")
    MAINTENANCES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    maintenances: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Maintenance]
    next_page_token: str
    def __init__(self, maintenances: _Optional[_Iterable[_Union[_resources_pb2.Maintenance, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListFreezesRequest(_message.Message):
    __slots__ = ("app",)
    APP_FIELD_NUMBER: _ClassVar[int]
    app: str
    def __init__(self, app: _Optional[str] = ...) -> None: ...

class ListFreezesResponse(_message.Message):
    __slots__ = ("freezes",)
    FREEZES_FIELD_NUMBER: _ClassVar[int]
    freezes: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Freeze]
    def __init__(self, freezes: _Optional[_Iterable[_Union[_resources_pb2.Freeze, _Mapping]]] = ...) -> None: ...

class CreateFreezeRequest(_message.Message):
    __slots__ = ("app", "start_time", "end_time", "reason")
    APP_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    app: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, app: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class CreateFreezeResponse(_message.Message):
    __slots__ = ("freeze",)
    FREEZE_FIELD_NUMBER: _ClassVar[int]
    freeze: _resources_pb2.Freeze
    def __init__(self, freeze: _Optional[_Union[_resources_pb2.Freeze, _Mapping]] = ...) -> None: ...

class DeleteFreezeRequest(_message.Message):
    __slots__ = ("app", "id")
    APP_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    app: str
    id: str
    def __init__(self, app: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class DeleteFreezeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

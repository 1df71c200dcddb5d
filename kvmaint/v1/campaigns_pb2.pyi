import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kvmaint.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CampaignStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMPAIGN_STATUS_UNSPECIFIED: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_RUNNING: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_HALTED: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_COMPLETED: _ClassVar[CampaignStatus]
    CAMPAIGN_STATUS_CANCELED: _ClassVar[CampaignStatus]
CAMPAIGN_STATUS_UNSPECIFIED: CampaignStatus
CAMPAIGN_STATUS_RUNNING: CampaignStatus
CAMPAIGN_STATUS_HALTED: CampaignStatus
CAMPAIGN_STATUS_COMPLETED: CampaignStatus
CAMPAIGN_STATUS_CANCELED: CampaignStatus

class AppNames(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateCampaignRequest(_message.Message):
    __slots__ = ("apps", "plan", "all", "build", "reason", "required_by", "canary", "waves", "soak", "halt_on_failures", "halt_on_pause_ms", "dry_run", "allow_downgrade")
    APPS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_BY_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    WAVES_FIELD_NUMBER: _ClassVar[int]
    SOAK_FIELD_NUMBER: _ClassVar[int]
    HALT_ON_FAILURES_FIELD_NUMBER: _ClassVar[int]
    HALT_ON_PAUSE_MS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    ALLOW_DOWNGRADE_FIELD_NUMBER: _ClassVar[int]
    apps: AppNames
    plan: str
    all: bool
    build: str
    reason: _resources_pb2.MaintenanceReason
    required_by: _timestamp_pb2.Timestamp
    canary: int
    waves: str
    soak: _duration_pb2.Duration
    halt_on_failures: int
    halt_on_pause_ms: int
    dry_run: bool
    allow_downgrade: bool
    def __init__(self, apps: _Optional[_Union[AppNames, _Mapping]] = ..., plan: _Optional[str] = ..., all: _Optional[bool] = ..., build: _Optional[str] = ..., reason: _Optional[_Union[_resources_pb2.MaintenanceReason, str]] = ..., required_by: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., canary: _Optional[int] = ..., waves: _Optional[str] = ..., soak: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., halt_on_failures: _Optional[int] = ..., halt_on_pause_ms: _Optional[int] = ..., dry_run: _Optional[bool] = ..., allow_downgrade: _Optional[bool] = ...) -> None: ...

class DayCount(_message.Message):
    __slots__ = ("day", "count")
    DAY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    day: str
    count: int
    def __init__(self, day: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class CampaignPlan(_message.Message):
    __slots__ = ("addons", "apps", "waves", "window_starts_ms", "meets_deadline", "has_window", "window_hours", "per_day", "wave_starts")
    ADDONS_FIELD_NUMBER: _ClassVar[int]
    APPS_FIELD_NUMBER: _ClassVar[int]
    WAVES_FIELD_NUMBER: _ClassVar[int]
    WINDOW_STARTS_MS_FIELD_NUMBER: _ClassVar[int]
    MEETS_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    HAS_WINDOW_FIELD_NUMBER: _ClassVar[int]
    WINDOW_HOURS_FIELD_NUMBER: _ClassVar[int]
    PER_DAY_FIELD_NUMBER: _ClassVar[int]
    WAVE_STARTS_FIELD_NUMBER: _ClassVar[int]
    addons: _containers.RepeatedScalarFieldContainer[str]
    apps: _containers.RepeatedScalarFieldContainer[str]
    waves: _containers.RepeatedScalarFieldContainer[int]
    window_starts_ms: _containers.RepeatedScalarFieldContainer[int]
    meets_deadline: _containers.RepeatedScalarFieldContainer[bool]
    has_window: _containers.RepeatedScalarFieldContainer[bool]
    window_hours: int
    per_day: _containers.RepeatedCompositeFieldContainer[DayCount]
    wave_starts: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    def __init__(self, addons: _Optional[_Iterable[str]] = ..., apps: _Optional[_Iterable[str]] = ..., waves: _Optional[_Iterable[int]] = ..., window_starts_ms: _Optional[_Iterable[int]] = ..., meets_deadline: _Optional[_Iterable[bool]] = ..., has_window: _Optional[_Iterable[bool]] = ..., window_hours: _Optional[int] = ..., per_day: _Optional[_Iterable[_Union[DayCount, _Mapping]]] = ..., wave_starts: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ...) -> None: ...

class WaveSummary(_message.Message):
    __slots__ = ("wave", "label", "size", "pending", "running", "completed", "failed", "skipped", "ended_at", "soaked_at", "planned_start")
    WAVE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    SOAKED_AT_FIELD_NUMBER: _ClassVar[int]
    PLANNED_START_FIELD_NUMBER: _ClassVar[int]
    wave: int
    label: str
    size: int
    pending: int
    running: int
    completed: int
    failed: int
    skipped: int
    ended_at: _timestamp_pb2.Timestamp
    soaked_at: _timestamp_pb2.Timestamp
    planned_start: _timestamp_pb2.Timestamp
    def __init__(self, wave: _Optional[int] = ..., label: _Optional[str] = ..., size: _Optional[int] = ..., pending: _Optional[int] = ..., running: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., skipped: _Optional[int] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., soaked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., planned_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Campaign(_message.Message):
    __slots__ = ("id", "build", "target_version", "reason", "required_by", "target", "canary", "waves", "soak", "halt_on_failures", "halt_on_pause_ms", "status", "current_wave", "halt_reason", "created_at", "ended_at", "wave_summaries", "addons")
    ID_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    TARGET_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_BY_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    WAVES_FIELD_NUMBER: _ClassVar[int]
    SOAK_FIELD_NUMBER: _ClassVar[int]
    HALT_ON_FAILURES_FIELD_NUMBER: _ClassVar[int]
    HALT_ON_PAUSE_MS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_WAVE_FIELD_NUMBER: _ClassVar[int]
    HALT_REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    WAVE_SUMMARIES_FIELD_NUMBER: _ClassVar[int]
    ADDONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    build: str
    target_version: str
    reason: _resources_pb2.MaintenanceReason
    required_by: _timestamp_pb2.Timestamp
    target: str
    canary: int
    waves: _containers.RepeatedScalarFieldContainer[int]
    soak: _duration_pb2.Duration
    halt_on_failures: int
    halt_on_pause_ms: int
    status: CampaignStatus
    current_wave: int
    halt_reason: str
    created_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    wave_summaries: _containers.RepeatedCompositeFieldContainer[WaveSummary]
    addons: int
    def __init__(self, id: _Optional[str] = ..., build: _Optional[str] = ..., target_version: _Optional[str] = ..., reason: _Optional[_Union[_resources_pb2.MaintenanceReason, str]] = ..., required_by: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., target: _Optional[str] = ..., canary: _Optional[int] = ..., waves: _Optional[_Iterable[int]] = ..., soak: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., halt_on_failures: _Optional[int] = ..., halt_on_pause_ms: _Optional[int] = ..., status: _Optional[_Union[CampaignStatus, str]] = ..., current_wave: _Optional[int] = ..., halt_reason: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., wave_summaries: _Optional[_Iterable[_Union[WaveSummary, _Mapping]]] = ..., addons: _Optional[int] = ...) -> None: ...

class CampaignMember(_message.Message):
    __slots__ = ("addon", "app", "wave", "planned_window_start", "meets_deadline", "maintenance_id", "status", "scheduled_for", "attempts", "note", "write_pause_ms")
    ADDON_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    WAVE_FIELD_NUMBER: _ClassVar[int]
    PLANNED_WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    MEETS_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FOR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    WRITE_PAUSE_MS_FIELD_NUMBER: _ClassVar[int]
    addon: str
    app: str
    wave: int
    planned_window_start: _timestamp_pb2.Timestamp
    meets_deadline: bool
    maintenance_id: str
    status: _resources_pb2.MaintenanceStatus
    scheduled_for: _timestamp_pb2.Timestamp
    attempts: int
    note: str
    write_pause_ms: int
    def __init__(self, addon: _Optional[str] = ..., app: _Optional[str] = ..., wave: _Optional[int] = ..., planned_window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., meets_deadline: _Optional[bool] = ..., maintenance_id: _Optional[str] = ..., status: _Optional[_Union[_resources_pb2.MaintenanceStatus, str]] = ..., scheduled_for: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempts: _Optional[int] = ..., note: _Optional[str] = ..., write_pause_ms: _Optional[int] = ...) -> None: ...

class CreateCampaignResponse(_message.Message):
    __slots__ = ("campaign", "plan")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    plan: CampaignPlan
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ..., plan: _Optional[_Union[CampaignPlan, _Mapping]] = ...) -> None: ...

class ListCampaignsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCampaignsResponse(_message.Message):
    __slots__ = ("campaigns",)
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    campaigns: _containers.RepeatedCompositeFieldContainer[Campaign]
    def __init__(self, campaigns: _Optional[_Iterable[_Union[Campaign, _Mapping]]] = ...) -> None: ...

class GetCampaignRequest(_message.Message):
    __slots__ = ("id", "page_size", "page_token")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    id: str
    page_size: int
    page_token: str
    def __init__(self, id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetCampaignResponse(_message.Message):
    __slots__ = ("campaign", "members", "next_page_token")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    members: _containers.RepeatedCompositeFieldContainer[CampaignMember]
    next_page_token: str
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ..., members: _Optional[_Iterable[_Union[CampaignMember, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ResumeCampaignRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ResumeCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ...) -> None: ...

class CancelCampaignRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class CancelCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ...) -> None: ...

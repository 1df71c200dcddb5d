import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kvmaint.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateAppRequest(_message.Message):
    __slots__ = ("name", "owner_email")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OWNER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    owner_email: str
    def __init__(self, name: _Optional[str] = ..., owner_email: _Optional[str] = ...) -> None: ...

class CreateAppResponse(_message.Message):
    __slots__ = ("app",)
    APP_FIELD_NUMBER: _ClassVar[int]
    app: _resources_pb2.App
    def __init__(self, app: _Optional[_Union[_resources_pb2.App, _Mapping]] = ...) -> None: ...

class ListAppsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAppsResponse(_message.Message):
    __slots__ = ("apps", "next_page_token")
    APPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    apps: _containers.RepeatedCompositeFieldContainer[_resources_pb2.App]
    next_page_token: str
    def __init__(self, apps: _Optional[_Iterable[_Union[_resources_pb2.App, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteAppRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteAppResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetMaintenanceModeRequest(_message.Message):
    __slots__ = ("app", "enabled")
    APP_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    app: str
    enabled: bool
    def __init__(self, app: _Optional[str] = ..., enabled: _Optional[bool] = ...) -> None: ...

class SetMaintenanceModeResponse(_message.Message):
    __slots__ = ("app",)
    APP_FIELD_NUMBER: _ClassVar[int]
    app: _resources_pb2.App
    def __init__(self, app: _Optional[_Union[_resources_pb2.App, _Mapping]] = ...) -> None: ...

class CreateAddonRequest(_message.Message):
    __slots__ = ("app", "plan", "name", "attachments", "primary", "standby")
    APP_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_FIELD_NUMBER: _ClassVar[int]
    STANDBY_FIELD_NUMBER: _ClassVar[int]
    app: str
    plan: str
    name: str
    attachments: _containers.RepeatedScalarFieldContainer[str]
    primary: _resources_pb2.ServerAddress
    standby: _resources_pb2.ServerAddress
    def __init__(self, app: _Optional[str] = ..., plan: _Optional[str] = ..., name: _Optional[str] = ..., attachments: _Optional[_Iterable[str]] = ..., primary: _Optional[_Union[_resources_pb2.ServerAddress, _Mapping]] = ..., standby: _Optional[_Union[_resources_pb2.ServerAddress, _Mapping]] = ...) -> None: ...

class CreateAddonResponse(_message.Message):
    __slots__ = ("addon",)
    ADDON_FIELD_NUMBER: _ClassVar[int]
    addon: _resources_pb2.Addon
    def __init__(self, addon: _Optional[_Union[_resources_pb2.Addon, _Mapping]] = ...) -> None: ...

class ListAddonsRequest(_message.Message):
    __slots__ = ("app", "page_size", "page_token")
    APP_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    app: str
    page_size: int
    page_token: str
    def __init__(self, app: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAddonsResponse(_message.Message):
    __slots__ = ("addons", "next_page_token")
    ADDONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    addons: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Addon]
    next_page_token: str
    def __init__(self, addons: _Optional[_Iterable[_Union[_resources_pb2.Addon, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetConfigVarsRequest(_message.Message):
    __slots__ = ("app",)
    APP_FIELD_NUMBER: _ClassVar[int]
    app: str
    def __init__(self, app: _Optional[str] = ...) -> None: ...

class GetConfigVarsResponse(_message.Message):
    __slots__ = ("config_vars",)
    class ConfigVarsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONFIG_VARS_FIELD_NUMBER: _ClassVar[int]
    config_vars: _containers.ScalarMap[str, str]
    def __init__(self, config_vars: _Optional[_Mapping[str, str]] = ...) -> None: ...

class WatchConfigVarsRequest(_message.Message):
    __slots__ = ("app",)
    APP_FIELD_NUMBER: _ClassVar[int]
    app: str
    def __init__(self, app: _Optional[str] = ...) -> None: ...

class WatchConfigVarsResponse(_message.Message):
    __slots__ = ("config_vars", "sequence")
    class ConfigVarsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONFIG_VARS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    config_vars: _containers.ScalarMap[str, str]
    sequence: int
    def __init__(self, config_vars: _Optional[_Mapping[str, str]] = ..., sequence: _Optional[int] = ...) -> None: ...

class AddonNames(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class RequireMaintenanceRequest(_message.Message):
    __slots__ = ("addons", "plan", "all", "reason", "method", "required_by", "build", "allow_downgrade", "request_id")
    ADDONS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_BY_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    ALLOW_DOWNGRADE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    addons: AddonNames
    plan: str
    all: bool
    reason: _resources_pb2.MaintenanceReason
    method: _resources_pb2.MaintenanceMethod
    required_by: _timestamp_pb2.Timestamp
    build: str
    allow_downgrade: bool
    request_id: str
    def __init__(self, addons: _Optional[_Union[AddonNames, _Mapping]] = ..., plan: _Optional[str] = ..., all: _Optional[bool] = ..., reason: _Optional[_Union[_resources_pb2.MaintenanceReason, str]] = ..., method: _Optional[_Union[_resources_pb2.MaintenanceMethod, str]] = ..., required_by: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., build: _Optional[str] = ..., allow_downgrade: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class SkippedAddons(_message.Message):
    __slots__ = ("reason", "count", "examples")
    REASON_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    reason: str
    count: int
    examples: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, reason: _Optional[str] = ..., count: _Optional[int] = ..., examples: _Optional[_Iterable[str]] = ...) -> None: ...

class RequireMaintenanceResponse(_message.Message):
    __slots__ = ("maintenances", "already_pending", "filing", "filed_count", "already_pending_count", "skipped", "lists_omitted", "maintenances_page_token", "batches")
    MAINTENANCES_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PENDING_FIELD_NUMBER: _ClassVar[int]
    FILING_FIELD_NUMBER: _ClassVar[int]
    FILED_COUNT_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PENDING_COUNT_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    LISTS_OMITTED_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCES_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    maintenances: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Maintenance]
    already_pending: _containers.RepeatedScalarFieldContainer[str]
    filing: str
    filed_count: int
    already_pending_count: int
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedAddons]
    lists_omitted: bool
    maintenances_page_token: str
    batches: int
    def __init__(self, maintenances: _Optional[_Iterable[_Union[_resources_pb2.Maintenance, _Mapping]]] = ..., already_pending: _Optional[_Iterable[str]] = ..., filing: _Optional[str] = ..., filed_count: _Optional[int] = ..., already_pending_count: _Optional[int] = ..., skipped: _Optional[_Iterable[_Union[SkippedAddons, _Mapping]]] = ..., lists_omitted: _Optional[bool] = ..., maintenances_page_token: _Optional[str] = ..., batches: _Optional[int] = ...) -> None: ...

class GetFilingRequest(_message.Message):
    __slots__ = ("filing",)
    FILING_FIELD_NUMBER: _ClassVar[int]
    filing: str
    def __init__(self, filing: _Optional[str] = ...) -> None: ...

class GetFilingResponse(_message.Message):
    __slots__ = ("filing", "targeted", "filed_count", "already_pending_count", "skipped", "batches", "done", "error")
    FILING_FIELD_NUMBER: _ClassVar[int]
    TARGETED_FIELD_NUMBER: _ClassVar[int]
    FILED_COUNT_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PENDING_COUNT_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    filing: str
    targeted: int
    filed_count: int
    already_pending_count: int
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedAddons]
    batches: int
    done: bool
    error: str
    def __init__(self, filing: _Optional[str] = ..., targeted: _Optional[int] = ..., filed_count: _Optional[int] = ..., already_pending_count: _Optional[int] = ..., skipped: _Optional[_Iterable[_Union[SkippedAddons, _Mapping]]] = ..., batches: _Optional[int] = ..., done: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class AgentServer(_message.Message):
    __slots__ = ("port", "role", "reachable", "lag_bytes", "managed", "build", "version", "supervision", "restarts", "supervision_detail")
    PORT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    LAG_BYTES_FIELD_NUMBER: _ClassVar[int]
    MANAGED_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SUPERVISION_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    SUPERVISION_DETAIL_FIELD_NUMBER: _ClassVar[int]
    port: int
    role: str
    reachable: bool
    lag_bytes: int
    managed: bool
    build: str
    version: str
    supervision: str
    restarts: int
    supervision_detail: str
    def __init__(self, port: _Optional[int] = ..., role: _Optional[str] = ..., reachable: _Optional[bool] = ..., lag_bytes: _Optional[int] = ..., managed: _Optional[bool] = ..., build: _Optional[str] = ..., version: _Optional[str] = ..., supervision: _Optional[str] = ..., restarts: _Optional[int] = ..., supervision_detail: _Optional[str] = ...) -> None: ...

class AgentInfo(_message.Message):
    __slots__ = ("host_id", "advertise_host", "agent_version", "connected", "servers", "builds")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    ADVERTISE_HOST_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    BUILDS_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    advertise_host: str
    agent_version: str
    connected: bool
    servers: _containers.RepeatedCompositeFieldContainer[AgentServer]
    builds: _containers.RepeatedCompositeFieldContainer[_resources_pb2.ServerBuild]
    def __init__(self, host_id: _Optional[str] = ..., advertise_host: _Optional[str] = ..., agent_version: _Optional[str] = ..., connected: _Optional[bool] = ..., servers: _Optional[_Iterable[_Union[AgentServer, _Mapping]]] = ..., builds: _Optional[_Iterable[_Union[_resources_pb2.ServerBuild, _Mapping]]] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAgentsResponse(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[AgentInfo]
    def __init__(self, agents: _Optional[_Iterable[_Union[AgentInfo, _Mapping]]] = ...) -> None: ...

class ListSchedulersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SchedulerInfo(_message.Message):
    __slots__ = ("id", "address", "agent_address", "leader", "term", "start_time", "seen_time", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    SEEN_TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    agent_address: str
    leader: bool
    term: int
    start_time: _timestamp_pb2.Timestamp
    seen_time: _timestamp_pb2.Timestamp
    version: str
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., agent_address: _Optional[str] = ..., leader: _Optional[bool] = ..., term: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[str] = ...) -> None: ...

class ListSchedulersResponse(_message.Message):
    __slots__ = ("schedulers", "term", "now")
    SCHEDULERS_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    schedulers: _containers.RepeatedCompositeFieldContainer[SchedulerInfo]
    term: int
    now: _timestamp_pb2.Timestamp
    def __init__(self, schedulers: _Optional[_Iterable[_Union[SchedulerInfo, _Mapping]]] = ..., term: _Optional[int] = ..., now: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Webhook(_message.Message):
    __slots__ = ("id", "app", "url", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    app: str
    url: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., app: _Optional[str] = ..., url: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateWebhookRequest(_message.Message):
    __slots__ = ("app", "url", "secret")
    APP_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    app: str
    url: str
    secret: str
    def __init__(self, app: _Optional[str] = ..., url: _Optional[str] = ..., secret: _Optional[str] = ...) -> None: ...

class CreateWebhookResponse(_message.Message):
    __slots__ = ("webhook", "secret")
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    webhook: Webhook
    secret: str
    def __init__(self, webhook: _Optional[_Union[Webhook, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListWebhooksRequest(_message.Message):
    __slots__ = ("app",)
    APP_FIELD_NUMBER: _ClassVar[int]
    app: str
    def __init__(self, app: _Optional[str] = ...) -> None: ...

class ListWebhooksResponse(_message.Message):
    __slots__ = ("webhooks",)
    WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
    webhooks: _containers.RepeatedCompositeFieldContainer[Webhook]
    def __init__(self, webhooks: _Optional[_Iterable[_Union[Webhook, _Mapping]]] = ...) -> None: ...

class DeleteWebhookRequest(_message.Message):
    __slots__ = ("app", "id")
    APP_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    app: str
    id: str
    def __init__(self, app: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class DeleteWebhookResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAppRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetAppResponse(_message.Message):
    __slots__ = ("app",)
    APP_FIELD_NUMBER: _ClassVar[int]
    app: _resources_pb2.App
    def __init__(self, app: _Optional[_Union[_resources_pb2.App, _Mapping]] = ...) -> None: ...

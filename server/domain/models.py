"""The scheduler's plain data. Protos stop at the RPC edge; everything inside works on these."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from server.domain.driverstate import DriverState
from server.domain.windows import Window


class Reason(StrEnum):
    ROUTINE_MAINTENANCE = "routine_maintenance"
    SECURITY_PATCH = "security_patch"
    REDIS_UPGRADE = "redis_upgrade"
    INFRASTRUCTURE = "infrastructure"
    EMERGENCY = "emergency"


class Method(StrEnum):
    FAILOVER = "failover"
    RESTART = "restart"


class Status(StrEnum):
    NONE = "none"
    PENDING = "pending"
    PREPARING = "preparing"
    READY = "ready"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def active(self) -> bool:
        """Filed and not yet ended: at most one such maintenance per add-on."""
        return self in (Status.PENDING, Status.PREPARING, Status.READY, Status.RUNNING)

    @property
    def in_progress(self) -> bool:
        return self in (Status.PREPARING, Status.READY, Status.RUNNING)

    @property
    def ended(self) -> bool:
        return self in (Status.COMPLETED, Status.FAILED, Status.CANCELED)


class Role(StrEnum):
    PRIMARY = "primary"
    STANDBY = "standby"
    HIDDEN_STANDBY = "hidden_standby"


class EventType(StrEnum):
    MAINTENANCE_REQUIRED = "maintenance_required"
    MAINTENANCE_SCHEDULED = "maintenance_scheduled"
    MAINTENANCE_RESCHEDULED = "maintenance_rescheduled"
    # 24 hours before scheduled_for, once per (maintenance, scheduled_for): server/notify/outbox.py.
    MAINTENANCE_REMINDER = "maintenance_reminder"
    WINDOW_UPDATED = "window_updated"
    MAINTENANCE_STARTED = "maintenance_started"
    MAINTENANCE_STEP = "maintenance_step"
    MAINTENANCE_COMPLETED = "maintenance_completed"
    MAINTENANCE_FAILED = "maintenance_failed"
    MAINTENANCE_CANCELED = "maintenance_canceled"
    CONFIG_VAR_CHANGED = "config_var_changed"
    APP_CREATED = "app_created"
    APP_DELETED = "app_deleted"
    MAINTENANCE_MODE_CHANGED = "maintenance_mode_changed"
    ADDON_CREATED = "addon_created"
    ADDON_DELETED = "addon_deleted"
    FREEZE_ADDED = "freeze_added"
    FREEZE_REMOVED = "freeze_removed"
    CAMPAIGN_CREATED = "campaign_created"
    CAMPAIGN_WAVE_RELEASED = "campaign_wave_released"
    CAMPAIGN_HALTED = "campaign_halted"
    CAMPAIGN_RESUMED = "campaign_resumed"
    CAMPAIGN_CANCELED = "campaign_canceled"
    CAMPAIGN_COMPLETED = "campaign_completed"


@dataclass(frozen=True)
class App:
    name: str
    owner_email: str
    maintenance_mode: bool
    created_at: datetime


@dataclass(frozen=True)
class ServerRef:
    host: str
    port: int
    role: Role

    @property
    def key(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Placed:
    """The servers started for a new add-on, and whether they listen with TLS only."""

    servers: tuple[ServerRef, ...]
    tls: bool = False


@dataclass(frozen=True)
class Addon:
    name: str
    app: str
    plan: str
    kind: str
    description: str
    attachments: tuple[str, ...]
    created_at: datetime
    servers: tuple[ServerRef, ...]
    window: Window | None
    previous_window: Window | None = None

    @property
    def primary(self) -> ServerRef | None:
        return next((s for s in self.servers if s.role is Role.PRIMARY), None)

    @property
    def standby(self) -> ServerRef | None:
        return next((s for s in self.servers if s.role is Role.STANDBY), None)

    def with_servers(self, servers: tuple[ServerRef, ...]) -> Addon:
        return replace(self, servers=servers)


@dataclass(frozen=True)
class HistoryEntry:
    time: datetime
    status: Status
    step: str
    message: str


@dataclass(frozen=True)
class Maintenance:
    id: str
    addon: str
    app: str
    reason: Reason
    method: Method
    status: Status
    required_by: datetime
    created_at: datetime
    scheduled_for: datetime | None = None
    previously_scheduled_for: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    window: Window | None = None
    current_step: str = ""
    failure_reason: str = ""
    # The server's pause: from CLIENT PAUSE on the old primary until the new one was promoted (agent).
    write_pause_ms: int = -1
    # Failed attempts so far (each before the point of no return sent it back to pending), the last
    # one's "step: reason", and whether the planner gave up starting it on its own (domain/lifecycle.py).
    attempts: int = 0
    last_failure_reason: str = ""
    needs_operator: bool = False
    # The build the maintenance installs (empty: each server's current one), the version the hosts
    # reported for it when it was required, and whether that may be older than what runs.
    target_build: str = ""
    target_version: str = ""
    allow_downgrade: bool = False
    # From CLIENT PAUSE on the old primary until applications could reach the new one: the old primary's
    # clients let go and the promotion recorded, which discovery answers from (-1: unknown). The least
    # write pause an application sees; its own reconnect comes on top.
    redirect_ms: int = -1
    # The earliest start the owner chose with `schedule` (Monday 00:00 UTC of that week); a window
    # change keeps the maintenance at or after it (domain/planning.realign).
    not_before: datetime | None = None
    # Durable driver state: the steps done and their outputs (the hidden standby's address, ...).
    state: DriverState = field(default_factory=DriverState)
    history: tuple[HistoryEntry, ...] = ()

    @property
    def duration_seconds(self) -> int:
        if self.started_at and self.completed_at:
            return max(0, round((self.completed_at - self.started_at).total_seconds()))
        return 0


@dataclass(frozen=True)
class Event:
    sequence: int
    type: EventType
    time: datetime
    app: str
    addon: str = ""
    maintenance_id: str = ""
    message: str = ""
    attributes: dict[str, str] = field(default_factory=dict)

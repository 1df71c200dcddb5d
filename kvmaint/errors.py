"""One error hierarchy for the whole product; the RPC layer maps it to gRPC status codes in one place.

Every error carries a stable `reason` (google.rpc.ErrorInfo, domain `kvmaint`, AIP-193): clients branch
on the reason, never on the sentence, which is for people and may change. Errors about one resource say
which (ResourceInfo); refused preconditions say which rule (PreconditionFailure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

DOMAIN = "kvmaint"


class ErrorReason(StrEnum):
    """The ErrorInfo reasons kvmaint sends. Stable: add new ones, never rename one."""

    # Defaults of the classes below, for errors that need no finer reason.
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    UNAVAILABLE = "UNAVAILABLE"
    ABORTED = "ABORTED"
    # Resources that do not exist.
    APP_NOT_FOUND = "APP_NOT_FOUND"
    ADDON_NOT_FOUND = "ADDON_NOT_FOUND"
    MAINTENANCE_NOT_FOUND = "MAINTENANCE_NOT_FOUND"
    FREEZE_NOT_FOUND = "FREEZE_NOT_FOUND"
    WEBHOOK_NOT_FOUND = "WEBHOOK_NOT_FOUND"
    # Names already taken.
    APP_ALREADY_EXISTS = "APP_ALREADY_EXISTS"
    ADDON_ALREADY_EXISTS = "ADDON_ALREADY_EXISTS"
    ATTACHMENT_ALREADY_EXISTS = "ATTACHMENT_ALREADY_EXISTS"
    SERVER_ALREADY_ASSIGNED = "SERVER_ALREADY_ASSIGNED"
    WEBHOOK_ALREADY_EXISTS = "WEBHOOK_ALREADY_EXISTS"
    # Rules that refuse a request now.
    MAINTENANCE_NOT_REQUIRED = "MAINTENANCE_NOT_REQUIRED"
    MAINTENANCE_ALREADY_STARTED = "MAINTENANCE_ALREADY_STARTED"
    APP_NOT_IN_MAINTENANCE_MODE = "APP_NOT_IN_MAINTENANCE_MODE"
    PLAN_HAS_NO_WINDOW = "PLAN_HAS_NO_WINDOW"
    PLAN_HAS_NO_STANDBY = "PLAN_HAS_NO_STANDBY"
    PAST_REQUIRED_BY = "PAST_REQUIRED_BY"
    WINDOW_PASSED = "WINDOW_PASSED"
    ADDON_UNDER_MAINTENANCE = "ADDON_UNDER_MAINTENANCE"
    WEBHOOK_LIMIT_REACHED = "WEBHOOK_LIMIT_REACHED"
    NO_AGENT_AVAILABLE = "NO_AGENT_AVAILABLE"
    AGENT_COMMAND_FAILED = "AGENT_COMMAND_FAILED"
    SERVER_VERSION_UNSUPPORTED = "SERVER_VERSION_UNSUPPORTED"
    BUILD_DOWNGRADE = "BUILD_DOWNGRADE"
    BUILD_VERSIONS_DIFFER = "BUILD_VERSIONS_DIFFER"
    # The add-on's primary is down or not writable: no maintenance starts on it.
    ADDON_UNAVAILABLE = "ADDON_UNAVAILABLE"
    CAMPAIGN_NOT_FOUND = "CAMPAIGN_NOT_FOUND"
    CAMPAIGN_NOT_HALTED = "CAMPAIGN_NOT_HALTED"
    CAMPAIGN_ENDED = "CAMPAIGN_ENDED"
    CAMPAIGN_EMPTY = "CAMPAIGN_EMPTY"
    # Who may call.
    TOKEN_REQUIRED = "TOKEN_REQUIRED"
    TOKEN_INVALID = "TOKEN_INVALID"
    OPERATOR_ONLY = "OPERATOR_ONLY"
    OTHER_APP = "OTHER_APP"
    # A bug caught by an invariant check (e.g. an illegal maintenance status transition).
    INTERNAL = "INTERNAL"
    ILLEGAL_TRANSITION = "ILLEGAL_TRANSITION"
    # Replicas: a call that needs the leader's agents found no leader (lease expired, none elected yet),
    # or could not reach the one the lease names.
    NO_LEADER = "NO_LEADER"
    LEADER_UNREACHABLE = "LEADER_UNREACHABLE"
    # Scheduler replicas (server/replica/): this replica does not lead now (ErrorInfo metadata `leader`:
    # the leader's address when known); an agent refused a command of an older leader term.
    NOT_LEADER = "NOT_LEADER"
    STALE_TERM = "STALE_TERM"
    # A retried write (its request id) was committed by a replica that stopped before answering, and is
    # not one that may run again (server/rpc/requests.py).
    REQUEST_UNANSWERED = "REQUEST_UNANSWERED"
    # Seen by clients only: the transport failed before any server answered.
    SCHEDULER_UNREACHABLE = "SCHEDULER_UNREACHABLE"


@dataclass(frozen=True)
class Resource:
    """google.rpc.ResourceInfo: `kind` is App, Addon, Maintenance, Freeze or Webhook."""

    kind: str
    name: str
    owner: str = ""

    @property
    def resource_type(self) -> str:
        return f"kvmaint.v1.{self.kind}"

    @property
    def subject(self) -> str:
        """The resource as a PreconditionFailure subject: `apps/example-app`, `addons/redis-x`."""
        return f"{self.kind.lower()}s/{self.name}"


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


@dataclass(frozen=True)
class PreconditionViolation:
    """google.rpc.PreconditionFailure.Violation: `type` names the rule, `subject` what it was checked on."""

    type: str
    subject: str
    description: str


class KvmaintError(Exception):
    """Root of every error kvmaint raises on purpose. `str(err)` is one sentence meant for a person."""

    default_reason = ErrorReason.FAILED_PRECONDITION

    def __init__(
        self,
        message: str,
        violations: Sequence[FieldViolation] = (),
        *,
        reason: str | None = None,
        resource: Resource | None = None,
        preconditions: Sequence[PreconditionViolation] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.violations = list(violations)
        self.reason = str(reason or self.default_reason)
        self.resource = resource
        self.metadata = dict(metadata or {})
        self.preconditions = list(preconditions) or self._implied_preconditions()

    def _implied_preconditions(self) -> list[PreconditionViolation]:
        return []


class InvalidArgument(KvmaintError):
    """Malformed input: a bad day, time, plan, date, page token. Carries field violations."""

    default_reason = ErrorReason.INVALID_ARGUMENT

    @classmethod
    def field(cls, name: str, description: str) -> InvalidArgument:
        return cls(description, [FieldViolation(name, description)])


class NotFound(KvmaintError):
    default_reason = ErrorReason.NOT_FOUND


class AlreadyExists(KvmaintError):
    default_reason = ErrorReason.ALREADY_EXISTS


class FailedPrecondition(KvmaintError):
    """A rule forbids the request now (plan rules, maintenance mode, deadlines). With a resource and no
    explicit violations, the rule is reported as one PreconditionFailure violation: its reason, on it."""

    default_reason = ErrorReason.FAILED_PRECONDITION

    def _implied_preconditions(self) -> list[PreconditionViolation]:
        if self.resource is None:
            return []
        return [PreconditionViolation(self.reason, self.resource.subject, self.message)]


class NotLeader(FailedPrecondition):
    """This scheduler replica is not, or no longer, the leader: it must not act (reason NOT_LEADER, or
    STALE_TERM when an agent refused its command because a newer leader exists)."""

    default_reason = ErrorReason.NOT_LEADER


class PermissionDenied(KvmaintError):
    default_reason = ErrorReason.PERMISSION_DENIED


class Unauthenticated(KvmaintError):
    default_reason = ErrorReason.UNAUTHENTICATED


class Unavailable(KvmaintError):
    """A needed part (an agent, a Redis server) cannot be reached; trying again later may work."""

    default_reason = ErrorReason.UNAVAILABLE


class Aborted(KvmaintError):
    """A concurrent change won; the caller may retry."""

    default_reason = ErrorReason.ABORTED


class Internal(KvmaintError):
    """An invariant of kvmaint itself was broken (a bug, never the caller's fault)."""

    default_reason = ErrorReason.INTERNAL


class RPCError(KvmaintError):
    """What a client sees when a call fails: the status code name, the server's sentence, and the rich
    details it sent. Code branches on `reason` (ErrorInfo; the code name when the server sent none)."""

    def __init__(
        self,
        code: str,
        details: str,
        violations: Sequence[FieldViolation] = (),
        *,
        reason: str = "",
        domain: str = "",
        resource: Resource | None = None,
        preconditions: Sequence[PreconditionViolation] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            details,
            violations,
            reason=reason or code,
            resource=resource,
            preconditions=preconditions,
            metadata=metadata,
        )
        self.code = code
        self.details = details
        self.domain = domain

    def __str__(self) -> str:
        return self.details

    def __repr__(self) -> str:
        return f"RPCError({self.code}, {self.reason}, {self.details!r})"

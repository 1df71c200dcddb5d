"""One error hierarchy for the whole product; the RPC layer maps it to gRPC status codes in one place."""

from __future__ import annotations

from dataclasses import dataclass, field


class KvmaintError(Exception):
    """Root of every error kvmaint raises on purpose. `str(err)` is one sentence meant for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class InvalidArgument(KvmaintError):
    """Malformed input: a bad day, time, plan, date, page token. Carries field violations."""

    def __init__(self, message: str, violations: list[FieldViolation] | None = None) -> None:
        super().__init__(message)
        self.violations = violations or []

    @classmethod
    def field(cls, name: str, description: str) -> InvalidArgument:
        return cls(description, [FieldViolation(name, description)])


class NotFound(KvmaintError):
    pass


class AlreadyExists(KvmaintError):
    pass


class FailedPrecondition(KvmaintError):
    """A rule forbids the request now (plan rules, maintenance mode, deadlines)."""


class PermissionDenied(KvmaintError):
    pass


class Unauthenticated(KvmaintError):
    pass


class Unavailable(KvmaintError):
    """A needed part (an agent, a Redis server) cannot be reached; trying again later may work."""


class Aborted(KvmaintError):
    """A concurrent change won; the caller may retry."""


@dataclass
class RPCError(KvmaintError):
    """What a client sees when a call fails: the status code name and the server's sentence."""

    code: str
    details: str
    violations: list[FieldViolation] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.details)

    def __str__(self) -> str:
        return self.details

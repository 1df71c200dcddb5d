"""What a command produced, before it becomes a CommandResult at the RPC edge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the facade package imports this module
    from agent.redisnode.status import RedisServerStatus


@dataclass
class Outcome:
    ok: bool
    # One sentence for a person: what happened (ok) or why not (error).
    message: str = ""
    error: str = ""
    server: RedisServerStatus | None = None
    lag_bytes: int = 0
    last_io_seconds_ago: int = 0
    link_up: bool = False
    write_pause_ms: int = 0
    port: int = 0
    fields: dict[str, str] = field(default_factory=dict)

    @classmethod
    def done(cls, message: str, **kwargs: object) -> Outcome:
        return cls(ok=True, message=message, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def failed(cls, error: str, **kwargs: object) -> Outcome:
        return cls(ok=False, error=error, **kwargs)  # type: ignore[arg-type]


class Progress(Protocol):
    """Where a running command reports what it is doing; never blocks, may drop when disconnected."""

    def __call__(
        self, message: str, *, lag_bytes: int = 0, fields: Mapping[str, str] | None = None
    ) -> None: ...


def no_progress(message: str, *, lag_bytes: int = 0, fields: Mapping[str, str] | None = None) -> None:
    """A Progress that discards everything (for direct calls and tests)."""

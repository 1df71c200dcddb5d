"""The steps of a maintenance, in order, and the status a maintenance shows during each. Pure."""

from __future__ import annotations

from server.domain.driverstate import DriverState
from server.domain.models import Method, Status

PREPARE = "prepare"
CATCH_UP = "catch_up"
MAINTAIN_STANDBY = "maintain_standby"
FAILOVER = "failover"
REPOINT = "repoint"
FINISH = "finish"
RESTART = "restart"

FAILOVER_STEPS = (PREPARE, CATCH_UP, MAINTAIN_STANDBY, FAILOVER, REPOINT, FINISH)
RESTART_STEPS = (RESTART,)

# Once the failover step has completed, the new primary serves: later trouble must not roll back
# (driverstate.POINT_OF_NO_RETURN, which a unit test holds equal to FAILOVER).

_STATUS = {
    PREPARE: Status.PREPARING,
    CATCH_UP: Status.PREPARING,
    MAINTAIN_STANDBY: Status.PREPARING,
    FAILOVER: Status.RUNNING,
    REPOINT: Status.RUNNING,
    FINISH: Status.RUNNING,
    RESTART: Status.RUNNING,
}


def steps_for(method: Method, outage: bool) -> tuple[str, ...]:
    """`restart` restarts the primary in place (an outage); everything else fails over."""
    return RESTART_STEPS if method is Method.RESTART or outage else FAILOVER_STEPS


def status_during(step: str) -> Status:
    return _STATUS[step]


def next_step(steps: tuple[str, ...], state: DriverState) -> str | None:
    return next((s for s in steps if not state.is_done(s)), None)

"""The steps of a maintenance, in order, and the status a maintenance shows during each. Pure."""

from __future__ import annotations

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

# Once the failover step has completed, the new primary serves: later trouble must not roll back.
POINT_OF_NO_RETURN = FAILOVER

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


def done_steps(state: dict[str, str]) -> list[str]:
    return [s for s in state.get("done", "").split(",") if s]


def next_step(steps: tuple[str, ...], state: dict[str, str]) -> str | None:
    done = set(done_steps(state))
    return next((s for s in steps if s not in done), None)


def mark_done(state: dict[str, str], step: str) -> dict[str, str]:
    done = done_steps(state)
    if step not in done:
        done.append(step)
    return {**state, "done": ",".join(done)}


def past_point_of_no_return(state: dict[str, str]) -> bool:
    return POINT_OF_NO_RETURN in done_steps(state)

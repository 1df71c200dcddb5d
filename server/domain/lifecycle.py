"""The maintenance lifecycle: every status change, and what a failed attempt does. Pure: no I/O.

Every write of a maintenance's status goes through a named transition here (`start`, `begin_step`,
`step_done`, `complete`, `cancel`, `on_failure`), each checked against `ALLOWED`; anything else raises
`Internal` (reason ILLEGAL_TRANSITION), so a bug cannot, say, restart a completed maintenance or cancel
one mid-failover. Only `file` in server/service/fleet.py creates one, `pending`.

A failure before the point of no return left the primary as it was, so the work is still owed: the
maintenance goes back to `pending` for the next window that still meets its `required_by`, with the
attempt counted and its reason kept. After `MAX_ATTEMPTS` such failures it stays pending (still
required: a security patch never silently disappears) but is marked `needs_operator`, and the planner
stops starting it on its own; `run` still does. A failure after the point of no return cannot roll back:
the maintenance ends `failed`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from kvmaint.clock import iso
from kvmaint.errors import ErrorReason, Internal
from server.domain import steps as S
from server.domain.driverstate import DriverState, StepOutputs
from server.domain.models import HistoryEntry, Maintenance, Status
from server.domain.windows import WINDOW


class Move(StrEnum):
    """The named transitions; each may take only the (from, to) pairs `ALLOWED` lists for it."""

    START = "start"
    CANCEL = "cancel"
    BEGIN_STEP = "begin_step"
    STEP_DONE = "step_done"
    COMPLETE = "complete"
    RETRY = "retry"  # failed before the point of no return: back to pending, attempt counted
    FAIL = "fail"  # failed after it: ended


_P, _PR, _RE, _RU = Status.PENDING, Status.PREPARING, Status.READY, Status.RUNNING
# (move, from, to): everything a maintenance may do. Ended ones never change again.
ALLOWED: frozenset[tuple[Move, Status, Status]] = frozenset(
    {
        (Move.START, _P, _PR),  # the planner or `run`
        (Move.CANCEL, _P, Status.CANCELED),  # its app destroyed or its campaign canceled, never once started
        (Move.BEGIN_STEP, _PR, _PR),  # prepare, catch_up, maintain_standby begin (or resume)
        (Move.BEGIN_STEP, _PR, _RU),  # restart in place skips the standby steps
        (Move.BEGIN_STEP, _RE, _RU),  # failover begins
        (Move.BEGIN_STEP, _RU, _RU),  # failover, repoint, finish resumed or next
        (Move.STEP_DONE, _PR, _PR),
        (Move.STEP_DONE, _PR, _RE),  # maintain_standby done: the standby is ready
        (Move.STEP_DONE, _RU, _RU),
        (Move.COMPLETE, _RU, Status.COMPLETED),  # the last step (finish, restart) runs as `running`
        (Move.RETRY, _PR, _P),
        (Move.RETRY, _RE, _P),
        (Move.RETRY, _RU, _P),
        (Move.FAIL, _RU, Status.FAILED),  # the point of no return is the failover step: `running`
    }
)


def _to(move: Move, m: Maintenance, status: Status, **changes: Any) -> Maintenance:
    if (move, m.status, status) not in ALLOWED:
        raise Internal(
            f"maintenance {m.id} cannot {move.value} from {m.status.value} to {status.value}",
            reason=ErrorReason.ILLEGAL_TRANSITION,
            metadata={"maintenance_id": m.id, "move": move.value, "from": m.status.value, "to": status.value},
        )
    return replace(m, status=status, **changes)


def start(m: Maintenance, now: datetime) -> Maintenance:
    """pending -> preparing; the runner takes it from there."""
    return _to(Move.START, m, Status.PREPARING, started_at=now, current_step="")


def begin_step(m: Maintenance, step: str, state: DriverState) -> Maintenance:
    """A step begins (or resumes): the status is the step's phase."""
    return _to(Move.BEGIN_STEP, m, S.status_during(step), current_step=step, state=state)


def step_done(m: Maintenance, step: str, outputs: StepOutputs | None = None) -> Maintenance:
    """A step finished with what it decided; maintain_standby leaves the standby ready."""
    status = Status.READY if step == S.MAINTAIN_STANDBY else m.status
    o = outputs or StepOutputs()
    pause = m.write_pause_ms if o.write_pause_ms is None else o.write_pause_ms
    redirect = m.redirect_ms if o.redirect_ms is None else o.redirect_ms
    state = m.state.finished(step, outputs)
    return _to(Move.STEP_DONE, m, status, state=state, write_pause_ms=pause, redirect_ms=redirect)


def complete(m: Maintenance, now: datetime) -> Maintenance:
    return _to(Move.COMPLETE, m, Status.COMPLETED, completed_at=now, current_step="")


def cancel(m: Maintenance, now: datetime) -> Maintenance:
    return _to(Move.CANCEL, m, Status.CANCELED, completed_at=now)


MAX_ATTEMPTS = 3
# With no window left before the deadline (or none at all, for minis), the next try is this much later.
RETRY_DELAY = timedelta(hours=1)


@dataclass(frozen=True)
class Failure:
    step: str
    reason: str
    past_point_of_no_return: bool


@dataclass(frozen=True)
class Outcome:
    maintenance: Maintenance
    history: HistoryEntry
    # The maintenance_failed event's message and attributes.
    message: str
    attributes: dict[str, str]


def retry_slot(m: Maintenance, now: datetime) -> tuple[datetime, str]:
    """When to try again: the next window that ends by the deadline; else the latest safe start before
    the deadline; else (no window, or the deadline is at hand or gone) an hour from now."""
    if m.window is not None:
        start = m.window.next_start(now + timedelta(microseconds=1))
        if start + WINDOW <= m.required_by:
            return start, f"the next window ({m.window.describe()}) before the deadline {iso(m.required_by)}"
        latest = m.required_by - WINDOW
        if latest >= now + RETRY_DELAY:
            return latest, f"the latest safe time before the deadline {iso(m.required_by)}"
    late = " (past its deadline: overdue)" if now + RETRY_DELAY + WINDOW > m.required_by else ""
    return now + RETRY_DELAY, f"in {RETRY_DELAY.seconds // 3600} hour, no window being left{late}"


def on_failure(m: Maintenance, failure: Failure, now: datetime) -> Outcome:
    step_reason = f"{failure.step}: {failure.reason}"
    failed = f"Failed at step {failure.step}: {failure.reason}"
    attempts = m.attempts + 1
    if failure.past_point_of_no_return:
        ended = _to(
            Move.FAIL,
            m,
            Status.FAILED,
            completed_at=now,
            failure_reason=step_reason,
            last_failure_reason=step_reason,
            attempts=attempts,
        )
        return Outcome(
            ended,
            HistoryEntry(now, Status.FAILED, failure.step, failed),
            failed,
            {"step": failure.step, "reason": failure.reason, "attempts": str(attempts), "status": "failed"},
        )
    needs_operator = m.needs_operator or attempts >= MAX_ATTEMPTS
    at, why = retry_slot(m, now)
    if needs_operator:
        then = (
            f"It stays required (by {iso(m.required_by)}) and waits for an operator after {attempts} "
            "failed attempts: it is no longer started automatically; `data:maintenances:run` still runs it."
        )
    else:
        then = f"Attempt {attempts} of {MAX_ATTEMPTS}; it is pending again for {iso(at)}, {why}."
    text = f"{failed}. The primary was left unchanged. {then}"
    back = _to(
        Move.RETRY,
        m,
        Status.PENDING,
        started_at=None,
        completed_at=None,
        current_step="",
        failure_reason="",
        write_pause_ms=-1,
        redirect_ms=-1,
        state=DriverState(),
        attempts=attempts,
        last_failure_reason=step_reason,
        needs_operator=needs_operator,
        previously_scheduled_for=m.scheduled_for,
        scheduled_for=at,
    )
    return Outcome(
        back,
        HistoryEntry(now, Status.PENDING, failure.step, text),
        text,
        {
            "step": failure.step,
            "reason": failure.reason,
            "attempts": str(attempts),
            "status": Status.PENDING.value,
            "scheduled_for": iso(at),
            "needs_operator": "true" if needs_operator else "false",
        },
    )


def overdue(m: Maintenance | None, now: datetime) -> bool:
    """Still owed past its `required_by`."""
    return m is not None and m.status.active and now > m.required_by

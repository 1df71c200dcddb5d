"""What a failed attempt does to a maintenance. Pure: (maintenance, failure, now) -> outcome.

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

from kvmaint.clock import iso
from server.domain.models import HistoryEntry, Maintenance, Status
from server.domain.windows import WINDOW

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
        ended = replace(
            m,
            status=Status.FAILED,
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
    back = replace(
        m,
        status=Status.PENDING,
        started_at=None,
        completed_at=None,
        current_step="",
        failure_reason="",
        write_pause_ms=-1,
        redirect_ms=-1,
        state={},
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

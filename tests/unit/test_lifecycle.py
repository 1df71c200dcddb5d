"""domain/lifecycle: what a failed attempt does to a maintenance, as tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from server.domain.driverstate import DriverState
from server.domain.lifecycle import MAX_ATTEMPTS, RETRY_DELAY, Failure, on_failure, overdue, retry_slot
from server.domain.models import Maintenance, Method, Reason, Status
from server.domain.windows import Window, parse_window

NOW = datetime(2026, 12, 4, 19, 40, tzinfo=UTC)  # a Friday, 10 minutes into the window below
FRIDAY = parse_window("Friday", "19:30")
NEXT_FRIDAY = datetime(2026, 12, 11, 19, 30, tzinfo=UTC)

STARTED = Maintenance(
    id="m-1",
    addon="redis-x",
    app="example-app",
    reason=Reason.SECURITY_PATCH,
    method=Method.FAILOVER,
    status=Status.PREPARING,
    required_by=datetime(2027, 1, 13, tzinfo=UTC),
    created_at=NOW - timedelta(days=1),
    scheduled_for=NOW - timedelta(minutes=10),
    started_at=NOW - timedelta(minutes=10),
    window=FRIDAY,
    current_step="catch_up",
    state=DriverState(target="db-2:7002", done=("prepare",)),
)
BEFORE = Failure("catch_up", "the standby db-2:7002 did not catch up within 60 s", False)


@pytest.mark.parametrize(
    ("window", "required_by", "expected", "why"),
    [
        (FRIDAY, datetime(2027, 1, 13, tzinfo=UTC), NEXT_FRIDAY, "the next window"),
        # The next window ends after the deadline: the latest safe start before it.
        (FRIDAY, NEXT_FRIDAY + timedelta(hours=2), NEXT_FRIDAY - timedelta(hours=2), "latest safe time"),
        # Minis have no window: an hour later.
        (None, datetime(2027, 1, 13, tzinfo=UTC), NOW + RETRY_DELAY, "no window being left"),
        # The deadline is at hand or gone: an hour later, overdue.
        (FRIDAY, NOW + timedelta(hours=2), NOW + RETRY_DELAY, "overdue"),
        (FRIDAY, NOW - timedelta(days=1), NOW + RETRY_DELAY, "overdue"),
    ],
)
def test_retry_slot(window: Window | None, required_by: datetime, expected: datetime, why: str) -> None:
    at, text = retry_slot(replace(STARTED, window=window, required_by=required_by), NOW)
    assert at == expected and why in text
    assert at > NOW


@pytest.mark.parametrize(
    ("attempts_before", "needs_operator", "status"),
    [(0, False, Status.PENDING), (1, False, Status.PENDING), (2, True, Status.PENDING), (5, True, Status.PENDING)],
)
def test_a_failure_before_the_point_of_no_return_goes_back_to_pending(
    attempts_before: int, needs_operator: bool, status: Status
) -> None:
    out = on_failure(replace(STARTED, attempts=attempts_before), BEFORE, NOW)
    m = out.maintenance
    assert (m.status, m.attempts, m.needs_operator) == (status, attempts_before + 1, needs_operator)
    assert m.last_failure_reason == "catch_up: the standby db-2:7002 did not catch up within 60 s"
    assert m.failure_reason == "" and m.completed_at is None and m.started_at is None
    # Progress of the failed attempt is gone, so the next one starts from prepare; the deadline stays.
    assert (m.state, m.current_step, m.required_by) == (DriverState(), "", STARTED.required_by)
    assert (m.scheduled_for, m.previously_scheduled_for) == (NEXT_FRIDAY, STARTED.scheduled_for)
    assert out.history.status is Status.PENDING and out.history.step == "catch_up"
    assert "The primary was left unchanged." in out.message
    assert out.attributes["attempts"] == str(attempts_before + 1)
    assert out.attributes["needs_operator"] == ("true" if needs_operator else "false")
    if needs_operator:
        assert "waits for an operator" in out.message and "data:maintenances:run" in out.message
    else:
        assert f"Attempt {attempts_before + 1} of {MAX_ATTEMPTS}" in out.message
        assert "pending again for 2026-12-11T19:30:00.000+00:00" in out.message


def test_once_marked_for_an_operator_it_stays_marked() -> None:
    out = on_failure(replace(STARTED, attempts=0, needs_operator=True), BEFORE, NOW)
    assert out.maintenance.needs_operator and out.maintenance.attempts == 1


def test_a_failure_after_the_point_of_no_return_ends_failed() -> None:
    after = Failure("finish", "could not restart the old primary", True)
    finishing = replace(STARTED, status=Status.RUNNING, current_step="finish")  # finish runs as `running`
    out = on_failure(finishing, after, NOW)
    m = out.maintenance
    assert (m.status, m.completed_at, m.attempts) == (Status.FAILED, NOW, 1)
    assert m.failure_reason == m.last_failure_reason == "finish: could not restart the old primary"
    assert out.history.status is Status.FAILED and "left unchanged" not in out.message
    assert out.attributes["status"] == "failed"


@pytest.mark.parametrize(
    ("status", "required_by", "expected"),
    [
        (Status.PENDING, NOW - timedelta(seconds=1), True),
        (Status.RUNNING, NOW - timedelta(seconds=1), True),
        (Status.PENDING, NOW + timedelta(seconds=1), False),
        (Status.COMPLETED, NOW - timedelta(days=1), False),
        (Status.FAILED, NOW - timedelta(days=1), False),
    ],
)
def test_overdue(status: Status, required_by: datetime, expected: bool) -> None:
    assert overdue(replace(STARTED, status=status, required_by=required_by), NOW) is expected
    assert overdue(None, NOW) is False

"""domain/lifecycle's transitions as a table: every (from, to) pair of statuses is either allowed and
taken by a named transition, or refused with an Internal error that names both ends."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from kvmaint.errors import ErrorReason, Internal
from server.domain import lifecycle
from server.domain import steps as S
from server.domain.driverstate import DriverState
from server.domain.lifecycle import Move
from server.domain.models import Maintenance, Method, Reason, Status

NOW = datetime(2026, 12, 4, 19, 40, tzinfo=UTC)
M = Maintenance(
    id="m-1",
    addon="redis-x",
    app="example-app",
    reason=Reason.SECURITY_PATCH,
    method=Method.FAILOVER,
    status=Status.PENDING,
    required_by=datetime(2027, 1, 13, tzinfo=UTC),
    created_at=NOW - timedelta(days=1),
    scheduled_for=NOW,
)
P, PR, RE, RU = Status.PENDING, Status.PREPARING, Status.READY, Status.RUNNING
C, F, X, N = Status.COMPLETED, Status.FAILED, Status.CANCELED, Status.NONE

Transition = Callable[[Maintenance], Maintenance]
BEFORE = lifecycle.Failure("catch_up", "lagging", past_point_of_no_return=False)
AFTER = lifecycle.Failure("repoint", "agent gone", past_point_of_no_return=True)

# Every named transition, the status it leads to, and the statuses it may leave (all others refused).
TABLE: list[tuple[Move, str, Transition, Status, set[Status]]] = [
    (Move.START, "start", lambda m: lifecycle.start(m, NOW), PR, {P}),
    (Move.CANCEL, "cancel", lambda m: lifecycle.cancel(m, NOW), X, {P}),
    (Move.BEGIN_STEP, "begin prepare", lambda m: lifecycle.begin_step(m, S.PREPARE, DriverState()), PR, {PR}),
    (Move.BEGIN_STEP, "begin catch_up", lambda m: lifecycle.begin_step(m, S.CATCH_UP, DriverState()), PR, {PR}),
    (
        Move.BEGIN_STEP,
        "begin maintain_standby",
        lambda m: lifecycle.begin_step(m, S.MAINTAIN_STANDBY, DriverState()),
        PR,
        {PR},
    ),
    (Move.BEGIN_STEP, "begin failover", lambda m: lifecycle.begin_step(m, S.FAILOVER, DriverState()), RU, {PR, RE, RU}),
    (Move.BEGIN_STEP, "begin repoint", lambda m: lifecycle.begin_step(m, S.REPOINT, DriverState()), RU, {PR, RE, RU}),
    (Move.BEGIN_STEP, "begin restart", lambda m: lifecycle.begin_step(m, S.RESTART, DriverState()), RU, {PR, RE, RU}),
    (
        Move.STEP_DONE,
        "maintain_standby done",
        lambda m: lifecycle.step_done(m, S.MAINTAIN_STANDBY),
        RE,
        {PR},
    ),
    (Move.COMPLETE, "complete", lambda m: lifecycle.complete(m, NOW), C, {RU}),
    (
        Move.RETRY,
        "fail before the point of no return",
        lambda m: lifecycle.on_failure(m, BEFORE, NOW).maintenance,
        P,
        {PR, RE, RU},
    ),
    (
        Move.FAIL,
        "fail after the point of no return",
        lambda m: lifecycle.on_failure(m, AFTER, NOW).maintenance,
        F,
        {RU},
    ),
]


@pytest.mark.parametrize(
    ("name", "transition", "to", "source"),
    [
        pytest.param(name, t, to, source, id=f"{name} from {source.value}")
        for (_, name, t, to, allowed), source in itertools.product(TABLE, list(Status))
        if source in allowed
    ],
)
def test_allowed(name: str, transition: Transition, to: Status, source: Status) -> None:
    assert transition(replace(M, status=source)).status is to


@pytest.mark.parametrize(
    ("name", "transition", "to", "source"),
    [
        pytest.param(name, t, to, source, id=f"{name} from {source.value}")
        for (_, name, t, to, allowed), source in itertools.product(TABLE, list(Status))
        if source not in allowed
    ],
)
def test_forbidden(name: str, transition: Transition, to: Status, source: Status) -> None:
    with pytest.raises(Internal) as caught:
        transition(replace(M, status=source))
    err = caught.value
    assert err.reason == ErrorReason.ILLEGAL_TRANSITION
    assert (err.metadata["maintenance_id"], err.metadata["from"], err.metadata["to"]) == (
        "m-1",
        source.value,
        to.value,
    )


def test_ended_maintenances_never_change_and_the_table_is_what_the_transitions_take() -> None:
    assert not {(a, b) for _, a, b in lifecycle.ALLOWED if a.ended or a is N or b is N}
    # Every allowed move is one the table takes (step_done's other pairs below), and only those.
    taken = {(move, source, to) for move, _, _, to, sources in TABLE for source in sources}
    kept = {(Move.STEP_DONE, PR, PR), (Move.STEP_DONE, RU, RU)}
    assert taken | kept == lifecycle.ALLOWED
    # step_done keeps the phase of every other step, and refuses it where no step can be under way.
    for step, phase in ((S.PREPARE, PR), (S.CATCH_UP, PR), (S.FAILOVER, RU), (S.FINISH, RU)):
        assert lifecycle.step_done(replace(M, status=phase), step).status is phase
        for other in set(Status) - {PR, RU}:  # no step under way
            with pytest.raises(Internal):
                lifecycle.step_done(replace(M, status=other), step)

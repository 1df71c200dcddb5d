"""Decision tables for the planner, the freezes and the 90-day rule (pure functions, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.domain.freezes import Freeze, next_allowed_start
from server.domain.models import Reason
from server.domain.planner import Due, Limits, Move, Start, Wait, decide
from server.domain.routine import routine_required_by
from server.domain.windows import Window

MON = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)  # a Monday
SUN_22 = Window(6, 22 * 60)  # Sunday 22:00 -> Monday 02:00


def due(
    id: str,
    *,
    at: datetime,
    required_by: datetime,
    window: Window | None = SUN_22,
    hosts: tuple[str, ...] = ("db-1", "db-2"),
    reason: Reason = Reason.SECURITY_PATCH,
    app: str = "a",
) -> Due:
    return Due(id, f"addon-{id}", app, reason, required_by, at, window, hosts)


def freeze(start: datetime, end: datetime, app: str = "a") -> Freeze:
    return Freeze("f1", app, start, end, "black friday", start)


def test_starts_when_due_inside_window_across_midnight() -> None:
    start = datetime(2026, 1, 11, 22, 0, tzinfo=UTC)
    now = datetime(2026, 1, 12, 1, 30, tzinfo=UTC)  # Monday 01:30, still in Sunday's window
    [d] = decide(now, [due("m", at=start, required_by=start + timedelta(days=20))], [], [], Limits())
    assert isinstance(d, Start)


def test_missed_window_moves_to_next_week() -> None:
    start = datetime(2026, 1, 11, 22, 0, tzinfo=UTC)
    now = datetime(2026, 1, 12, 2, 0, tzinfo=UTC)  # the window just ended
    [d] = decide(now, [due("m", at=start, required_by=start + timedelta(days=20))], [], [], Limits())
    assert isinstance(d, Move) and d.to == datetime(2026, 1, 18, 22, 0, tzinfo=UTC)
    assert "window ended" in d.why


def test_missed_window_with_no_later_window_before_deadline_starts_now() -> None:
    start = datetime(2026, 1, 11, 22, 0, tzinfo=UTC)
    now = datetime(2026, 1, 12, 2, 0, tzinfo=UTC)
    [d] = decide(now, [due("m", at=start, required_by=now + timedelta(hours=3))], [], [], Limits())
    assert isinstance(d, Start) and "deadline" in d.why


def test_limits_queue_in_deadline_order_then_start() -> None:
    now = datetime(2026, 1, 11, 22, 0, tzinfo=UTC)
    items = [
        due("late", at=now, required_by=now + timedelta(days=9), hosts=("db-3", "db-4")),
        due("soon", at=now, required_by=now + timedelta(days=2), hosts=("db-5", "db-6")),
        due("same-host", at=now, required_by=now + timedelta(days=1), hosts=("db-1", "db-7")),
    ]
    decisions = {d.id: d for d in decide(now, items, [("db-1", "db-2")], [], Limits(2, 1))}
    assert isinstance(decisions["same-host"], Wait) and "db-1" in decisions["same-host"].why
    assert isinstance(decisions["soon"], Start)
    assert isinstance(decisions["late"], Wait) and "limit 2" in decisions["late"].why
    # The running one ends: the next tick starts them.
    decisions = {d.id: d for d in decide(now, items, [], [], Limits(2, 1))}
    assert [k for k, v in decisions.items() if isinstance(v, Start)] == ["same-host", "soon"]


def test_freeze_moves_to_first_window_after_it() -> None:
    now = datetime(2026, 1, 11, 22, 0, tzinfo=UTC)
    f = freeze(now - timedelta(days=1), now + timedelta(days=3))
    [d] = decide(now, [due("m", at=now, required_by=now + timedelta(days=30))], [], [f], Limits())
    assert isinstance(d, Move) and d.to == datetime(2026, 1, 18, 22, 0, tzinfo=UTC)
    assert "freeze f1" in d.why


def test_freeze_of_another_app_does_not_apply_but_fleet_freeze_does() -> None:
    now = datetime(2026, 1, 11, 22, 0, tzinfo=UTC)
    item = due("m", at=now, required_by=now + timedelta(days=30))
    assert isinstance(
        decide(now, [item], [], [freeze(now, now + timedelta(days=1), "b")], Limits())[0], Start
    )
    assert isinstance(decide(now, [item], [], [freeze(now, now + timedelta(days=1), "")], Limits())[0], Move)


def test_emergency_inside_a_freeze_and_over_limits_starts_now() -> None:
    now = datetime(2026, 1, 7, 3, 0, tzinfo=UTC)  # Wednesday, far from any window
    f = freeze(now - timedelta(days=1), now + timedelta(days=3))
    item = due("e", at=now, required_by=now + timedelta(hours=1), reason=Reason.EMERGENCY)
    [d] = decide(now, [item], [("db-1", "db-2")] * 5, [f], Limits(1, 1))
    assert isinstance(d, Start) and "emergency" in d.why


def test_next_allowed_start_skips_frozen_windows_and_meets_the_deadline() -> None:
    f = freeze(datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 1, 20, tzinfo=UTC))
    got = next_allowed_start(SUN_22, MON, MON + timedelta(days=30), [f], "a")
    assert got == datetime(2026, 1, 25, 22, 0, tzinfo=UTC)
    # A deadline before the first free window: the first free slot at the freeze's end.
    got = next_allowed_start(
        SUN_22, datetime(2026, 1, 12, tzinfo=UTC), datetime(2026, 1, 21, tzinfo=UTC), [f], "a"
    )
    assert got == datetime(2026, 1, 20, tzinfo=UTC)
    # No free slot at all before the deadline.
    assert (
        next_allowed_start(
            SUN_22, datetime(2026, 1, 12, tzinfo=UTC), datetime(2026, 1, 19, tzinfo=UTC), [f], "a"
        )
        is None
    )


def test_ninety_day_rule() -> None:
    last = MON
    assert routine_required_by(last, last + timedelta(days=75)) is None
    assert routine_required_by(last, last + timedelta(days=76)) == last + timedelta(days=90)
    late = last + timedelta(days=120)  # the scheduler was down past the mark
    assert routine_required_by(last, late) == late + timedelta(hours=4)

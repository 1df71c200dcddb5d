"""The campaign's pure parts as tables: waves, windows, deadlines, and the step of a running campaign."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kvmaint.errors import InvalidArgument
from server.domain import campaigns as dc
from server.domain.campaigns import CampaignStatus, Candidate, Spec, WaveCounts
from server.domain.freezes import Freeze
from server.domain.windows import WINDOW, Window

MONDAY_NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SPEC = Spec("valkey-8.1", "redis_upgrade", MONDAY_NOON + timedelta(days=30), 1, (25, 100), timedelta(hours=2))


@pytest.mark.parametrize(
    ("text", "waves"),
    [("10%,50%,100%", (10, 50, 100)), ("100%", (100,)), ("25, 100", (25, 100))],
)
def test_waves_parse(text: str, waves: tuple[int, ...]) -> None:
    assert dc.parse_waves(text) == waves


@pytest.mark.parametrize("text", ["", "50%", "50%,25%,100%", "0%,100%", "10%,101%", "ten%"])
def test_bad_waves_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        dc.parse_waves(text)


@pytest.mark.parametrize(
    ("n", "canary", "waves", "sizes"),
    [
        (12, 1, (25, 100), [1, 3, 8]),
        (12, 0, (25, 100), [3, 9]),
        (5, 1, (10, 50, 100), [1, 1, 1, 2]),
        (3, 1, (10, 50, 100), [1, 1, 1]),  # 10% and 50% of 2 are both one add-on: one wave, not two
        (1, 3, (50, 100), [1]),
    ],
)
def test_wave_sizes(n: int, canary: int, waves: tuple[int, ...], sizes: list[int]) -> None:
    ordered = [Candidate(f"a{i:02d}", "app", None) for i in range(n)]
    got = dc.assign_waves(ordered, canary, waves)
    assert [got.count(w) for w in sorted(set(got))] == sizes
    assert got == sorted(got)


def test_canary_is_the_soonest_window_and_later_waves_wait_for_the_soak() -> None:
    # Windows Monday 14:00 (2 h from now), Tuesday 10:00, Monday 16:00, Wednesday 08:00.
    cands = [
        Candidate("b-tue", "app", Window(1, 10 * 60)),
        Candidate("a-mon16", "app", Window(0, 16 * 60)),
        Candidate("c-mon14", "app", Window(0, 14 * 60)),
        Candidate("d-wed", "app", Window(2, 8 * 60)),
        Candidate("e-mini", "app", None),
    ]
    plan = dc.plan(cands, SPEC, MONDAY_NOON)
    by = {e.addon: e for e in plan.entries}
    # The mini has no window: it is the soonest (now), so it is the canary.
    assert by["e-mini"].wave == 0 and by["e-mini"].at == MONDAY_NOON
    # Wave 1 (25% of 4 = 1): the next soonest, Monday 14:00, from now + soak = 14:00: its window.
    assert by["c-mon14"].wave == 1 and by["c-mon14"].at == datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
    # Wave 2 may start at 14:00 + 2 h = 16:00: Monday 16:00's window starts then; the others follow.
    assert plan.wave_starts == (
        MONDAY_NOON,
        MONDAY_NOON + timedelta(hours=2),
        datetime(2026, 1, 5, 16, tzinfo=UTC),
    )
    assert by["a-mon16"].at == datetime(2026, 1, 5, 16, tzinfo=UTC)
    assert by["b-tue"].at == datetime(2026, 1, 6, 10, tzinfo=UTC)
    assert by["d-wed"].at == datetime(2026, 1, 7, 8, tzinfo=UTC)
    assert all(e.meets_deadline for e in plan.entries)
    assert sum(n for _, n in plan.per_day) == 5
    assert dict(plan.per_day)[datetime(2026, 1, 5).date()] == 3


def test_a_window_under_way_when_the_wave_may_start_is_used() -> None:
    # Monday 11:00 to 15:00 is under way at noon: the add-on is maintained in it, from its start.
    [e] = dc.plan([Candidate("a", "app", Window(0, 11 * 60))], SPEC, MONDAY_NOON).entries
    assert e.at == datetime(2026, 1, 5, 11, tzinfo=UTC) and e.window_end == e.at + WINDOW


def test_deadline_missed_is_said_and_a_freeze_moves_the_window() -> None:
    # Required by Wednesday 16:00; a soak of two days.
    spec = Spec("v", "redis_upgrade", MONDAY_NOON + timedelta(days=2, hours=4), 1, (100,), timedelta(days=2))
    cands = [Candidate("a", "app", Window(0, 14 * 60)), Candidate("b", "app", Window(2, 9 * 60))]
    plan = dc.plan(cands, spec, MONDAY_NOON)
    late = {e.addon: e.meets_deadline for e in plan.entries}
    # b's wave may start Wednesday 14:00 (a's window + 2 days): its window (Wednesday 09:00) is gone
    # and no safe time is left before the deadline.
    assert late == {"a": True, "b": False}
    freeze = Freeze("f", "", MONDAY_NOON, MONDAY_NOON + timedelta(days=1), "fleet freeze", MONDAY_NOON)
    moved = dc.plan([Candidate("a", "app", Window(0, 14 * 60))], SPEC, MONDAY_NOON, [freeze])
    assert moved.entries[0].at == datetime(2026, 1, 12, 14, tzinfo=UTC)


def test_parse_duration() -> None:
    assert dc.parse_duration("1h30m") == timedelta(minutes=90)
    assert dc.parse_duration("3s") == timedelta(seconds=3)
    with pytest.raises(InvalidArgument):
        dc.parse_duration("soon")


def _counts(**kw: object) -> WaveCounts:
    base: dict[str, object] = {"filed": True, "size": 4}
    base.update(kw)
    return WaveCounts(**base)  # type: ignore[arg-type]


T = MONDAY_NOON


@pytest.mark.parametrize(
    ("counts", "baseline", "now", "action"),
    [
        (WaveCounts(), 0, T, dc.Release(0, "wave 0 first")),
        (_counts(running=1, open=1, completed=3), 0, T, dc.Hold("wave 0: 1 running, 0 to go")),
        (
            _counts(failed=1, failed_attempts=1, open=1, completed=3),
            0,
            T,
            dc.Halt("1 maintenance attempt(s) of wave 0 failed (--halt-on-failures 1)"),
        ),
        # After a resume, the failure already seen no longer halts it.
        (
            _counts(failed=1, failed_attempts=1, open=1, completed=3),
            1,
            T,
            dc.Hold("wave 0: 0 running, 1 to go"),
        ),
        (
            _counts(completed=4, max_pause_ms=1500, max_pause_addon="a", ended_at=T),
            0,
            T,
            dc.Halt("a paused writes 1500 ms in wave 0 (--halt-on-pause-ms 1000)"),
        ),
        (
            _counts(completed=4, max_pause_ms=20, ended_at=T),
            0,
            T + timedelta(hours=1),
            dc.Soak(T + timedelta(hours=2)),
        ),
        (
            _counts(completed=4, ended_at=T),
            0,
            T + timedelta(hours=2),
            dc.Release(1, "wave 0 ended and soaked"),
        ),
    ],
)
def test_decide(counts: WaveCounts, baseline: int, now: datetime, action: dc.Action) -> None:
    spec = Spec("v", "redis_upgrade", T + timedelta(days=9), halt_on_pause_ms=1000, soak=timedelta(hours=2))
    assert dc.decide(CampaignStatus.RUNNING, 0, 3, counts, spec, baseline, now) == action


def test_decide_finishes_after_the_last_wave_and_holds_when_halted() -> None:
    spec = Spec("v", "redis_upgrade", T + timedelta(days=9), soak=timedelta(0))
    done = _counts(completed=4, ended_at=T)
    assert isinstance(dc.decide(CampaignStatus.RUNNING, 2, 3, done, spec, 0, T), dc.Finish)
    assert isinstance(dc.decide(CampaignStatus.HALTED, 0, 3, WaveCounts(), spec, 0, T), dc.Hold)


def test_counts_of_a_wave() -> None:
    from server.domain.campaigns import Member, MemberState

    def state(
        addon: str, status: str | None, attempts: int = 0, pause: int = -1, done: datetime | None = None
    ):
        return MemberState(
            Member(addon, "app", 1, T, None, True, "m" if status else ""), status, attempts, pause, done
        )

    states = [
        state("a", "completed", pause=4, done=T),
        state("b", "running", pause=1500),  # measured at the failover; its finish step still runs
        state("c", "pending", attempts=1),  # a failed attempt, pending again
        state("d", "pending"),
        state("e", "failed", attempts=2, done=T + timedelta(minutes=1)),
    ]
    c = dc.counts(states, None)
    assert (c.pending, c.running, c.completed, c.failed, c.open) == (1, 1, 1, 2, 3)
    assert (c.failed_attempts, c.max_pause_ms, c.max_pause_addon, c.filed, c.done) == (
        3,
        1500,
        "b",
        True,
        False,
    )
    # After a resume at T + 30 s, what ended before no longer counts for the pause.
    assert (
        dc.counts([state("a", "completed", pause=4000, done=T)], T + timedelta(seconds=30)).max_pause_ms == -1
    )
    over = dc.counts(
        [state("a", "completed", done=T), state("e", "failed", done=T + timedelta(minutes=1))], None
    )
    assert over.done and over.ended_at == T + timedelta(minutes=1)
    assert not dc.counts([state("a", None)], None).filed

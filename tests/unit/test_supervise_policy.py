"""The apps:exec decisions as tables: (state, event) -> (state, actions), no processes."""

from __future__ import annotations

import signal

import pytest

from kvmaint.supervise import policy as P

OLD = {"REDIS_URL": "redis://10.0.0.1:6380"}
NEW = {"REDIS_URL": "redis://10.0.0.2:6381"}
GRACE = 30.0


def run(events: list[P.Event], state: P.State | None = None) -> tuple[P.State, list[P.Action]]:
    state = state or P.State()
    actions: list[P.Action] = []
    for event in events:
        state, more = P.decide(state, event, GRACE)
        actions += more
    return state, actions


def kinds(actions: list[P.Action]) -> list[object]:
    """Actions without the sentences, which the process tests read."""
    return [a for a in actions if not isinstance(a, P.Say)]


def test_first_config_starts_the_child() -> None:
    state, actions = run([P.ConfigSeen(OLD)])
    assert state.phase is P.Phase.RUNNING and state.running == OLD
    assert actions == [P.Start(OLD, "started")]


@pytest.mark.parametrize(
    ("events", "code", "said"),
    [
        ([P.WatchLost("Cannot reach the scheduler at h:1: connection refused")], 1, "Cannot reach"),
        ([P.AppGone()], 1, "the app was deleted"),
        ([P.SignalReceived(signal.SIGINT)], 130, None),
    ],
)
def test_before_any_config_nothing_starts(events: list[P.Event], code: int, said: str | None) -> None:
    state, actions = run(events)
    assert state.phase is P.Phase.DONE
    assert kinds(actions) == [P.Exit(code)]
    assert said is None or said in actions[0].text  # type: ignore[union-attr]


def test_a_change_restarts_sigterm_grace_then_start_with_the_new_values() -> None:
    state, actions = run([P.ConfigSeen(OLD), P.ConfigSeen(NEW)])
    assert state.phase is P.Phase.RESTARTING and state.pending == NEW
    assert kinds(actions) == [P.Start(OLD, "started"), P.SendSignal(signal.SIGTERM), P.ArmGrace(1)]
    said = [a.text for a in actions if isinstance(a, P.Say)]
    assert said == ["REDIS_URL changed from redis://10.0.0.1:6380 to redis://10.0.0.2:6381: "
                    "restarting (SIGTERM, up to 30 s)"]
    state, actions = run([P.GraceOver(1), P.ChildExited(-signal.SIGKILL)], state)
    assert kinds(actions) == [P.SendSignal(signal.SIGKILL),
                              P.Start(NEW, "restarted (the previous one was ended by SIGKILL)")]
    assert state.phase is P.Phase.RUNNING and state.running == NEW and state.pending is None


def test_the_same_config_after_a_reconnect_restarts_nothing() -> None:
    state, _ = run([P.ConfigSeen(OLD)])
    state, actions = run([P.WatchLost("scheduler gone"), P.WatchLost("still gone"), P.ConfigSeen(OLD)], state)
    assert state.phase is P.Phase.RUNNING and state.connected
    assert kinds(actions) == []
    assert [a.text for a in actions if isinstance(a, P.Say)] == [
        "lost the scheduler (scheduler gone); the command keeps running, reconnecting",
        "reconnected to the scheduler",
        "config vars unchanged; nothing to restart",
    ]


def test_changes_during_a_restart_restart_once_with_the_latest() -> None:
    third = {**NEW, "CACHE_URL": "redis://10.0.0.3:1"}
    _, actions = run([P.ConfigSeen(OLD), P.ConfigSeen(NEW), P.ConfigSeen(third), P.ChildExited(0)])
    assert kinds(actions) == [
        P.Start(OLD, "started"), P.SendSignal(signal.SIGTERM), P.ArmGrace(1),
        P.Start(third, "restarted (the previous one exited with status 0)"),
    ]


def test_a_stale_grace_timer_kills_nothing() -> None:
    state, _ = run([P.ConfigSeen(OLD), P.ConfigSeen(NEW), P.ChildExited(0)])
    state, actions = run([P.GraceOver(1)], state)  # the timer of the stop that already ended
    assert actions == []
    state, actions = run([P.ConfigSeen(OLD), P.GraceOver(1), P.GraceOver(2)], state)
    assert kinds(actions) == [P.SendSignal(signal.SIGTERM), P.ArmGrace(2), P.SendSignal(signal.SIGKILL)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_is_passed_on_and_the_childs_status_is_ours(signum: int) -> None:
    state, actions = run([P.ConfigSeen(OLD), P.SignalReceived(signum), P.ConfigSeen(NEW), P.ChildExited(7)])
    assert kinds(actions) == [P.Start(OLD, "started"), P.SendSignal(signum), P.ArmGrace(1), P.Exit(7)]
    assert state.phase is P.Phase.DONE


def test_a_signal_during_a_restart_cancels_the_restart() -> None:
    _, actions = run([P.ConfigSeen(OLD), P.ConfigSeen(NEW), P.SignalReceived(signal.SIGINT),
                      P.ChildExited(-signal.SIGINT)])
    assert kinds(actions)[-3:] == [P.SendSignal(signal.SIGINT), P.ArmGrace(2), P.Exit(130)]


def test_a_child_ending_on_its_own_ends_us_with_its_status() -> None:
    _, actions = run([P.ConfigSeen(OLD), P.ChildExited(3)])
    assert kinds(actions)[-1] == P.Exit(3)
    _, actions = run([P.ConfigSeen(OLD), P.ChildExited(-signal.SIGSEGV)])
    assert kinds(actions)[-1] == P.Exit(128 + signal.SIGSEGV)


def test_a_deleted_app_stops_the_child_and_exits_1() -> None:
    _, actions = run([P.ConfigSeen(OLD), P.AppGone(), P.ChildExited(-signal.SIGTERM)])
    assert kinds(actions) == [P.Start(OLD, "started"), P.SendSignal(signal.SIGTERM), P.ArmGrace(1), P.Exit(1)]


def test_a_command_that_cannot_start_exits_with_the_shells_code() -> None:
    _, actions = run([P.ConfigSeen(OLD), P.StartFailed("cannot run ./web: No such file or directory", 127)])
    assert kinds(actions)[-1] == P.Exit(127)


@pytest.mark.parametrize(
    ("old", "new", "text"),
    [
        ({"A": "redis://u:secret@h:1"}, {"A": "redis://u:other@h:2"}, "A changed from redis://u:***@h:1 to "
         "redis://u:***@h:2"),
        ({}, {"B": "x"}, "B was set to x"),
        ({"B": "x", "C": "y"}, {"C": "z"}, "B was removed (was x); C changed from y to z"),
    ],
)
def test_a_change_is_described_without_passwords(old: dict[str, str], new: dict[str, str], text: str) -> None:
    assert P.describe_change(old, new) == text

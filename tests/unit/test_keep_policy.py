"""The keeper's decisions as tables: what it does with one server, given what it sees and remembers."""

from __future__ import annotations

import pytest

from agent.keep import Act, Assignment, KeepPolicy, Seen, Supervision, Track, after_start, decide
from agent.redisnode.role import DesiredRole
from agent.redisnode.status import RedisServerStatus

POLICY = KeepPolicy(base_seconds=1.0, cap_seconds=8.0, max_starts=4, stable_seconds=60.0)
PRIMARY = Assignment(DesiredRole.primary(), "redis-a")
REPLICA = Assignment(DesiredRole.replica_of("10.0.0.1", 7001), "redis-a")
DOWN = RedisServerStatus(port=7002, reachable=False, error="Connection refused")
UP_PRIMARY = RedisServerStatus(port=7002, reachable=True, role="master")
UP_REPLICA = RedisServerStatus(port=7002, reachable=True, role="slave", primary_host="10.0.0.1", primary_port=7001)
ELSEWHERE = RedisServerStatus(port=7002, reachable=True, role="slave", primary_host="10.0.0.9", primary_port=7001)


@pytest.mark.parametrize(
    ("seen", "act", "supervision", "words"),
    [
        (Seen(False, DOWN), Act.NOTHING, Supervision.WATCHED, "adopted: watched, never started"),
        (Seen(False, UP_PRIMARY), Act.NOTHING, Supervision.WATCHED, "up"),
        (Seen(True, DOWN), Act.NOTHING, Supervision.NO_ROLE, "no role from the scheduler's record"),
        (Seen(True, DOWN, assignment=Assignment(PRIMARY.role, "redis-a", hold=True)), Act.NOTHING,
         Supervision.HELD, "a maintenance of redis-a runs"),
        (Seen(True, DOWN, busy=True, assignment=PRIMARY), Act.NOTHING, Supervision.KEPT, "a command works"),
        (Seen(True, DOWN, process_alive=True, assignment=PRIMARY), Act.NOTHING, Supervision.KEPT,
         "does not answer"),
        (Seen(True, DOWN, assignment=PRIMARY), Act.START, Supervision.RESTARTING, "starting it as primary"),
        (Seen(True, DOWN, assignment=REPLICA), Act.START, Supervision.RESTARTING,
         "starting it as replica of 10.0.0.1:7001"),
        (Seen(True, UP_PRIMARY, assignment=PRIMARY), Act.NOTHING, Supervision.KEPT, "running as primary"),
        (Seen(True, UP_REPLICA, assignment=REPLICA), Act.NOTHING, Supervision.KEPT, "running as replica"),
        (Seen(True, UP_PRIMARY, assignment=REPLICA), Act.RELINK, Supervision.KEPT, "writable while the record"),
        (Seen(True, ELSEWHERE, assignment=REPLICA), Act.RELINK, Supervision.KEPT,
         "replicates from 10.0.0.9:7001 while the record says"),
        # The record says primary but it replicates: never promoted by the keeper (a failover's job).
        (Seen(True, UP_REPLICA, assignment=PRIMARY), Act.NOTHING, Supervision.KEPT, "running as primary"),
        # Under maintenance, or busy: a running server is left alone whatever its role.
        (Seen(True, UP_PRIMARY, assignment=Assignment(REPLICA.role, "redis-a", hold=True)), Act.NOTHING,
         Supervision.KEPT, "running"),
        (Seen(True, UP_PRIMARY, busy=True, assignment=REPLICA), Act.NOTHING, Supervision.KEPT, "running"),
    ],
)
def test_what_the_keeper_does(seen: Seen, act: Act, supervision: Supervision, words: str) -> None:
    decision, _ = decide(seen, Track(), 100.0, POLICY)
    assert (decision.act, decision.supervision) == (act, supervision)
    assert words in decision.why


def test_restarts_back_off_then_crash_loop() -> None:
    seen = Seen(True, DOWN, assignment=PRIMARY)
    track, now, starts_at = Track(), 0.0, []
    while now < 100:
        decision, track = decide(seen, track, now, POLICY)
        if decision.act is Act.START:
            starts_at.append(now)
            track = after_start(track, now, "exited with code 1: bad config", POLICY)
        now += 0.5
    # At once, then 1, 2 and 4 s later; then no more.
    assert starts_at == [0.0, 1.0, 3.0, 7.0]
    decision, _ = decide(seen, track, now, POLICY)
    assert decision.supervision is Supervision.CRASH_LOOPING
    assert "4 starts in a row did not stay up 60 s" in decision.why and "bad config" in decision.why


def test_the_backoff_is_capped() -> None:
    track = Track()
    for _ in range(10):
        track = after_start(track, 0.0, "", KeepPolicy(base_seconds=1.0, cap_seconds=8.0, max_starts=99))
    assert track.next_try == 8.0


def test_a_start_that_stays_up_resets_the_count() -> None:
    track = after_start(after_start(Track(), 0.0, "", POLICY), 1.0, "", POLICY)
    up = Seen(True, UP_PRIMARY, assignment=PRIMARY)
    _, track = decide(up, track, 30.0, POLICY)
    assert track.starts == 2  # not stable yet
    _, track = decide(up, track, 61.0, POLICY)
    assert track == Track()
    decision, _ = decide(Seen(True, DOWN, assignment=PRIMARY), track, 62.0, POLICY)
    assert decision.act is Act.START  # a death after a stable run restarts at once


def test_a_crash_looping_server_brought_back_is_kept_again() -> None:
    track = Track(starts=4, last_start=0.0, next_try=8.0, crash_looping=True)
    decision, track = decide(Seen(True, UP_PRIMARY, assignment=PRIMARY), track, 10.0, POLICY)
    assert decision.supervision is Supervision.KEPT and not track.crash_looping

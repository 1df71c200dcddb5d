"""What the agent's keeper does with one local server on one pass. Pure: (what it sees, its memory of the
server, now) -> (decision, memory); the I/O is in agent/keeper.py.

A managed server that is down is started in the role the scheduler's record gives it (never its config's,
see redisnode/role.py): at once the first time (a host reboot), then after an exponential backoff when it
dies again before it stayed up `stable_seconds`. After `max_starts` such starts in a row it is
crash-looping: left down and reported until it is brought back by other means (a maintenance's restart,
an operator) or the agent restarts. A running server with a known role is re-linked when it replicates
from another primary than the record's, and demoted when it is writable while the record says standby.
Adopted servers are only watched. A server whose add-on is under maintenance (its steps own it), one a
command is working on, and one whose role the scheduler has not given are never started.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from agent.backoff import exponential
from agent.redisnode.role import DesiredRole
from agent.redisnode.status import RedisServerStatus


class Supervision(StrEnum):
    KEPT = "kept"
    WATCHED = "watched"
    NO_ROLE = "no_role"
    HELD = "held"
    RESTARTING = "restarting"
    CRASH_LOOPING = "crash_looping"


class Act(StrEnum):
    NOTHING = "nothing"
    START = "start"
    RELINK = "relink"


@dataclass(frozen=True)
class KeepPolicy:
    # Delay before the n-th start in a row (n >= 2): base * 2**(n-2), at most cap; the first is at once.
    base_seconds: float = 1.0
    cap_seconds: float = 30.0
    # Starts in a row that did not stay up before the server counts as crash-looping.
    max_starts: int = 5
    # Up this long after a start: the start stuck, and the count begins again.
    stable_seconds: float = 60.0


@dataclass(frozen=True)
class Assignment:
    """A server's entry in the scheduler's record (ManagedRole)."""

    role: DesiredRole
    addon: str = ""
    hold: bool = False


@dataclass(frozen=True)
class Seen:
    managed: bool
    status: RedisServerStatus
    # Its pid runs (it may be loading a large AOF, or hung): never start a second one on its port.
    process_alive: bool = False
    # A command holds the server (a maintenance's restart in progress).
    busy: bool = False
    assignment: Assignment | None = None


@dataclass(frozen=True)
class Track:
    """The keeper's memory of one server; in memory only, so an agent restart begins afresh."""

    starts: int = 0
    last_start: float | None = None
    next_try: float = 0.0
    last_error: str = ""
    crash_looping: bool = False


@dataclass(frozen=True)
class Decision:
    act: Act
    supervision: Supervision
    why: str
    role: DesiredRole | None = None


@dataclass(frozen=True)
class Report:
    """What the keeper does with a server, for the heartbeat."""

    supervision: Supervision
    restarts: int
    detail: str


def _nothing(supervision: Supervision, why: str) -> Decision:
    return Decision(Act.NOTHING, supervision, why)


def decide(seen: Seen, track: Track, now: float, policy: KeepPolicy) -> tuple[Decision, Track]:
    status = seen.status
    if not seen.managed:
        state = "up" if status.reachable else f"down ({status.error})"
        return _nothing(Supervision.WATCHED, f"adopted: watched, never started by the agent; {state}"), track
    a = seen.assignment
    if status.reachable:
        if track.starts and track.last_start is not None and now - track.last_start >= policy.stable_seconds:
            track = Track()
        elif track.crash_looping:
            track = replace(track, crash_looping=False)
        if seen.busy or a is None or a.hold:
            return _nothing(Supervision.KEPT, "running"), track
        role = a.role
        if not role.is_primary and status.is_primary:
            why = f"writable while the record says {role.describe()}: demoting it"
            return Decision(Act.RELINK, Supervision.KEPT, why, role), track
        elsewhere = not status.follows(role.primary_host, role.primary_port)
        if not role.is_primary and status.is_replica and elsewhere:
            why = (
                f"replicates from {status.primary_host}:{status.primary_port} while the record says "
                f"{role.describe()}: re-linking it"
            )
            return Decision(Act.RELINK, Supervision.KEPT, why, role), track
        return _nothing(Supervision.KEPT, f"running as {role.describe()}"), track
    if seen.busy:
        return _nothing(Supervision.KEPT, "down while a command works on it"), track
    if seen.process_alive:
        return _nothing(Supervision.KEPT, "its process runs but does not answer (loading or hung)"), track
    if a is None:
        return _nothing(Supervision.NO_ROLE, "down; no role from the scheduler's record, so left down"), track
    if a.hold:
        why = f"down while a maintenance of {a.addon or 'its add-on'} runs"
        return _nothing(Supervision.HELD, why), track
    if track.crash_looping or track.starts >= policy.max_starts:
        track = replace(track, crash_looping=True)
        why = (
            f"crash-looping: {track.starts} starts in a row did not stay up {policy.stable_seconds:g} s; "
            f"no longer restarted (last: {track.last_error or 'it died'})"
        )
        return _nothing(Supervision.CRASH_LOOPING, why), track
    if now < track.next_try:
        why = f"down; start {track.starts + 1} in {track.next_try - now:.1f} s as {a.role.describe()}"
        return _nothing(Supervision.RESTARTING, why), track
    why = f"down; starting it as {a.role.describe()} (start {track.starts + 1} of {policy.max_starts})"
    return Decision(Act.START, Supervision.RESTARTING, why, a.role), track


def after_start(track: Track, now: float, error: str, policy: KeepPolicy) -> Track:
    """The memory after a start (successful or not): counted, and the next one not before the backoff."""
    starts = track.starts + 1
    delay = exponential(starts - 1, policy.base_seconds, policy.cap_seconds)
    return Track(starts=starts, last_start=now, next_try=now + delay, last_error=error)

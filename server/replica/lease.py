"""When to renew the lease and when to stop acting: pure decisions on monotonic times, no I/O.

Safety rests on one inequality. A renewal is *sent* at local monotonic time `sent`; the database sets
the lease's expiry to its own clock at execution plus `lease`, which is no earlier than `sent + lease`
in real time. So a replica that stops acting at `sent + lease - margin` (the margin covers clock rate
drift and a late wake-up of the event loop) has stopped before the lease can expire anywhere, and
before any other replica can take it. Nothing here reads a clock: the caller passes the times.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


@dataclass(frozen=True)
class LeaseTiming:
    lease: float = 5.0  # seconds the database holds the lease after a renewal
    renew_every: float = 1.0
    margin: float = 1.0  # stop acting this long before the earliest possible expiry

    @classmethod
    def for_lease(cls, lease: float) -> LeaseTiming:
        """Renew about every second (more often for short leases), margin a fifth of the lease."""
        if lease <= 0:
            raise ValueError("the lease must be longer than 0 s")
        return cls(lease=lease, renew_every=min(1.0, lease / 4), margin=max(0.2, lease / 5))

    @property
    def renew_timeout(self) -> float:
        """How long one renewal may take: past this it could not extend the acting deadline usefully."""
        return max(0.1, self.lease - self.margin)


class Change(Enum):
    NONE = "none"  # still a follower
    KEPT = "kept"  # renewed at the same term
    GAINED = "gained"  # a new term is ours (stop the old term's work first if any was running)
    LOST = "lost"  # another holds the lease, or our acting deadline passed


@dataclass(frozen=True)
class LeaseState:
    term: int = 0  # the term we act under; 0: none yet
    acting_until: float | None = None  # monotonic deadline while leader; None: not leader

    @property
    def leading(self) -> bool:
        return self.acting_until is not None

    def may_act(self, now: float) -> bool:
        return self.acting_until is not None and now < self.acting_until


def after_renewal(
    state: LeaseState, sent: float, got: int | None, now: float, timing: LeaseTiming
) -> tuple[LeaseState, Change]:
    """The state after a renewal sent at `sent` came back at `now` with term `got` (None: held by
    another). A renewal that came back after our deadline does not revive the old term's acting."""
    if got is None:
        return LeaseState(term=state.term), (Change.LOST if state.leading else Change.NONE)
    until = sent + timing.lease - timing.margin
    if until <= now:  # answered too late to be of use: treat as not renewed
        return expire(state, now)
    if state.leading and got == state.term and state.may_act(now):
        return replace(state, acting_until=until), Change.KEPT
    return LeaseState(term=got, acting_until=until), Change.GAINED


def after_failure(state: LeaseState, now: float) -> tuple[LeaseState, Change]:
    """A renewal failed (database unreachable, timeout): keep acting only until the deadline."""
    return expire(state, now)


def expire(state: LeaseState, now: float) -> tuple[LeaseState, Change]:
    """Stops acting once the deadline passed; otherwise nothing changes."""
    if state.leading and not state.may_act(now):
        return LeaseState(term=state.term), Change.LOST
    return state, Change.NONE


def next_wake(state: LeaseState, sent: float, now: float, timing: LeaseTiming) -> float:
    """Seconds to wait before the next renewal: `renew_every` after the last one was sent, and never
    past the acting deadline (so losing it is noticed on time)."""
    wait = sent + timing.renew_every - now
    if state.acting_until is not None:
        wait = min(wait, state.acting_until - now)
    return max(0.0, wait)

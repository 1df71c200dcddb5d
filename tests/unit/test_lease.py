"""The pure lease decisions (server/replica/lease.py): a replica acts only until the last successful
renewal it *sent* plus the lease minus the margin, so it stops before the lease can expire anywhere."""

from __future__ import annotations

import pytest

from server.replica.lease import (
    Change,
    LeaseState,
    LeaseTiming,
    after_failure,
    after_renewal,
    expire,
    next_wake,
)

T = LeaseTiming(lease=5.0, renew_every=1.0, margin=1.0)


def test_timing_for_a_lease_renews_about_every_second_and_keeps_a_fifth_as_margin() -> None:
    assert LeaseTiming.for_lease(5.0) == LeaseTiming(5.0, 1.0, 1.0)
    assert LeaseTiming.for_lease(2.0) == LeaseTiming(2.0, 0.5, 0.4)
    assert LeaseTiming.for_lease(5.0).renew_timeout == 4.0
    with pytest.raises(ValueError):
        LeaseTiming.for_lease(0)


def test_gaining_keeping_and_the_deadline_counts_from_the_send_not_the_answer() -> None:
    s, change = after_renewal(LeaseState(), sent=10.0, got=3, now=10.9, timing=T)
    assert change is Change.GAINED and s == LeaseState(term=3, acting_until=14.0)
    assert s.may_act(13.99) and not s.may_act(14.0)
    s, change = after_renewal(s, sent=11.0, got=3, now=12.5, timing=T)  # a slow answer still counts
    assert change is Change.KEPT and s.acting_until == 15.0


def test_a_failed_renewal_keeps_acting_only_until_the_deadline() -> None:
    s = LeaseState(term=3, acting_until=14.0)
    assert after_failure(s, 13.0) == (s, Change.NONE)
    assert after_failure(s, 14.0) == (LeaseState(term=3), Change.LOST)
    assert expire(s, 14.5) == (LeaseState(term=3), Change.LOST)
    assert expire(LeaseState(term=3), 99.0) == (LeaseState(term=3), Change.NONE)


def test_another_holder_or_a_too_late_answer_means_lost() -> None:
    s = LeaseState(term=3, acting_until=14.0)
    assert after_renewal(s, sent=12.0, got=None, now=12.1, timing=T) == (LeaseState(term=3), Change.LOST)
    assert after_renewal(LeaseState(), sent=12.0, got=None, now=12.1, timing=T)[1] is Change.NONE
    # answered after the deadline it could have set: the old term's acting is not revived
    assert after_renewal(s, sent=9.0, got=3, now=14.2, timing=T) == (LeaseState(term=3), Change.LOST)


def test_a_new_term_while_leading_is_a_fresh_gain() -> None:
    s = LeaseState(term=3, acting_until=14.0)
    new, change = after_renewal(s, sent=12.0, got=5, now=12.1, timing=T)
    assert change is Change.GAINED and new == LeaseState(term=5, acting_until=16.0)


def test_next_wake_is_a_renewal_interval_after_the_send_and_never_past_the_deadline() -> None:
    assert next_wake(LeaseState(), sent=10.0, now=10.2, timing=T) == pytest.approx(0.8)
    assert next_wake(LeaseState(term=1, acting_until=10.5), sent=10.0, now=10.2, timing=T) == pytest.approx(0.3)
    assert next_wake(LeaseState(), sent=10.0, now=12.0, timing=T) == 0.0

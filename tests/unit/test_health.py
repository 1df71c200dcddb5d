"""An add-on's status as a table: the scheduler's record of the primary read against agents' reports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.domain.health import AddonStatus, Observation, assess
from server.domain.models import Addon, Role, ServerRef

P = ServerRef("db-1", 7001, Role.PRIMARY)
S = ServerRef("db-2", 7002, Role.STANDBY)
ADDON = Addon("redis-a", "app", "premium-0", "heroku-redis", "", ("REDIS_URL",), datetime(2026, 1, 1, tzinfo=UTC),
              (P, S), None)
MINI = Addon("redis-m", "app", "mini", "heroku-redis", "", ("REDIS_URL",), datetime(2026, 1, 1, tzinfo=UTC), (P,),
             None)

UP = Observation(True, True, "master")
LINKED = Observation(True, True, "slave", "10.0.0.1", 7001, link_up=True, lag_bytes=0)


def endpoint(server: ServerRef) -> str:
    return f"10.0.0.{server.host[-1]}:{server.port}"


@pytest.mark.parametrize(
    ("primary", "standby", "status", "words"),
    [
        (UP, LINKED, AddonStatus.AVAILABLE, ""),
        (UP, Observation(True, False, error="Connection refused"), AddonStatus.DEGRADED,
         "the standby db-2:7002 is down (Connection refused)"),
        (UP, Observation(False), AddonStatus.DEGRADED, "the agent of host db-2 (standby db-2:7002) is not connected"),
        (UP, Observation(True, True, "master"), AddonStatus.DEGRADED, "db-2:7002 is a master, not from the primary"),
        (UP, Observation(True, True, "slave", "10.0.0.9", 7001, link_up=True), AddonStatus.DEGRADED,
         "replicates from 10.0.0.9:7001"),
        (UP, Observation(True, True, "slave", "10.0.0.1", 7001, link_up=False), AddonStatus.DEGRADED,
         "link to the primary is down"),
        (UP, Observation(True, True, "slave", "10.0.0.1", 7001, link_up=True, lag_bytes=5 << 20), AddonStatus.DEGRADED,
         "5242880 bytes behind"),
        (Observation(True, False, error="Connection refused", supervision="crash_looping",
                     supervision_detail="5 starts in a row"), LINKED, AddonStatus.UNAVAILABLE,
         "the primary db-1:7001 is down (Connection refused); its agent: 5 starts"),
        (Observation(True, True, "slave", "10.0.0.2", 7002, link_up=True), LINKED, AddonStatus.UNAVAILABLE,
         "the primary db-1:7001 is not writable: it replicates from 10.0.0.2:7002"),
        # The primary's agent is gone: the standby vouches, or says the primary is gone too.
        (Observation(False), LINKED, AddonStatus.DEGRADED, "db-2:7002 still replicates from it"),
        (Observation(False), Observation(True, True, "slave", "10.0.0.1", 7001, link_up=False), AddonStatus.UNAVAILABLE,
         "the standby's link to it is down"),
        (Observation(False), Observation(False), AddonStatus.UNKNOWN, "nothing reports on it"),
    ],
)
def test_status_from_the_record_and_the_reports(
    primary: Observation, standby: Observation, status: AddonStatus, words: str
) -> None:
    reports = {P.key: primary, S.key: standby}
    health = assess(ADDON, lambda s: reports[s.key], endpoint)
    assert health.status is status
    assert words in health.reason
    assert (health.reason == "") == (status is AddonStatus.AVAILABLE)


def test_a_mini_has_no_standby_to_miss() -> None:
    assert assess(MINI, lambda s: UP, endpoint).status is AddonStatus.AVAILABLE
    assert assess(MINI, lambda s: Observation(True, False), endpoint).status is AddonStatus.UNAVAILABLE


def test_a_running_maintenance_says_so() -> None:
    assert assess(ADDON, lambda s: Observation(False), endpoint, in_maintenance=True).status is AddonStatus.MAINTENANCE


def test_the_record_decides_which_server_must_be_writable() -> None:
    """Right after a failover the record names the new primary; once the agents' fresh reports agree,
    the add-on is available (the same reports against the old record would read unavailable)."""
    swapped = ADDON.with_servers((ServerRef("db-2", 7002, Role.PRIMARY), ServerRef("db-1", 7001, Role.STANDBY)))
    reports = {"db-2:7002": UP, "db-1:7001": Observation(True, True, "slave", "10.0.0.2", 7002, link_up=True,
                                                         lag_bytes=0)}
    assert assess(swapped, lambda s: reports[s.key], endpoint).status is AddonStatus.AVAILABLE
    assert assess(ADDON, lambda s: reports[s.key], endpoint).status is AddonStatus.UNAVAILABLE

"""An add-on's status from what its agents see, read against the scheduler's record. Pure.

The record says which server is the primary (the repoint step moves it in the same transaction as the
config vars); the agents' last reports say whether each server is up, its role and its replication link.
Both are needed: a heartbeat sent before a failover still shows the new primary as a replica, so the
runner asks the agents for fresh reports before it records a maintenance's end (server/driver/runner.py),
and `run` asks again before it refuses an add-on that looks unavailable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from server.domain.models import Addon, ServerRef

# A standby further behind its primary than this is lagging (the catch-up bound of a maintenance).
MAX_LAG_BYTES = 1 << 20


class AddonStatus(StrEnum):
    AVAILABLE = "available"
    DEGRADED = "degraded"
    UNAVAILABLE = "unavailable"
    # No agent reports on the primary (its host's agent is not connected) and no standby can vouch.
    UNKNOWN = "unknown"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class Observation:
    """One server as its agent last reported it."""

    connected: bool
    reachable: bool = False
    # "master" or "slave", as INFO replication says.
    role: str = ""
    primary_host: str = ""
    primary_port: int = 0
    link_up: bool = False
    # A replica's distance from its primary (-1: unknown).
    lag_bytes: int = -1
    error: str = ""
    # The agent keeper's sentence when it is not simply keeping the server up (crash-looping, ...).
    supervision: str = ""
    supervision_detail: str = ""


@dataclass(frozen=True)
class Health:
    status: AddonStatus
    # Why it is not available; empty when it is.
    reason: str = ""

    @property
    def unavailable(self) -> bool:
        return self.status is AddonStatus.UNAVAILABLE


Observe = Callable[[ServerRef], Observation]
Endpoint = Callable[[ServerRef], str]


def _down(what: str, server: ServerRef, obs: Observation) -> str:
    text = f"the {what} {server.key} is down ({obs.error or 'unreachable'})"
    if obs.supervision and obs.supervision != "kept":
        text += f"; its agent: {obs.supervision_detail}"
    return text


def _follows(obs: Observation, primary: ServerRef, endpoint: Endpoint) -> bool:
    return obs.role == "slave" and f"{obs.primary_host}:{obs.primary_port}" in {
        endpoint(primary),
        primary.key,
    }


def assess(
    addon: Addon,
    observe: Observe,
    endpoint: Endpoint,
    in_maintenance: bool = False,
    max_lag_bytes: int = MAX_LAG_BYTES,
) -> Health:
    if in_maintenance:
        return Health(AddonStatus.MAINTENANCE, "a maintenance is in progress")
    primary = addon.primary
    if primary is None:
        return Health(AddonStatus.UNAVAILABLE, "the record names no primary server")
    p = observe(primary)
    standby = addon.standby
    s = observe(standby) if standby is not None else None
    if not p.connected:
        gone = f"the agent of host {primary.host} (primary {primary.key}) is not connected"
        if (
            standby is not None
            and s is not None
            and s.connected
            and s.reachable
            and _follows(s, primary, endpoint)
        ):
            if s.link_up:
                return Health(
                    AddonStatus.DEGRADED, f"{gone}; the standby {standby.key} still replicates from it"
                )
            return Health(AddonStatus.UNAVAILABLE, f"{gone}, and the standby's link to it is down")
        return Health(AddonStatus.UNKNOWN, f"{gone}: nothing reports on it")
    if not p.reachable:
        return Health(AddonStatus.UNAVAILABLE, _down("primary", primary, p))
    if p.role != "master":
        source = f"it replicates from {p.primary_host}:{p.primary_port}" if p.role == "slave" else "no role"
        return Health(AddonStatus.UNAVAILABLE, f"the primary {primary.key} is not writable: {source}")
    if standby is None or s is None:
        return Health(AddonStatus.AVAILABLE)
    if not s.connected:
        return Health(
            AddonStatus.DEGRADED, f"the agent of host {standby.host} (standby {standby.key}) is not connected"
        )
    if not s.reachable:
        return Health(AddonStatus.DEGRADED, _down("standby", standby, s))
    if not _follows(s, primary, endpoint):
        actual = (
            f"replicates from {s.primary_host}:{s.primary_port}" if s.role == "slave" else f"is a {s.role}"
        )
        return Health(
            AddonStatus.DEGRADED, f"the standby {standby.key} {actual}, not from the primary {primary.key}"
        )
    if not s.link_up:
        return Health(AddonStatus.DEGRADED, f"the standby {standby.key}'s link to the primary is down")
    if s.lag_bytes > max_lag_bytes:
        return Health(
            AddonStatus.DEGRADED,
            f"the standby {standby.key} is {s.lag_bytes} bytes behind (more than {max_lag_bytes})",
        )
    return Health(AddonStatus.AVAILABLE)

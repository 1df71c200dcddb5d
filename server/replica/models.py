"""What the database says about replicas: the lease holder and every replica's heartbeat row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# The one lease the schedulers contend for.
SCHEDULER_LEASE = "scheduler"


@dataclass(frozen=True)
class LeaderInfo:
    """The holder of an unexpired lease. `term` only grows: agents refuse commands of a lower one."""

    holder: str
    term: int
    address: str  # its client API address (HOST:PORT), for forwarding and the CLI
    agent_address: str  # where agents should connect
    expires_at: datetime  # on the database's clock


@dataclass(frozen=True)
class SchedulerInfo:
    """One replica's heartbeat row (`kvmaint schedulers`)."""

    id: str
    address: str
    agent_address: str
    started_at: datetime
    seen_at: datetime
    version: str

"""What the planner does with due maintenances this tick. Pure: a table of inputs gives decisions.

Order: emergencies first, then by deadline. An emergency starts now, whatever the window, freezes or
limits. Anything else waits out a freeze, moves on when its window passed unused, and queues behind the
concurrency limits (fleet-wide and per host) inside its window.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from kvmaint.clock import iso
from server.domain.freezes import Freeze, blocking, next_allowed_start
from server.domain.models import Reason
from server.domain.windows import WINDOW, Window


@dataclass(frozen=True)
class Due:
    id: str
    addon: str
    app: str
    reason: Reason
    required_by: datetime
    scheduled_for: datetime
    window: Window | None
    hosts: tuple[str, ...]
    # Why it was held back at the last tick (`DriverState.queued`), so the same reason is not written again.
    queued: str = ""


@dataclass(frozen=True)
class Limits:
    max_running: int = 10
    max_per_host: int = 2


@dataclass(frozen=True)
class Start:
    id: str
    why: str


@dataclass(frozen=True)
class Move:
    id: str
    to: datetime
    why: str


@dataclass(frozen=True)
class Wait:
    id: str
    why: str


Decision = Start | Move | Wait


def decide(
    now: datetime, due: list[Due], running_hosts: list[tuple[str, ...]], freezes: list[Freeze], limits: Limits
) -> list[Decision]:
    per_host: Counter[str] = Counter(h for hosts in running_hosts for h in hosts)
    total = len(running_hosts)
    out: list[Decision] = []
    ordered = sorted(due, key=lambda d: (d.reason is not Reason.EMERGENCY, d.required_by, d.scheduled_for))
    for d in ordered:
        if d.reason is Reason.EMERGENCY:
            out.append(Start(d.id, "emergency: windows, freezes and limits do not apply"))
            total += 1
            per_host.update(d.hosts)
            continue
        last_chance = now + WINDOW >= d.required_by
        slot_end = d.scheduled_for + WINDOW
        freeze = blocking(freezes, d.app, now, now + WINDOW)
        if freeze is not None and not last_chance:
            to = next_allowed_start(d.window, freeze.ends_at, d.required_by, freezes, d.app)
            if to is not None:
                out.append(Move(d.id, to, f"waits out {freeze.describe()}"))
                continue
        if d.window is not None and now >= slot_end and not last_chance:
            to = next_allowed_start(d.window, now, d.required_by, freezes, d.app)
            if to is not None:
                out.append(Move(d.id, to, f"its window ended at {iso(slot_end)} before it could start"))
                continue
        if total >= limits.max_running:
            out.append(
                Wait(d.id, f"the fleet already runs {total} maintenances (limit {limits.max_running})")
            )
            continue
        busy = [h for h in d.hosts if per_host[h] >= limits.max_per_host]
        if busy:
            out.append(
                Wait(
                    d.id,
                    f"host {busy[0]} already runs {per_host[busy[0]]} maintenance(s) "
                    f"(limit {limits.max_per_host})",
                )
            )
            continue
        why = (
            "its deadline leaves no later slot"
            if last_chance and (freeze or now >= slot_end)
            else "it is due"
        )
        out.append(Start(d.id, why))
        total += 1
        per_host.update(d.hosts)
    return out

"""What the fleet calendar shows: for each add-on and each of the next days, its window, the
maintenance planned in it, deadlines, freezes and its campaign's wave. Pure: data in, a grid out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from server.domain.campaigns import Campaign, Member
from server.domain.freezes import Freeze
from server.domain.models import Addon, Maintenance
from server.domain.windows import WINDOW

DAYS_SHOWN = 14


@dataclass(frozen=True)
class Mark:
    """One thing on one day: kind is window, maintenance, deadline, freeze or campaign."""

    kind: str
    text: str
    title: str = ""


@dataclass(frozen=True)
class Row:
    addon: str
    app: str
    window: str
    cells: tuple[tuple[Mark, ...], ...]


@dataclass(frozen=True)
class Calendar:
    today: date
    days: tuple[date, ...]
    rows: tuple[Row, ...]
    fleet_freezes: tuple[tuple[Mark, ...], ...] = field(default=())


def _day_start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _hm(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%H:%M")


def _freeze_marks(freezes: Iterable[Freeze], day: date) -> list[Mark]:
    start = _day_start(day)
    return [
        Mark("freeze", f"freeze {f.reason}".strip(), f.describe())
        for f in freezes
        if f.overlaps(start, start + timedelta(days=1))
    ]


def build(
    now: datetime,
    addons: Sequence[Addon],
    maintenances: Iterable[Maintenance],
    freezes: Sequence[Freeze],
    days: int = DAYS_SHOWN,
    campaigns: Mapping[str, tuple[Campaign, Member]] | None = None,
) -> Calendar:
    """`maintenances`: the active (pending or in progress) ones; at most one per add-on. `campaigns`:
    the running or halted campaign each add-on belongs to: its wave shows on the day of the window the
    campaign planned for it."""
    waves = campaigns or {}
    today = now.astimezone(UTC).date()
    shown = tuple(today + timedelta(days=i) for i in range(days))
    by_addon = {m.addon: m for m in maintenances}
    rows = []
    for addon in addons:
        m = by_addon.get(addon.name)
        own_freezes = [f for f in freezes if f.app and f.app == addon.app]
        cells = []
        for day in shown:
            marks: list[Mark] = []
            start = _day_start(day)
            if addon.window is not None:
                w_start = addon.window.next_start(start)  # shown on the day it starts
                if w_start < start + timedelta(days=1):
                    marks.append(
                        Mark(
                            "window",
                            f"window {_hm(w_start)} to {_hm(w_start + WINDOW)}",
                            addon.window.describe(),
                        )
                    )
            if m is not None:
                planned = m.started_at if m.status.in_progress else m.scheduled_for
                if planned is not None and planned.astimezone(UTC).date() == day:
                    verb = m.status.value if m.status.in_progress else "maintenance"
                    marks.append(
                        Mark(
                            "maintenance",
                            f"{verb} {_hm(planned)}",
                            f"{m.reason.value} maintenance {m.id}, required by {m.required_by.isoformat()}",
                        )
                    )
                if m.required_by.astimezone(UTC).date() == day:
                    marks.append(
                        Mark("deadline", f"deadline {_hm(m.required_by)}", f"required by for {m.id}")
                    )
            if addon.name in waves:
                c, member = waves[addon.name]
                if member.planned_at.astimezone(UTC).date() == day:
                    halted = f", {c.status.value}" if c.status.value != "running" else ""
                    marks.append(
                        Mark(
                            "campaign",
                            f"{c.wave_label(member.wave)} {_hm(member.planned_at)}{halted}",
                            f"campaign {c.id} to {c.spec.build} {c.target_version}: "
                            f"{c.wave_label(member.wave)} (now at {c.wave_label(c.wave)}{halted})",
                        )
                    )
            marks.extend(_freeze_marks(own_freezes, day))
            cells.append(tuple(marks))
        rows.append(Row(addon.name, addon.app, addon.window.describe() if addon.window else "", tuple(cells)))
    fleet = tuple(tuple(_freeze_marks([f for f in freezes if not f.app], d)) for d in shown)
    return Calendar(today, shown, tuple(rows), fleet)

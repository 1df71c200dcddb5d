"""Campaigns: a build rolled out over a fleet in waves that stop themselves. Pure: add-ons, a spec and a
time in; waves, windows and decisions out.

`plan` answers the dry run and is also what a real campaign stores at creation and follows: wave k+1 is
released only when wave k has ended and soaked, and each add-on is maintained in the window of its own
that is under way or next once its wave may start (`slot`), so a wave that runs on time files exactly
the windows the dry run printed. `decide` is the level-triggered step of a running campaign, from the
counts of its current wave.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from kvmaint.clock import iso
from kvmaint.errors import InvalidArgument
from server.domain.freezes import Freeze
from server.domain.planning import Slot, avoid_freezes, initial_slot
from server.domain.windows import WINDOW, Window

DEFAULT_WAVES = (10, 50, 100)
DEFAULT_SOAK = timedelta(hours=1)
MAX_WAVES = 20


class CampaignStatus(StrEnum):
    RUNNING = "running"
    HALTED = "halted"
    COMPLETED = "completed"
    CANCELED = "canceled"

    @property
    def ended(self) -> bool:
        return self in (CampaignStatus.COMPLETED, CampaignStatus.CANCELED)


@dataclass(frozen=True)
class Spec:
    """What an operator asked for. `waves` are cumulative percentages of the add-ons after the canary."""

    build: str
    reason: str
    required_by: datetime
    canary: int = 1
    waves: tuple[int, ...] = DEFAULT_WAVES
    soak: timedelta = DEFAULT_SOAK
    halt_on_failures: int = 1
    # 0: a write pause never halts.
    halt_on_pause_ms: int = 1000


class Candidate(NamedTuple):
    """One add-on as planning sees it (a tuple: 100,000 of them are built in a blink)."""

    addon: str
    app: str
    window: Window | None


class Planned(NamedTuple):
    addon: str
    app: str
    wave: int
    # When it would be filed for: the start of the window it would be maintained in (a window under way
    # when its wave may start counts), or the time for an add-on without a window.
    at: datetime
    window: Window | None
    meets_deadline: bool

    @property
    def window_end(self) -> datetime:
        return self.at + WINDOW


@dataclass(frozen=True)
class Plan:
    entries: tuple[Planned, ...]
    # Per wave: the earliest time it may start (wave 0: now), as planned.
    wave_starts: tuple[datetime, ...]
    per_day: tuple[tuple[date, int], ...] = field(default=())

    @property
    def waves(self) -> int:
        return len(self.wave_starts)


def parse_waves(text: str) -> tuple[int, ...]:
    """ "10%,50%,100%" -> (10, 50, 100): increasing, each 1 to 100, the last 100."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or len(parts) > MAX_WAVES:
        raise InvalidArgument.field("waves", f"Give 1 to {MAX_WAVES} waves, such as 10%,50%,100%.")
    out: list[int] = []
    for p in parts:
        m = re.fullmatch(r"(\d{1,3})%?", p)
        if not m or not 1 <= int(m.group(1)) <= 100:
            raise InvalidArgument.field("waves", f"{p[:20]!r} is not a percentage from 1% to 100%.")
        out.append(int(m.group(1)))
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise InvalidArgument.field(
            "waves", "Waves are cumulative: each percentage must exceed the one before."
        )
    if out[-1] != 100:
        raise InvalidArgument.field("waves", "The last wave must be 100%, so every add-on is covered.")
    return tuple(out)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """ "30s", "15m", "2h", "1d", "1h30m"."""
    parts = re.findall(r"(\d+)\s*([smhd])", text.strip().lower())
    if not parts or re.sub(r"(\d+)\s*([smhd])", "", text.strip().lower()).strip():
        raise InvalidArgument.field("soak", f"{text[:40]!r} is not a duration such as 30s, 15m, 2h or 1d.")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds > 30 * 86400:
        raise InvalidArgument.field("soak", "A soak is at most 30 days.")
    return timedelta(seconds=seconds)


def check(spec: Spec, now: datetime) -> None:
    if spec.canary < 0:
        raise InvalidArgument.field("canary", "--canary is 0 or more add-ons.")
    if spec.halt_on_failures < 1:
        raise InvalidArgument.field("halt_on_failures", "--halt-on-failures is at least 1.")
    if spec.halt_on_pause_ms < 0:
        raise InvalidArgument.field("halt_on_pause_ms", "--halt-on-pause-ms is 0 (off) or more.")
    if spec.required_by <= now:
        raise InvalidArgument.field(
            "required_by", f"required_by {iso(spec.required_by)} is not in the future (now {iso(now)})."
        )


def slot(
    window: Window | None, not_before: datetime, required_by: datetime, freezes: Sequence[Freeze], app: str
) -> Slot:
    """Where an add-on of a wave that may start at `not_before` is maintained: its window under way at
    that time, else its next one, if that ends by the deadline; else the latest safe time before the
    deadline. A freeze moves it to the first free window, as for any maintenance."""
    if window is None:
        return Slot(not_before, "no window: it runs when its wave starts")
    start, end = window.current_or_next(not_before)
    if end <= required_by:
        found = Slot(start, f"its window {window.describe()} once its wave may start")
    else:
        found = initial_slot(window, not_before, required_by)
    if freezes:
        found = avoid_freezes(found, window, required_by, list(freezes), app, strict=False)
    return found


def assign_waves(ordered: Sequence[Candidate], canary: int, waves: Sequence[int]) -> list[int]:
    """Wave of each add-on, in order: the first `canary` are wave 0; the rest fill the waves 1..n by
    cumulative percentage (rounded up, so 10% of 5 add-ons is one)."""
    n = len(ordered)
    head = min(canary, n)
    rest = n - head
    out = [0] * head
    taken = 0
    for i, pct in enumerate(waves, start=1):
        upto = min(rest, math.ceil(rest * pct / 100))
        out.extend([i] * (upto - taken))
        taken = upto
    # Waves left empty by rounding (10% of 3 add-ons) are dropped: numbers stay consecutive.
    renumber = {w: k for k, w in enumerate(sorted(set(out)))}
    return [renumber[w] for w in out]


def plan(candidates: Iterable[Candidate], spec: Spec, now: datetime, freezes: Sequence[Freeze] = ()) -> Plan:
    """The whole campaign: waves, each add-on's window, whether it meets the deadline, per-day counts.

    The canary is the add-ons whose own window comes first (then by name), so the campaign learns soon.
    Wave k+1 may start once every add-on of wave k is in its window and the soak has passed:
    `wave_starts[k+1] = max(at of wave k) + soak` (a wave that really ends later moves its successors,
    see `release_at`).

    Add-ons are handled by window: a fleet has a few hundred distinct windows, and an add-on's slot
    depends only on its window and its wave's start unless its app has freezes of its own, so 100,000
    add-ons cost a few hundred `slot()`s."""
    fleet_freezes = [f for f in freezes if not f.app]
    by_app: dict[str, list[Freeze]] = {}
    for f in freezes:
        if f.app:
            by_app.setdefault(f.app, []).append(f)
    groups: dict[Window | None, list[Candidate]] = {}
    for c in candidates:
        groups.setdefault(c.window, []).append(c)
    soonest = {w: slot(w, now, spec.required_by, (), "").at for w in groups}
    runs = sorted(((w, sorted(cs)) for w, cs in groups.items()), key=lambda r: (soonest[r[0]], r[1][0].addon))
    ordered = [c for _, cs in runs for c in cs]
    if not ordered:
        return Plan((), (), ())
    wave_of = assign_waves(ordered, spec.canary, spec.waves)
    # Index ranges of the waves, and of the windows: a (wave, window) piece shares one slot.
    wave_bounds = [k for k in range(1, len(ordered)) if wave_of[k] != wave_of[k - 1]] + [len(ordered)]
    run_bounds: list[tuple[int, Window | None]] = []
    pos = 0
    for w, cs in runs:
        pos += len(cs)
        run_bounds.append((pos, w))

    entries: list[Planned] = []
    starts: list[datetime] = []
    per_day: Counter[date] = Counter()
    start = now
    i = 0
    r = 0
    for wave, wave_end in enumerate(wave_bounds):
        starts.append(start)
        latest = start
        while i < wave_end:
            while run_bounds[r][0] <= i:
                r += 1
            run_end, window = run_bounds[r]
            j = min(run_end, wave_end)
            shared = slot(window, start, spec.required_by, fleet_freezes, "").at
            meets_shared = shared + WINDOW <= spec.required_by
            shared_count = 0
            for c in ordered[i:j]:
                own = by_app.get(c.app) if by_app else None
                if own is None:
                    entries.append(Planned(c.addon, c.app, wave, shared, window, meets_shared))
                    shared_count += 1
                    continue
                at = slot(window, start, spec.required_by, [*fleet_freezes, *own], c.app).at
                entries.append(Planned(c.addon, c.app, wave, at, window, at + WINDOW <= spec.required_by))
                per_day[at.date()] += 1
                latest = max(latest, at)
            if shared_count:
                per_day[shared.date()] += shared_count
                latest = max(latest, shared)
            i = j
        start = latest + spec.soak
    return Plan(tuple(entries), tuple(starts), tuple(sorted(per_day.items())))


def meets(at: datetime, required_by: datetime) -> bool:
    return at + WINDOW <= required_by


def release_at(planned: datetime, window: Window | None, now: datetime) -> bool:
    """Whether a planned time still holds when its wave is released at `now`: its window has not ended
    (an add-on without a window runs at any time)."""
    return window is None or now < planned + WINDOW


# ---- the running campaign -------------------------------------------------------------------------


@dataclass(frozen=True)
class Campaign:
    id: str
    spec: Spec
    # What it covers, as the operator named it: "all", "plan premium-0", "apps a, b".
    target: str
    target_version: str
    allow_downgrade: bool
    status: CampaignStatus
    wave: int
    waves: int
    created_at: datetime
    has_canary: bool = False
    halt_reason: str = ""
    # Failed attempts of the current wave already seen when the campaign last resumed.
    failure_baseline: int = 0
    resumed_at: datetime | None = None
    ended_at: datetime | None = None

    def wave_label(self, wave: int) -> str:
        return "canary" if self.has_canary and wave == 0 else f"wave {wave}"


@dataclass(frozen=True)
class Member:
    """One add-on of a campaign: its planned wave and window, and the maintenance once filed (or why
    it was skipped)."""

    addon: str
    app: str
    wave: int
    planned_at: datetime
    window: Window | None
    meets_deadline: bool
    maintenance_id: str = ""
    note: str = ""


@dataclass(frozen=True)
class MemberState:
    """A member with its maintenance as it stands (status None: not filed)."""

    member: Member
    status: str | None = None
    attempts: int = 0
    write_pause_ms: int = -1
    completed_at: datetime | None = None
    scheduled_for: datetime | None = None


ENDED = ("completed", "failed", "canceled")
IN_PROGRESS = ("preparing", "ready", "running")


def counts(states: Iterable[MemberState], resumed_at: datetime | None) -> WaveCounts:
    """A wave's counts: pending (not started yet, no failed attempt), running, completed, failed (ended
    failed, or pending again after a failed attempt), skipped; whether it is over, and its longest pause
    since `resumed_at`."""
    c: Counter[str] = Counter()
    attempts = 0
    pause, pause_addon = -1, ""
    ended: list[datetime] = []
    filed = True
    size = 0
    for s in states:
        size += 1
        if s.member.note:
            c["skipped"] += 1
            continue
        if s.status is None:
            filed = False
            c["pending"] += 1
            c["open"] += 1
            continue
        attempts += s.attempts
        if s.status == "completed":
            c["completed"] += 1
        elif s.status in ENDED:
            c["failed"] += 1
        elif s.status in IN_PROGRESS:
            c["running"] += 1
        elif s.attempts:
            c["failed"] += 1
        else:
            c["pending"] += 1
        if s.status in ENDED:
            if s.completed_at is not None:
                ended.append(s.completed_at)
        else:
            c["open"] += 1
        # A pause counts as soon as the failover measured it (a running maintenance still has its finish
        # step to go), unless it ended before the last resume.
        recent = resumed_at is None or s.completed_at is None or s.completed_at > resumed_at
        if recent and s.write_pause_ms > pause:
            pause, pause_addon = s.write_pause_ms, s.member.addon
    return WaveCounts(
        pending=c["pending"],
        running=c["running"],
        completed=c["completed"],
        failed=c["failed"],
        skipped=c["skipped"],
        failed_attempts=attempts,
        max_pause_ms=pause,
        max_pause_addon=pause_addon,
        ended_at=max(ended) if ended and not c["open"] else None,
        filed=filed and size > 0,
        size=size,
        open=c["open"],
    )


@dataclass(frozen=True)
class WaveCounts:
    pending: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    skipped: int = 0
    # Members whose maintenance has not ended (a failed attempt pending again is still open).
    open: int = 0
    # Failed attempts so far (each attempt that failed, whether it went back to pending or ended failed).
    failed_attempts: int = 0
    # The longest write pause measured by a maintenance of the wave (one that ended before the campaign
    # last resumed aside), and which one.
    max_pause_ms: int = -1
    max_pause_addon: str = ""
    # When the wave's last maintenance ended (None until all have).
    ended_at: datetime | None = None
    filed: bool = False
    size: int = 0

    @property
    def done(self) -> bool:
        """Every add-on of the wave ended (completed, failed for good, or skipped)."""
        return self.filed and self.open == 0


@dataclass(frozen=True)
class Release:
    wave: int
    why: str


@dataclass(frozen=True)
class Halt:
    reason: str


@dataclass(frozen=True)
class Finish:
    why: str


@dataclass(frozen=True)
class Soak:
    until: datetime


@dataclass(frozen=True)
class Hold:
    why: str


Action = Release | Halt | Finish | Soak | Hold


def decide(
    status: CampaignStatus,
    wave: int,
    waves: int,
    counts: WaveCounts,
    spec: Spec,
    failure_baseline: int,
    now: datetime,
    label: str = "",
) -> Action:
    """What a running campaign does now, from its current wave's counts. Halting is checked first: a
    failure or a long pause in the current wave stops everything not yet started."""
    label = label or f"wave {wave}"
    if status is not CampaignStatus.RUNNING:
        return Hold(f"the campaign is {status.value}")
    if not counts.filed:
        return Release(wave, f"{label} first" if wave == 0 else f"the wave before {label} ended and soaked")
    failures = counts.failed_attempts - failure_baseline
    if failures >= spec.halt_on_failures:
        return Halt(
            f"{failures} maintenance attempt(s) of {label} failed "
            f"(--halt-on-failures {spec.halt_on_failures})"
        )
    if spec.halt_on_pause_ms and counts.max_pause_ms > spec.halt_on_pause_ms:
        return Halt(
            f"{counts.max_pause_addon} paused writes {counts.max_pause_ms} ms in {label} "
            f"(--halt-on-pause-ms {spec.halt_on_pause_ms})"
        )
    if not counts.done:
        return Hold(f"{label}: {counts.running} running, {counts.open - counts.running} to go")
    if counts.ended_at is None:  # every member skipped: nothing to soak
        return Finish("every add-on was skipped") if wave + 1 >= waves else Release(wave + 1, "wave skipped")
    if now < counts.ended_at + spec.soak:
        return Soak(counts.ended_at + spec.soak)
    if wave + 1 >= waves:
        return Finish(f"every wave ended and soaked ({counts.completed} completed in the last)")
    return Release(wave + 1, f"{label} ended and soaked")

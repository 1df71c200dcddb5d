"""One measured run of one contender, the same for all of them: writer, role watcher, trigger, read-back.

A contender only says how to get ready, how to build its client, how to trigger the switchover and how
to tell that it finished; everything measured is measured here, the same way for each.
"""

from __future__ import annotations

import asyncio
import bisect
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.procs import Reaper
from bench.redisops import role
from bench.rolewatch import RoleSummary, RoleWatcher
from bench.writer import SetFn, Writer, missing_writes

# After the switchover finished, keep writing this long, so that a late pause or a late loss shows.
TAIL_SECONDS = 0.5
# ... and at most this long for the first write on the new primary, when it has not come yet.
TAIL_LIMIT_SECONDS = 15.0


@dataclass
class Topology:
    primary: str
    standby: str


@dataclass
class Switchover:
    ok: bool
    new_primary: str = ""
    failure: str = ""
    # Moments (monotonic) the contender knows of, by anchor key; "trigger" is added by the driver.
    moments: dict[str, float] = field(default_factory=dict)
    # Figures the product reports about itself (kvmaint's write_pause_ms).
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Contender(Protocol):
    name: str
    # (anchor key, what it is): metric 3 is measured from each; the first is the headline one.
    anchors: list[tuple[str, str]]
    run_timeout: float

    async def setup(self, reaper: Reaper, workdir: Path) -> None: ...

    async def prepare(self, run: int) -> Topology:
        """Ready for a switchover: replica in sync, data set empty, maintenance required, ..."""
        ...

    async def client(self, topo: Topology) -> tuple[SetFn, Callable[[], Awaitable[None]]]: ...

    async def trigger(self, topo: Topology) -> None: ...

    async def wait_switched(self, topo: Topology) -> Switchover: ...

    async def teardown(self) -> None: ...


@dataclass
class RunResult:
    contender: str
    run: int
    ok: bool
    failure: str = ""
    trigger_after_s: float = 0.0
    writes: int = 0
    write_rate: float = 0.0
    baseline_pause_ms: float | None = None
    longest_pause_ms: float | None = None
    longest_pause_at_ms: float | None = None
    lost: int | None = None
    lost_first_ack_ms: float | None = None
    lost_last_ack_ms: float | None = None
    to_new_primary_ms: dict[str, float | None] = field(default_factory=dict)
    promoted_ms: dict[str, float | None] = field(default_factory=dict)
    max_masters: int = 0
    two_master_span_ms: float | None = None
    watcher_max_gap_ms: float = 0.0
    retries: dict[str, int] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    old_primary: str = ""
    new_primary: str = ""
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


async def current_master(topo: Topology) -> str:
    roles = await asyncio.gather(role(topo.primary), role(topo.standby))
    masters = [s for s, (r, _) in zip((topo.primary, topo.standby), roles, strict=True) if r == "master"]
    return masters[0] if len(masters) == 1 else ""


async def run_once(
    contender: Contender,
    run: int,
    runs: int,
    seconds_before: float,
    workdir: Path,
    reaper: Reaper,
    rng: random.Random,
) -> RunResult:
    """One switchover under the writer; everything it starts it stops, whatever happens."""
    topo = await asyncio.wait_for(contender.prepare(run), 180)
    result = RunResult(contender.name, run, ok=False, old_primary=topo.primary)
    watcher = RoleWatcher(
        [topo.primary, topo.standby], workdir / f"roles-{contender.name}-{run}.json", reaper
    )
    await watcher.start()
    writer: Writer | None = None
    close: Callable[[], Awaitable[None]] | None = None
    roles: RoleSummary | None = None
    switch = Switchover(ok=False)
    try:
        do_set, close = await contender.client(topo)
        writer = Writer(do_set)
        writer.start()
        started = time.monotonic()
        # Spread the trigger over a second across runs (plus jitter): replicas acknowledge their offset
        # once a second, and a trigger at a fixed phase of that would hide the spread.
        await asyncio.sleep(seconds_before + (run + rng.random()) / runs)
        if not writer.running:
            raise RuntimeError(f"the writer stopped before the trigger: {writer.log.failure}")
        triggered = time.monotonic()
        result.trigger_after_s = round(triggered - started, 3)
        try:
            await asyncio.wait_for(contender.trigger(topo), 30)
            switch = await asyncio.wait_for(contender.wait_switched(topo), contender.run_timeout)
        except TimeoutError:
            switch = Switchover(ok=False, failure=f"no switchover within {contender.run_timeout:g} s")
        except Exception as exc:
            switch = Switchover(ok=False, failure=f"{type(exc).__name__}: {exc}")
        switch.moments["trigger"] = triggered
        finished = time.monotonic()
        new_primary = switch.new_primary or await current_master(topo)
        # Keep writing a little, and until a write landed on the new primary (bounded).
        while writer.running:
            now = time.monotonic()
            if now - finished >= TAIL_SECONDS and (
                writer.log.first_on(new_primary, triggered) is not None or now - finished > TAIL_LIMIT_SECONDS
            ):
                break
            await asyncio.sleep(0.05)
        log = await writer.stop()
        writer = None
        roles = await watcher.stop()
    finally:
        if writer is not None:
            await writer.stop()
        if close is not None:
            await close()
        if roles is None:
            roles = await watcher.stop()

    result.ok = switch.ok and not log.failure
    result.failure = "; ".join(f for f in (switch.failure, log.failure) if f)
    result.notes = switch.notes
    result.figures = switch.figures
    result.writes = len(log)
    result.retries = dict(log.retries)
    result.new_primary = new_primary
    if log.times:
        first = log.times[0]
        result.write_rate = round(log.rate(first, triggered), 1)
        result.baseline_pause_ms = _ms(log.longest_gap(first, triggered)[0])
        # The switchover's pause: any gap ending after the trigger (so one straddling it counts too).
        gap, at = log.longest_gap(end=float("inf"), start=_gap_start(log.times, triggered))
        result.longest_pause_ms, result.longest_pause_at_ms = _ms(gap), _ms(at - triggered)
    if new_primary:
        missing = await missing_writes(new_primary, len(log))
        result.lost = len(missing)
        if missing:
            result.lost_first_ack_ms = _ms(log.times[missing[0]] - triggered)
            result.lost_last_ack_ms = _ms(log.times[missing[-1]] - triggered)
        first_new = log.first_on(new_primary, triggered)
        promoted = roles.became_master(new_primary, triggered) if new_primary != topo.primary else None
        for key, _ in contender.anchors:
            anchor = switch.moments.get(key)
            result.to_new_primary_ms[key] = (
                _ms(log.times[first_new] - anchor) if anchor is not None and first_new is not None else None
            )
            result.promoted_ms[key] = _ms(promoted - anchor) if anchor is not None and promoted else None
    result.max_masters = roles.max_masters
    if roles.first_overlap is not None and roles.last_overlap is not None:
        result.two_master_span_ms = _ms(roles.last_overlap - roles.first_overlap)
    result.watcher_max_gap_ms = round(roles.max_read_gap_ms, 1)
    return result


def _gap_start(times: Any, at: float) -> float:
    """The acknowledgement just before `at`, so that the gap straddling the trigger is included."""
    i = bisect.bisect_left(times, at)
    return float(times[i - 1]) if i > 0 else at


@dataclass
class Stat:
    min: float
    median: float
    max: float
    n: int


def stat(values: list[float | None]) -> Stat | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return Stat(min(present), round(statistics.median(present), 1), max(present), len(present))

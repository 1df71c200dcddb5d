"""RequireMaintenance for many add-ons at once, in batches.

Why batches answered with counts (and not a long-running operation): each batch of up to `BATCH` add-ons
is one short transaction, so the API, the planner and the runners get the lock between batches; the
reply carries counts and a page token over what was filed (the `filing` column), so it stays a few KB
whatever the fleet. A retry after a failure part way is the same request again: add-ons filed by the
committed batches now have a pending maintenance and are counted as already pending, so only what is
missing is filed. An operation record would have to be stored, resumed by another replica after a
failover and garbage-collected, for no gain the caller sees: the CLI shows progress by asking the
scheduler how far the filing with its request id has got (`Filings`, the `GetFiling` RPC).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from kvmaint.errors import ErrorReason, InvalidArgument, NotFound, Resource
from server.domain.freezes import Freeze
from server.domain.models import Addon, App, Event, Maintenance
from server.notify.models import Webhook
from server.service import pacing, paging
from server.service.core import Context, Subject, Write

BATCH = 500
# A reply lists the filed maintenances and the already pending names only up to this many each (about
# 0.4 KB a maintenance: at most ~0.5 MB), far below gRPC's 4 MB default.
LISTED = 1000
EXAMPLES = 20
ADDON_DELETED = "addon_deleted"
FILED = "filed"  # the page token kind of a filing's maintenances
KEPT_FILINGS = 100


@dataclass
class Filing:
    """What one request has done so far: its reply once done, its progress while it runs."""

    id: str
    total: int = -1  # add-ons targeted, once known (-1: not counted)
    filed: list[Maintenance] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    filed_count: int = 0
    already_count: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)
    skipped_counts: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    done: bool = False
    error: str = ""
    # The last event sequence committed and not yet published, and when the bus was last told.
    unpublished: int = 0
    published_at: float = float("-inf")

    @property
    def lists_omitted(self) -> bool:
        return self.filed_count > LISTED or self.already_count > LISTED

    @property
    def seen(self) -> int:
        return self.filed_count + self.already_count + sum(self.skipped_counts.values())

    def add_filed(self, m: Maintenance) -> None:
        self.filed_count += 1
        if len(self.filed) <= LISTED:
            self.filed.append(m)

    def add_already(self, name: str) -> None:
        self.already_count += 1
        if len(self.already) <= LISTED:
            self.already.append(name)

    def skip(self, reason: str, name: str) -> None:
        self.skipped_counts[reason] = self.skipped_counts.get(reason, 0) + 1
        examples = self.skipped.setdefault(reason, [])
        if len(examples) < EXAMPLES:
            examples.append(name)

    # Unpacks and indexes as (filed, already pending), the pair the service returned before batching, so
    # in-process callers (`created, _ = await fleet.require_maintenance(...)`) keep working.
    def __iter__(self) -> Iterator[list[Maintenance] | list[str]]:
        return iter((self.filed, self.already))

    def __getitem__(self, i: int) -> list[Maintenance] | list[str]:
        return (self.filed, self.already)[i]

    def page_token(self) -> str:
        return paging.encode(FILED, f"{self.id}|") if self.filed_count else ""


def check_request_id(request_id: str) -> None:
    if len(request_id) > 100 or any(not (c.isascii() and (c.isalnum() or c in "-_.:")) for c in request_id):
        raise InvalidArgument.field(
            "request_id", "request_id must be at most 100 letters, digits or - _ . : characters."
        )


class Filings:
    """This process's latest filings, for progress: bounded and not persisted (what was filed is in the
    database under its `filing` id whatever happens to this process)."""

    def __init__(self) -> None:
        self._by_id: dict[str, Filing] = {}

    def start(self, filing_id: str) -> Filing:
        f = Filing(filing_id)
        self._by_id.pop(filing_id, None)
        self._by_id[filing_id] = f
        while len(self._by_id) > KEPT_FILINGS:
            del self._by_id[next(iter(self._by_id))]
        return f

    def get(self, filing_id: str) -> Filing | None:
        return self._by_id.get(filing_id)


Batch = Callable[[Write], Awaitable[tuple[list[Addon], list[str]]]]
NewMaintenance = Callable[[Addon, list[Freeze]], Maintenance]
# The events of one filed maintenance, told what the batch read already (its add-on, app and webhooks).
Announce = Callable[[Subject], list[tuple[Event, Subject | None]]]  # the events of one filed


async def check_named(ctx: Context, names: list[str]) -> list[Addon]:
    """The add-ons named, read in batches; a name that does not exist refuses the whole request before
    anything is filed (as it always did)."""
    if not names:
        raise InvalidArgument.field("addons", "Name at least one add-on.")
    distinct = list(dict.fromkeys(names))
    out: list[Addon] = []
    for k in range(0, len(distinct), BATCH):
        chunk = distinct[k : k + BATCH]
        async with ctx.store.transaction() as tx:
            found = {a.name: a for a in await tx.addons_named(chunk)}
        for name in chunk:
            if name not in found:
                raise NotFound(
                    f"Couldn't find add-on {name[:80]}.",
                    reason=ErrorReason.ADDON_NOT_FOUND,
                    resource=Resource("Addon", name[:80]),
                )
            out.append(found[name])
    return out


async def pages(ctx: Context, plan: str | None) -> AsyncIterator[list[Addon]]:
    """Every add-on (of a plan), a page per read transaction."""
    after = ""
    while True:
        async with ctx.store.transaction() as tx:
            page = await tx.addons_page(plan, after, BATCH)
        if page:
            yield page
        if len(page) < BATCH:
            return
        after = page[-1].name


def _named(chunk: list[str]) -> Batch:
    """A batch of named add-ons, re-read in the batch's transaction (one deleted meanwhile is skipped)."""

    async def read(w: Write) -> tuple[list[Addon], list[str]]:
        found = {a.name: a for a in await w.tx.addons_named(chunk)}
        return [found[n] for n in chunk if n in found], [n for n in chunk if n not in found]

    return read


def _page_after(plan: str | None, after: str, size: int) -> Batch:
    async def read(w: Write) -> tuple[list[Addon], list[str]]:
        return await w.tx.addons_page(plan, after, size), []

    return read


async def run(
    ctx: Context,
    filing: Filing,
    new: NewMaintenance,
    announce: Announce,
    *,
    names: list[str] | None,
    plan: str | None,
) -> Filing:
    """Files a maintenance for every targeted add-on without an active one, a transaction per batch: at
    most BATCH add-ons, and committed early once it has held the loop 10 ms or the lock 100 ms
    (`pacing.over`; filing one costs its events and their notifications, ~0.5 ms on a busy 2-core
    machine), so a writer queued behind a batch waits about that long at most, and after each batch a
    rest (`pacing`): the API keeps two thirds of the loop however long the filing. What a batch did not
    reach starts the next one."""
    try:
        await _run(ctx, filing, new, announce, names, plan)
    finally:
        publish(ctx, filing)  # what the committed batches wrote, also after a failure
    filing.done = True
    return filing


async def _run(
    ctx: Context,
    filing: Filing,
    new: NewMaintenance,
    announce: Announce,
    names: list[str] | None,
    plan: str | None,
) -> None:
    # Each batch reads about twice what the last one reached in its time (at most BATCH): reading and
    # parsing 500 add-ons for a batch that files 60 of them was a fifth of the filing's time.
    size = BATCH
    if names is not None:
        queue = list(dict.fromkeys(names))
        while queue:
            reached, gone = await _batch(ctx, filing, new, announce, _named(queue[:size]))
            through = {a.name for a in reached} | set(gone)
            queue = [n for n in queue[:size] if n not in through] + queue[size:]
            size = _next_size(len(reached))
        for name, n in Counter(names).items():
            for _ in range(n - 1):
                filing.add_already(name)  # named twice: the second finds the first's maintenance
    else:
        after = ""
        while True:
            reached, _ = await _batch(ctx, filing, new, announce, _page_after(plan, after, size))
            if not reached:
                break
            after = reached[-1].name
            size = _next_size(len(reached))


def _next_size(reached: int) -> int:
    return min(BATCH, max(SUB, 2 * reached))


SUB = 10  # add-ons filed between two looks at the batch's time
PUBLISH_SECONDS = 1.0


def publish(ctx: Context, filing: Filing) -> None:
    if filing.unpublished:
        ctx.bus.publish(filing.unpublished)
        filing.unpublished = 0
        filing.published_at = ctx.clock.monotonic()


async def _batch(
    ctx: Context, filing: Filing, new: NewMaintenance, announce: Announce, read: Batch
) -> tuple[list[Addon], list[str]]:
    """One transaction: the add-ons it went through (all those read, or those it reached in order before
    its time was up), and the names it found gone (skipped)."""
    now = ctx.clock.now()
    step = pacing.begin(ctx.clock)
    # Metered (`pacing.run`): the step's own loop time, not what the API ran while it awaited a round trip.
    done = await pacing.run(ctx.clock, step, _file(ctx, filing, new, announce, read, now, step))
    w, addons, gone, fresh, reached = done.write, done.addons, done.gone, done.fresh, done.reached
    # Told to the bus at most once a PUBLISH_SECONDS (and at the end): each publish wakes every listener
    # (event streams, the notification sender's pass), which a commit every 100 ms would keep busy.
    filing.unpublished = max([filing.unpublished, *w.sequences])
    if filing.unpublished and ctx.clock.monotonic() - filing.published_at >= PUBLISH_SECONDS:
        publish(ctx, filing)
    # Counted once committed: a failed batch leaves the counts of what is in the database.
    filing.batches += 1 if addons or gone else 0  # the last read of a plan may find nothing more
    for name in gone:
        filing.skip(ADDON_DELETED, name)
    by_addon = {m.addon: m for m in fresh}
    for addon in addons[:reached]:
        if addon.name in by_addon:
            filing.add_filed(by_addon[addon.name])
        else:
            filing.add_already(addon.name)
    await pacing.rest(ctx.clock, step)  # the requests queued behind this batch run before the next one
    return addons[:reached], gone


@dataclass(frozen=True)
class _Filed:
    """What one batch's transaction did."""

    write: Write
    addons: list[Addon]  # read
    gone: list[str]  # named but deleted
    fresh: list[Maintenance]  # filed
    reached: int  # how many of `addons` it went through before its time was up


async def _file(
    ctx: Context,
    filing: Filing,
    new: NewMaintenance,
    announce: Announce,
    read: Batch,
    now: datetime,
    step: pacing.Step,
) -> _Filed:
    """The batch's transaction (committed when this returns)."""
    async with ctx.store.transaction() as tx:
        w = Write(tx)
        addons, gone = await read(w)
        active = await w.tx.active_addons([a.name for a in addons]) if addons else set()
        freezes = await w.tx.list_freezes(None, now)
        # What the events' notifications need, read once a batch (an app has ~100 add-ons).
        apps: dict[str, tuple[App | None, list[Webhook]]] = {}
        for name in sorted({a.app for a in addons if a.name not in active}):
            apps[name] = (await w.tx.get_app(name), await w.tx.list_webhooks(name))
        fresh: list[Maintenance] = []
        reached = 0
        while reached < len(addons):
            part = addons[reached : reached + SUB]
            filed = [
                (a, new(a, [f for f in freezes if f.app in ("", a.app)]))
                for a in part
                if a.name not in active
            ]
            ms = [m for _, m in filed]
            await w.tx.insert_maintenances(ms, filing.id)
            events: list[tuple[Event, Subject | None]] = []
            for a, m in filed:
                app, hooks = apps[a.app]
                events += announce(Subject(m, app, a, hooks))
            await w.emit_all(ctx, events)  # in a statement or two, not two per maintenance
            fresh += ms
            reached += len(part)
            if pacing.over(ctx.clock, step):
                break
    return _Filed(w, addons, gone, fresh, reached)

"""The outbox is written with the event that causes it, once per fact, and the 24-hour reminder is given
once per scheduled time. In process, on a fake clock, over a real SQLite file; nothing is sent here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.domain.models import EventType
from server.notify import policy
from server.notify.models import Channel, OutboxItem
from server.notify.outbox import remind
from server.service import pacing
from tests.notify.conftest import OWNER, World, make_world


async def events(w: World, type: EventType) -> list[str]:
    async with w.store.transaction() as tx:
        return [e.maintenance_id for e in await tx.events_after(0, "", "", 10_000) if e.type is type]


async def test_scheduling_enqueues_an_email_and_each_webhook_with_the_event(world: World) -> None:
    addon = await world.addon()
    hook, _ = await world.webhooks.create("example-app", "https://hooks.example.com/k", "")
    [mid] = await world.require(addon)
    rows = await world.outbox()
    assert [(r.kind, r.dedupe_key, r.recipient) for r in rows] == [
        (Channel.EMAIL, f"email:{mid}:maintenance_scheduled", OWNER),
        (Channel.WEBHOOK, f"webhook:{hook.id}:{mid}:maintenance_scheduled", "https://hooks.example.com/k"),
    ]
    assert all(r.next_attempt_at == world.clock.now() and r.sent_at is None for r in rows)
    assert rows[0].subject == f"Maintenance scheduled for {addon} on example-app: Fri 2026-01-09 18:00 UTC"
    assert await events(world, EventType.MAINTENANCE_SCHEDULED) == [mid]


async def test_a_rolled_back_write_leaves_no_notification_and_a_repeated_event_adds_none(
    world: World,
) -> None:
    addon = await world.addon()
    [mid] = await world.require(addon)
    before = await world.outbox()
    with pytest.raises(RuntimeError):
        async with world.ctx.write() as w:
            await w.emit(EventType.MAINTENANCE_STARTED, world.ctx, "example-app", addon, mid, "Started")
            raise RuntimeError("the step failed after emitting")
    assert await world.outbox() == before
    assert await events(world, EventType.MAINTENANCE_STARTED) == []

    for _ in range(2):  # the same fact emitted twice (a retried step) is one email
        async with world.ctx.write() as w:
            await w.emit(EventType.MAINTENANCE_STARTED, world.ctx, "example-app", addon, mid, "Started")
    started = [r for r in await world.outbox() if r.dedupe_key.endswith(":maintenance_started")]
    assert len(started) == 1 and len(await events(world, EventType.MAINTENANCE_STARTED)) == 2


async def test_without_smtp_only_webhooks_are_queued_and_without_owner_email_none(tmp_path: Path) -> None:
    w = make_world(tmp_path / "state.db", email=False)
    await w.store.open()
    try:
        addon = await w.addon()
        await w.webhooks.create("example-app", "http://127.0.0.1:9/k", "")
        await w.require(addon)
        assert [r.kind for r in await w.outbox()] == [Channel.WEBHOOK]
    finally:
        await w.store.close()


async def test_no_owner_email_no_email(world: World) -> None:
    await world.fleet.create_app("quiet-app", "")
    addon = await world.addon(app="quiet-app")
    await world.require(addon)
    assert await world.outbox() == []


async def test_reminder_once_per_scheduled_time(world: World) -> None:
    addon = await world.addon()  # Fridays 18:00; now is Monday noon
    [mid] = await world.require(addon, days=30)
    assert await remind(world.ctx) == []  # 102 hours ahead: too early

    world.clock.set(datetime(2026, 1, 8, 19, 0, tzinfo=UTC))  # Thursday 19:00, 23 hours before
    assert await remind(world.ctx) == [mid]
    assert await remind(world.ctx) == []  # once
    reminders = [r for r in await world.outbox() if ":maintenance_reminder:" in r.dedupe_key]
    assert [r.subject for r in reminders] == [
        f"Reminder: maintenance of {addon} on example-app starts in about 23 hours (Fri 2026-01-09 18:00 UTC)"
    ]
    assert "kvmaint data:maintenances:schedule" in reminders[0].body

    await world.maint.schedule("example-app", addon, 1, None)  # a week later: a new time, a new reminder
    assert await remind(world.ctx) == []
    world.clock.set(datetime(2026, 1, 15, 19, 0, tzinfo=UTC))
    assert await remind(world.ctx) == [mid]
    assert await events(world, EventType.MAINTENANCE_REMINDER) == [mid, mid]
    keys = [r.dedupe_key for r in await world.outbox()]
    assert [k.split(":", 2)[2] for k in keys] == [
        "maintenance_scheduled",
        "maintenance_reminder:2026-01-09T18:00:00.000+00:00",
        keys[2].split(":", 2)[2],
        "maintenance_reminder:2026-01-16T18:00:00.000+00:00",
    ]
    assert keys[2].split(":")[2] == "maintenance_rescheduled"


async def test_a_maintenance_scheduled_within_a_day_gets_no_separate_reminder(world: World) -> None:
    world.clock.set(datetime(2026, 1, 9, 10, 0, tzinfo=UTC))  # Friday 10:00; the window opens at 18:00
    addon = await world.addon()
    [mid] = await world.require(addon)
    assert await remind(world.ctx) == []
    rows = await world.outbox()
    assert [r.dedupe_key for r in rows] == [f"email:{mid}:maintenance_scheduled"]
    world.clock.set(world.clock.now() + timedelta(hours=7))
    assert await remind(world.ctx) == []


async def test_the_event_stream_says_what_the_emails_say(world: World) -> None:
    addon = await world.addon()
    [mid] = await world.require(addon)
    await world.maint.schedule("example-app", addon, 1, None)
    world.clock.set(datetime(2026, 1, 15, 19, 0, tzinfo=UTC))
    await remind(world.ctx)
    async with world.store.transaction() as tx:
        stream = {e.type: e for e in await tx.events_after(0, "example-app", addon, 1000)}
    rows = {r.dedupe_key.split(":")[2]: r.body for r in await world.outbox()}
    for type in (
        EventType.MAINTENANCE_SCHEDULED,
        EventType.MAINTENANCE_RESCHEDULED,
        EventType.MAINTENANCE_REMINDER,
    ):
        attrs = stream[type].attributes
        assert stream[type].maintenance_id == mid
        for key in ("scheduled_for", "required_by", "window"):
            assert f"{key}:" in rows[type.value] and attrs[key] in rows[type.value], (type, key)


async def test_a_reminder_burst_notifies_as_each_event_alone_would(world: World) -> None:
    """The reminder pass reads a chunk's add-ons, apps and webhooks once (`Subject`); what it enqueues is
    what the hook, reading everything itself, makes of each reminder event."""
    hooked, plain = await world.addon(), await world.addon(app="other-app")
    hook, _ = await world.webhooks.create("example-app", "https://hooks.example.com/k", "")
    await world.fleet.create_app("quiet-app", "")  # no owner email: webhooks only, and it has none
    quiet = await world.addon(app="quiet-app")
    mids = await world.require(hooked, plain, quiet, days=30)
    world.clock.set(datetime(2026, 1, 8, 19, 0, tzinfo=UTC))  # 23 hours before Friday 18:00
    assert sorted(await remind(world.ctx)) == sorted(mids)

    got = [r for r in await world.outbox() if ":maintenance_reminder:" in r.dedupe_key]
    expected = await each_alone(world, {EventType.MAINTENANCE_REMINDER})
    shape = [(r.kind, r.dedupe_key, r.recipient, r.subject, r.body) for r in got]
    assert shape == [(r.kind, r.dedupe_key, r.recipient, r.subject, r.body) for r in expected]
    # The hooked app: its owner's email and its webhook; the other: the email; the quiet app: nothing.
    assert sorted(r.kind for r in got) == [Channel.EMAIL, Channel.EMAIL, Channel.WEBHOOK]
    assert {r.recipient for r in got if r.kind is Channel.WEBHOOK} == {hook.url}
    assert len({m for m in mids for r in got if m in r.dedupe_key}) == 2


async def each_alone(world: World, types: set[EventType]) -> list[OutboxItem]:
    """What the hook, reading the app, add-on, maintenance and webhooks itself, makes of each event of
    `types` in the log, in order."""
    out: list[OutboxItem] = []
    async with world.store.read() as tx:
        for e in await tx.events_after(0, "", "", 10_000):
            if e.type not in types:
                continue
            app, addon = await tx.get_app(e.app), await tx.get_addon(e.addon)
            notice = policy.notice(e, app, addon, await tx.get_maintenance(e.maintenance_id))
            if notice is not None:
                out += policy.deliveries(notice, app, await tx.list_webhooks(e.app), True, e.time)
    return out


async def test_a_filing_notifies_as_each_event_alone_would(world: World) -> None:
    """A filing's batch reads its apps and webhooks once and hands them, with each add-on, to the hook
    (`Subject`); what it enqueues is what the hook makes of each event reading everything itself."""
    hooked, plain = await world.addon(), await world.addon(app="other-app")
    await world.webhooks.create("example-app", "https://hooks.example.com/k", "")
    await world.fleet.create_app("quiet-app", "")
    quiet = await world.addon(app="quiet-app")
    soon = await world.addon(app="third-app")
    mids = await world.require(hooked, plain, quiet, days=30)
    world.clock.set(datetime(2026, 1, 8, 19, 0, tzinfo=UTC))  # a day before the window: covers the reminder
    mids += await world.require(soon, days=3)

    filed = {EventType.MAINTENANCE_REQUIRED, EventType.MAINTENANCE_SCHEDULED}
    got = [r for r in await world.outbox() if any(f":{t.value}" in r.dedupe_key for t in filed)]
    expected = await each_alone(world, filed)
    shape = [(r.kind, r.dedupe_key, r.recipient, r.subject, r.body) for r in got]
    assert shape == [(r.kind, r.dedupe_key, r.recipient, r.subject, r.body) for r in expected]
    assert {r.kind for r in got} == {Channel.EMAIL, Channel.WEBHOOK} and len(mids) == 4


async def test_a_reminder_burst_commits_in_steps_and_rests_between(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each transaction of the pass holds the loop about a step; between two, a rest as long."""
    from server.notify import outbox

    addons = [await world.addon(app=f"app-{i}") for i in range(4)]
    mids = await world.require(*addons, days=30)
    world.clock.set(datetime(2026, 1, 8, 19, 0, tzinfo=UTC))  # 23 hours before Friday 18:00
    looks = [0.0]
    rests: list[float] = []

    def monotonic() -> float:
        looks[0] += 0.03  # each look 30 ms on: a step's time is up after one reminder
        return looks[0]

    async def rest(clock: object, began: pacing.Step) -> None:  # the step's length; pacing's tests do the rest
        rests.append(monotonic() - began.wall)

    monkeypatch.setattr(outbox, "REMIND_CHUNK", 1)
    monkeypatch.setattr(world.clock, "monotonic", monotonic)
    monkeypatch.setattr(outbox.pacing, "rest", rest)
    published: list[int] = []
    monkeypatch.setattr(world.ctx.bus, "publish", published.append)
    assert sorted(await remind(world.ctx)) == sorted(mids)
    assert len(published) == 4  # a commit per reminder
    assert len(rests) == 3 and min(rests) >= 0.03  # none after the last

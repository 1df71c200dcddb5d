"""The sender against real receivers: an aiosmtpd SMTP server that goes down and comes back, and an HTTP
server that checks webhook signatures. In process, on a fake clock (backoff is stepped through, not
waited for)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from kvmaint import webhook
from kvmaint.clock import iso
from kvmaint.redact import redact_url
from server.notify.models import Channel
from tests.notify.conftest import OWNER, World, make_world
from tests.notify.servers import HookSink, SmtpSink


async def test_scheduled_email_arrives_with_its_facts_and_commands(world: World, smtp: SmtpSink) -> None:
    smtp.start()
    addon = await world.addon()
    [mid] = await world.require(addon)
    done = await world.sender.send_due()
    [row] = await world.outbox()
    assert done.sent == [row.id] and row.sent_at == world.clock.now() and row.attempts == 1
    [got] = smtp.messages()
    assert got.rcpt_tos == (OWNER,) and got.mail_from == "kvmaint@ops.example"
    assert got.subject == f"Maintenance scheduled for {addon} on example-app: Fri 2026-01-09 18:00 UTC"
    assert got.message_id.startswith(f"<kvmaint.{row.id}.") and got.message_id.endswith("@ops.example>")
    text = got.text
    for needed in (
        f"Redis add-on {addon} (REDIS_URL) of app example-app",
        "window:         Fridays 18:00 to 22:00 UTC",
        "scheduled_for:  2026-01-09T18:00:00.000+00:00",
        f"required_by:    {iso(world.clock.now() + timedelta(days=14))}",
        f"maintenance_id: {mid}",
        f"kvmaint data:maintenances:schedule {addon} -a example-app --weeks 1",
        f"kvmaint data:maintenances:run {addon} -a example-app --confirm example-app",
        f"kvmaint data:maintenances:window:update {addon} DAY TIME -a example-app",
    ):
        assert needed in text, needed
    assert (await world.sender.send_due()).sent == []  # nothing twice


async def test_smtp_down_then_up_delivers_every_email_once_in_order(world: World, smtp: SmtpSink) -> None:
    addons = [await world.addon(app=f"app-{n}") for n in "abc"]
    for addon in addons:
        await world.require(addon)
    failed = await world.sender.send_due()  # the SMTP server is down
    rows = await world.outbox()
    assert failed.retried == [r.id for r in rows] and failed.sent == []
    assert all(r.attempts == 1 and r.sent_at is None and "cannot reach SMTP server" in r.last_error for r in rows)
    # The first failure puts off the rest to the same time, so they are retried together, in order.
    assert len({r.next_attempt_at for r in rows}) == 1 and rows[0].next_attempt_at > world.clock.now()
    assert (await world.sender.send_due()).retried == []  # not due yet

    await world.clock.advance(timedelta(seconds=1))
    assert (await world.sender.send_due()).retried == [r.id for r in rows]  # still down: backs off again
    assert {r.attempts for r in await world.outbox()} == {2}

    smtp.start()
    await world.clock.advance(timedelta(seconds=2))
    done = await world.sender.send_due()
    assert done.sent == [r.id for r in rows]
    got = smtp.messages()
    assert [m.subject.split(" on ")[0].rsplit(" ", 1)[1] for m in got] == addons
    assert len({m.message_id for m in got}) == 3
    assert all(r.sent_at is not None and r.last_error == "" for r in await world.outbox())
    await world.clock.advance(timedelta(minutes=10))
    assert (await world.sender.send_due()).sent == [] and len(smtp.messages()) == 3


async def test_one_recipient_gets_its_emails_in_order_even_when_one_fails(world: World, smtp: SmtpSink) -> None:
    smtp.start()
    addon = await world.addon()
    await world.require(addon)
    await world.maint.schedule("example-app", addon, 1, None)
    other = await world.addon(app="other-app")  # the same owner, so the same recipient
    await world.require(other)
    smtp.data_answers.append("451 4.3.0 Try again later")  # the first message is deferred once
    first = await world.sender.send_due()
    rows = await world.outbox()
    assert first.retried == [r.id for r in rows] and smtp.messages() == []  # the rest waited behind it
    assert rows[0].last_error == "SMTP 451: 4.3.0 Try again later"
    assert len({r.next_attempt_at for r in rows}) == 1

    # An earlier row not due yet holds back later rows to its recipient, even those that are due.
    async with world.store.transaction() as tx:
        await tx.mark_retry(rows[0].id, rows[0].last_error, world.clock.now() + timedelta(hours=1))
    await world.clock.advance(timedelta(seconds=2))
    assert (await world.sender.send_due()).sent == []
    await world.clock.advance(timedelta(hours=1))
    assert (await world.sender.send_due()).sent == [r.id for r in rows]
    assert [m.subject.split(" ", 2)[:2] for m in smtp.messages()] == [
        ["Maintenance", "scheduled"], ["Maintenance", "rescheduled"], ["Maintenance", "scheduled"],
    ]


async def test_a_resend_after_a_lost_sent_mark_keeps_its_message_id(world: World, smtp: SmtpSink) -> None:
    """The one duplicate an outbox cannot prevent (accepted by SMTP, scheduler dead before marking it):
    the copy has the same Message-ID, so the receiver can drop it."""
    smtp.start()
    addon = await world.addon()
    await world.require(addon)
    await world.sender.send_due()
    async with world.store.transaction() as tx:  # as if the "sent" commit never happened
        await tx._db.execute("UPDATE outbox SET sent_at = NULL")  # type: ignore[attr-defined]
    await world.sender.send_due()
    first, second = smtp.messages()
    assert first.message_id == second.message_id and first.text == second.text


async def test_a_refused_recipient_is_dropped_not_retried_forever(world: World, smtp: SmtpSink) -> None:
    smtp.refuse.add(OWNER)
    smtp.start()
    await world.require(await world.addon())
    done = await world.sender.send_due()
    [row] = await world.outbox()
    assert done.dropped == [row.id] and row.dropped_at is not None and "550" in row.last_error
    assert smtp.messages() == []


async def test_gives_up_after_three_days(world: World) -> None:
    await world.require(await world.addon())
    await world.sender.send_due()
    world.clock.set(world.clock.now() + timedelta(days=3))
    done = await world.sender.send_due()
    [row] = await world.outbox()
    assert done.dropped == [row.id] and row.last_error.startswith("gave up after 2 attempts: cannot reach")


async def test_webhooks_are_signed_retried_in_order_and_delivered_once(tmp_path: Path, hooks: HookSink) -> None:
    world = make_world(tmp_path / "state.db", email=False)  # emails are not under test here
    await world.store.open()
    try:
        await _webhooks(world, hooks)
    finally:
        await world.store.close()


async def _webhooks(world: World, hooks: HookSink) -> None:
    addon = await world.addon()
    hook, secret = await world.webhooks.create("example-app", hooks.url, "")
    [mid] = await world.require(addon)
    await world.maint.schedule("example-app", addon, 1, None)
    hooks.answers.extend([503])  # the endpoint fails once

    first = await world.sender.send_due()
    rows = [r for r in await world.outbox() if r.kind is Channel.WEBHOOK]
    assert first.retried == [r.id for r in rows]  # the second waited behind the first
    assert len(hooks.received()) == 1 and rows[0].last_error == "HTTP 503: try again later"
    await world.clock.advance(timedelta(seconds=2))
    second = await world.sender.send_due()
    assert second.sent == [r.id for r in rows]

    posts = hooks.received()
    assert len(posts) == 3 and posts[0].body == posts[1].body  # the retry is the same delivery
    delivered = posts[1:]
    assert [p.headers[webhook.ID_HEADER] for p in delivered] == [str(r.id) for r in rows]
    assert [p.headers[webhook.EVENT_HEADER] for p in delivered] == ["maintenance_scheduled", "maintenance_rescheduled"]
    now = world.clock.now().timestamp()
    for post in posts:
        assert post.path == "/hooks/kvmaint" and post.headers["Content-Type"] == "application/json"
        assert secret.startswith("whsec_") and webhook.verify(secret, post.body, post.headers, now)
        assert not webhook.verify(webhook.new_secret(), post.body, post.headers, now)
    scheduled, rescheduled = (json.loads(p.body) for p in delivered)
    assert scheduled["maintenance"]["id"] == mid and scheduled["addon"] == addon
    assert scheduled["maintenance"]["scheduled_for"] == "2026-01-09T18:00:00.000+00:00"
    assert scheduled["maintenance"]["window"] == "Fridays 18:00 to 22:00 UTC"
    assert scheduled["commands"]["run"] == f"kvmaint data:maintenances:run {addon} -a example-app --confirm example-app"
    assert rescheduled["maintenance"]["previously_scheduled_for"] == "2026-01-09T18:00:00.000+00:00"
    assert rescheduled["maintenance"]["scheduled_for"] == "2026-01-16T18:00:00.000+00:00"

    await world.maint.schedule("example-app", addon, -1, None)  # queued, then the endpoint is removed
    await world.webhooks.delete("example-app", hook.id)
    last = await world.sender.send_due()
    assert last.sent == [] and len(last.dropped) == 1 and len(hooks.received()) == 3


async def test_private_webhook_targets_are_refused_unless_allowed(tmp_path: Path, hooks: HookSink) -> None:
    """By default the scheduler posts only to public addresses: an app owner cannot aim it inside."""
    world = make_world(tmp_path / "state.db", email=False)
    world.sender.config.allow_private_webhooks = False
    await world.store.open()
    try:
        addon = await world.addon()
        await world.webhooks.create("example-app", hooks.url, "")  # http://127.0.0.1:PORT/...
        await world.webhooks.create("example-app", hooks.url.replace("127.0.0.1", "localhost"), "")
        await world.require(addon)
        done = await world.sender.send_due()
        rows = [r for r in await world.outbox() if r.kind is Channel.WEBHOOK]
        assert done.sent == [] and len(rows) == 2
        assert all("not a public address" in r.last_error or "non-public" in r.last_error for r in rows)
        assert hooks.received() == []
        world.sender.config.allow_private_webhooks = True  # the operator allows it
        await world.clock.advance(timedelta(minutes=10))
        assert len((await world.sender.send_due()).sent) == 2
        assert len(hooks.received()) == 2
    finally:
        await world.store.close()


async def test_a_config_var_change_is_a_signed_webhook_post_and_no_email(tmp_path: Path, hooks: HookSink) -> None:
    world = make_world(tmp_path / "state.db")  # email on: the change still mails nobody
    await world.store.open()
    try:
        await world.fleet.create_app("example-app", OWNER)
        _, secret = await world.webhooks.create("example-app", hooks.url, "")
        addon = await world.addon()  # sets REDIS_URL: a config_var_changed event
        done = await world.sender.send_due()
        rows = await world.outbox()
        assert [r.kind for r in rows] == [Channel.WEBHOOK] and done.sent == [rows[0].id]
        [post] = hooks.received()
        assert post.headers[webhook.EVENT_HEADER] == "config_var_changed"
        assert webhook.verify(secret, post.body, post.headers, world.clock.now().timestamp())
        body = json.loads(post.body)
        config = await world.fleet.config_vars("example-app")
        # The value as events carry it: a password shown as *** (it never changes; kvmaint config shows it).
        assert body["config_var"] == {"name": "REDIS_URL", "value": redact_url(config["REDIS_URL"])}
        assert body["addon"] == addon and body["maintenance"] is None and body["app"] == "example-app"
    finally:
        await world.store.close()

"""Notifications through the real scheduler process: emails reach a real SMTP server, webhooks a real HTTP
server, and emails queued while the SMTP server is down survive a SIGKILL of the scheduler, each then
delivered exactly once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from kvmaint import webhook
from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb
from tests.notify.servers import HookSink, SmtpSink
from tests.support.rpc import api, registered_addon
from tests.support.stores import db_rows, on_both_stores

APP = "example-app"


def until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout:.0f}s (last value {value!r})")
        time.sleep(0.05)


def outbox(db: Path | str, kind: str = "email") -> list[dict[str, Any]]:
    return db_rows(db, "SELECT * FROM outbox WHERE kind = ? ORDER BY id", kind)


@on_both_stores
def test_emails_and_webhooks_survive_an_smtp_outage_and_a_sigkill(
    scheduler_factory, tmp_path: Path, state_db: Path | str
) -> None:
    smtp = SmtpSink().start()
    hooks = HookSink().start()
    try:
        _scenario(scheduler_factory, tmp_path, state_db, smtp, hooks)
    finally:
        smtp.stop()
        hooks.stop()


def _scenario(scheduler_factory, tmp_path: Path, db: Path | str, smtp: SmtpSink, hooks: HookSink) -> None:
    args = [
        "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp.port), "--smtp-from", "kvmaint@ops.example",
        "--notify-interval", "0.2", "--notify-retry-max", "0.5", "--webhook-allow-private",
        # No agent serves db-1/db-2: a started maintenance fails at once, which is what ends it here.
        "--catch-up-timeout", "0.5", "--command-timeout", "0.5",
    ]  # fmt: skip
    s = scheduler_factory(extra_args=args)
    with api(s.address) as a:
        addon = registered_addon(a).name  # the app's owner_email is owner@example.com
        created = a.CreateWebhook(fpb.CreateWebhookRequest(app=APP, url=hooks.url))
        assert len(created.secret) >= 32 and created.webhook.url == hooks.url
        required_by = Timestamp()
        required_by.FromDatetime(datetime.now(UTC) + timedelta(days=30))
        a.RequireMaintenance(
            fpb.RequireMaintenanceRequest(
                addons=fpb.AddonNames(names=[addon]), reason=rpb.MAINTENANCE_REASON_SECURITY_PATCH,
                required_by=required_by,
            )
        )
        [scheduled] = until(smtp.messages, what="the scheduled email")
        info = a.GetMaintenanceInfo(mpb.GetMaintenanceInfoRequest(app=APP, addon=addon)).info
        assert scheduled.rcpt_tos == ("owner@example.com",)
        assert scheduled.subject.startswith(f"Maintenance scheduled for {addon} on {APP}: ")
        for needed in (
            f"window:         {info.window}",
            f"scheduled_for:  {info.scheduled_for.ToDatetime(tzinfo=UTC).isoformat(timespec='milliseconds')}",
            f"required_by:    {info.required_by.ToDatetime(tzinfo=UTC).isoformat(timespec='milliseconds')}",
            f"kvmaint data:maintenances:schedule {addon} -a {APP} --weeks 1",
            f"kvmaint data:maintenances:run {addon} -a {APP} --confirm {APP}",
            f"kvmaint data:maintenances:window:update {addon} DAY TIME -a {APP}",
        ):
            assert needed in scheduled.text, needed
        (tmp_path / "scheduled-email.txt").write_text(f"Subject: {scheduled.subject}\n\n{scheduled.text}")
        [post] = until(hooks.received, what="the scheduled webhook")
        # The standardwebhooks package, not our verifier, accepts the delivery as the secret shown once.
        assert Webhook(created.secret).verify(post.body, post.headers) == json.loads(post.body)
        with pytest.raises(WebhookVerificationError):
            Webhook(created.secret).verify(post.body + b" ", post.headers)

        smtp.stop()  # the SMTP server goes down; the maintenance starts and fails meanwhile
        a.RunMaintenance(mpb.RunMaintenanceRequest(app=APP, addon=addon, confirm=APP))
        until(lambda: [r["attempts"] for r in outbox(db)][1:] and all(r["attempts"] >= 2 for r in outbox(db)[1:])
              and len(outbox(db)) == 3, what="started and failed emails queued and retried")
    assert [r["sent_at"] is None for r in outbox(db)] == [False, True, True]

    s.kill()  # SIGKILL with two emails queued
    s.start()
    smtp.start()  # back, on the same port
    got = until(lambda: len(smtp.messages()) == 3 and smtp.messages(), what="the queued emails")
    assert [m.subject for m in got[1:]] == [
        f"Maintenance of {addon} on {APP} started",
        f"Maintenance of {addon} on {APP} failed (attempt 1); it is pending again for "
        + got[2].subject.rsplit(" for ", 1)[-1],
    ]
    assert "attempts:" in got[2].text and "last_failure_reason:" in got[2].text
    assert "not connected" in got[2].text and f"kvmaint data:maintenances:info {addon} -a {APP}" in got[2].text
    rows = until(lambda: all(r["sent_at"] for r in outbox(db)) and outbox(db), what="all marked sent")
    assert [m.message_id.split(".")[1] for m in got] == [str(r["id"]) for r in rows]
    assert len({m.message_id for m in got}) == 3  # each once: every row is marked sent, none is due again

    received = until(lambda: len(hooks.received()) >= 3 and hooks.received(), what="the webhooks")
    # Webhooks are delivered at least once: a POST whose answer was lost (a client timeout on a loaded
    # machine, a SIGKILL before it was marked sent) is sent again with the same webhook-id and body, which
    # is how a Standard Webhooks receiver tells a repeat from a new delivery.
    posts: dict[str, bytes] = {}
    for p in received:
        posts.setdefault(p.headers[webhook.ID_HEADER], p.body)
        assert posts[p.headers[webhook.ID_HEADER]] == p.body, "a repeat must carry the same body"
        assert p.headers[webhook.EVENT_HEADER] == json.loads(p.body)["type"]
    events = [json.loads(body)["type"] for body in posts.values()]
    assert events == ["maintenance_scheduled", "maintenance_started", "maintenance_failed"], received
    assert sorted(posts) == sorted(str(r["id"]) for r in outbox(db, "webhook"))

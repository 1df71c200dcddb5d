"""The notification policy, signatures, backoff and URL rules: pure functions, tables of cases."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from kvmaint import webhook
from kvmaint.clock import iso
from kvmaint.errors import InvalidArgument
from server.domain.models import (
    Addon,
    App,
    Event,
    EventType,
    Maintenance,
    Method,
    Reason,
    Role,
    ServerRef,
    Status,
)
from server.domain.windows import Window
from server.notify import policy
from server.notify.models import Channel, OutboxItem, Webhook
from server.notify.sender import build_email, message_id, retry_delay
from server.service.webhooks import check_url

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday
FRIDAY_18 = Window(4, 18 * 60)
SLOT = datetime(2026, 1, 9, 18, 0, tzinfo=UTC)
APP = App("example-app", "owner@example.com", False, NOW)
ADDON = Addon(
    "redis-lively-12345",
    "example-app",
    "premium-0",
    "heroku-redis",
    "premium HA",
    ("REDIS_URL",),
    NOW,
    (ServerRef("db-1", 7001, Role.PRIMARY), ServerRef("db-2", 7002, Role.STANDBY)),
    FRIDAY_18,
)
PENDING = Maintenance(
    "m-1",
    ADDON.name,
    APP.name,
    Reason.SECURITY_PATCH,
    Method.FAILOVER,
    Status.PENDING,
    required_by=NOW + timedelta(days=14),
    created_at=NOW,
    scheduled_for=SLOT,
    window=FRIDAY_18,
)
STARTED = replace(PENDING, status=Status.PREPARING, started_at=SLOT + timedelta(minutes=1))
COMPLETED = replace(STARTED, status=Status.COMPLETED, completed_at=SLOT + timedelta(minutes=4))
FAILED = replace(
    STARTED, status=Status.FAILED, completed_at=SLOT + timedelta(minutes=2), failure_reason="catch_up: lag"
)
RESCHEDULED = replace(PENDING, previously_scheduled_for=SLOT, scheduled_for=SLOT + timedelta(weeks=1))
COMMANDS = (
    "kvmaint data:maintenances:schedule redis-lively-12345 -a example-app --weeks 1",
    "kvmaint data:maintenances:run redis-lively-12345 -a example-app --confirm example-app",
    "kvmaint data:maintenances:window:update redis-lively-12345 DAY TIME -a example-app",
)


def facts(text: str) -> dict[str, str]:
    """The aligned `  key: value` lines of a notice."""
    pairs = (line.strip().split(": ", 1) for line in text.splitlines() if line.startswith("  ") and ": " in line)
    return {k.rstrip(":"): v.strip() for k, v in pairs}


def ev(type: EventType, seq: int = 7, time: datetime = NOW, message: str = "") -> Event:
    return Event(seq, type, time, APP.name, ADDON.name, "m-1", message)


@pytest.mark.parametrize(
    ("type", "m", "subject", "fact", "commands"),
    [
        (
            EventType.MAINTENANCE_SCHEDULED,
            PENDING,
            "Maintenance scheduled for redis-lively-12345 on example-app: Fri 2026-01-09 18:00 UTC",
            "m-1:maintenance_scheduled",
            True,
        ),
        (
            EventType.MAINTENANCE_RESCHEDULED,
            RESCHEDULED,
            "Maintenance rescheduled for redis-lively-12345 on example-app: Fri 2026-01-16 18:00 UTC",
            "m-1:maintenance_rescheduled:7",
            True,
        ),
        (
            EventType.MAINTENANCE_REMINDER,
            PENDING,
            "Reminder: maintenance of redis-lively-12345 on example-app starts in about 102 hours "
            "(Fri 2026-01-09 18:00 UTC)",
            "m-1:maintenance_reminder:2026-01-09T18:00:00.000+00:00",
            True,
        ),
        (
            EventType.MAINTENANCE_STARTED,
            STARTED,
            "Maintenance of redis-lively-12345 on example-app started",
            "m-1:maintenance_started",
            False,
        ),
        (
            EventType.MAINTENANCE_COMPLETED,
            COMPLETED,
            "Maintenance of redis-lively-12345 on example-app completed",
            "m-1:maintenance_completed",
            False,
        ),
        (
            EventType.MAINTENANCE_FAILED,
            FAILED,
            "Maintenance of redis-lively-12345 on example-app failed",
            "m-1:maintenance_failed",
            False,
        ),
    ],
)
def test_each_lifecycle_event_has_its_notice(
    type: EventType, m: Maintenance, subject: str, fact: str, commands: bool
) -> None:
    n = policy.notice(ev(type), APP, ADDON, m)
    assert n is not None
    assert (n.subject, n.fact) == (subject, fact)
    assert "redis-lively-12345 (REDIS_URL)" in n.text
    shown = facts(n.text)
    assert shown["add-on"] == "redis-lively-12345 (premium-0)" and shown["app"] == "example-app"
    assert shown["window"] == "Fridays 18:00 to 22:00 UTC"
    assert shown["scheduled_for"] == iso(m.scheduled_for)
    assert shown["required_by"] == "2026-01-19T12:00:00.000+00:00"
    assert shown["status"] == m.status.value and shown["maintenance_id"] == "m-1"
    assert all((c in n.text) is commands for c in COMMANDS)
    assert bool(n.payload["commands"]) is commands
    assert n.payload["type"] == type.value and n.payload["maintenance"]["id"] == "m-1"
    assert n.payload["maintenance"]["window"] == "Fridays 18:00 to 22:00 UTC"
    assert n.payload["maintenance"]["required_by"] == "2026-01-19T12:00:00.000+00:00"


def test_failure_and_rescheduling_say_why_and_from_when() -> None:
    failed = policy.notice(ev(EventType.MAINTENANCE_FAILED, message="Failed at step catch_up: lag"), APP, ADDON, FAILED)
    assert failed is not None and "failure_reason:" in failed.text and "catch_up: lag" in failed.text
    assert "kvmaint data:maintenances:info redis-lively-12345 -a example-app" in failed.text
    moved = policy.notice(ev(EventType.MAINTENANCE_RESCHEDULED), APP, ADDON, RESCHEDULED)
    assert moved is not None
    assert "moved from 2026-01-09T18:00:00.000+00:00 (Friday 09 January 2026, 18:00 UTC) to 2026-01-16" in moved.text
    assert "previously_scheduled_for:" in moved.text


@pytest.mark.parametrize(
    "type",
    [t for t in EventType if t not in policy.NOTIFYING],
)
def test_other_events_notify_nobody(type: EventType) -> None:
    assert policy.notice(ev(type), APP, ADDON, PENDING) is None


def test_mini_plans_get_no_commands_they_cannot_run() -> None:
    mini = replace(ADDON, plan="mini", window=None)
    n = policy.notice(ev(EventType.MAINTENANCE_SCHEDULED), APP, mini, replace(PENDING, window=None))
    assert n is not None and not n.payload["commands"]
    assert "Mini plans have no maintenance window" in n.text and "--weeks" not in n.text


HOOK = Webhook("w-1", APP.name, "https://hooks.example.com/k", "s" * 20, NOW)


@pytest.mark.parametrize(
    ("app", "hooks", "email", "expected"),
    [
        (APP, [], True, [(Channel.EMAIL, "email:m-1:maintenance_scheduled", "owner@example.com")]),
        (APP, [], False, []),
        (replace(APP, owner_email=""), [], True, []),
        (None, [HOOK], True, [(Channel.WEBHOOK, "webhook:w-1:m-1:maintenance_scheduled", HOOK.url)]),
        (
            APP,
            [HOOK, replace(HOOK, id="w-2", url="http://b.example/x")],
            True,
            [
                (Channel.EMAIL, "email:m-1:maintenance_scheduled", "owner@example.com"),
                (Channel.WEBHOOK, "webhook:w-1:m-1:maintenance_scheduled", HOOK.url),
                (Channel.WEBHOOK, "webhook:w-2:m-1:maintenance_scheduled", "http://b.example/x"),
            ],
        ),
    ],
)
def test_deliveries_one_per_destination(
    app: App | None, hooks: list[Webhook], email: bool, expected: list[tuple[Channel, str, str]]
) -> None:
    n = policy.notice(ev(EventType.MAINTENANCE_SCHEDULED), app, ADDON, PENDING)
    assert n is not None
    items = policy.deliveries(n, app, hooks, email, NOW)
    assert [(i.kind, i.dedupe_key, i.recipient) for i in items] == expected
    for item in items:
        assert item.next_attempt_at == NOW and item.app == APP.name
        if item.kind is Channel.WEBHOOK:
            assert json.loads(item.body) == n.payload and item.webhook_id in ("w-1", "w-2")
        else:
            assert item.body == n.text


@pytest.mark.parametrize(
    ("until_start", "status", "due"),
    [
        (timedelta(hours=25), Status.PENDING, False),
        (timedelta(hours=24), Status.PENDING, True),
        (timedelta(hours=1), Status.PENDING, True),
        (timedelta(0), Status.PENDING, False),  # starting now: the planner's business, no reminder
        (timedelta(hours=-1), Status.PENDING, False),
        (timedelta(hours=3), Status.PREPARING, False),
        (timedelta(hours=3), Status.CANCELED, False),
    ],
)
def test_reminder_due(until_start: timedelta, status: Status, due: bool) -> None:
    m = replace(PENDING, status=status, scheduled_for=NOW + until_start)
    assert policy.reminder_due(m, NOW) is due


@pytest.mark.parametrize(
    ("type", "until_start", "covers"),
    [
        (EventType.MAINTENANCE_SCHEDULED, timedelta(hours=3), True),
        (EventType.MAINTENANCE_RESCHEDULED, timedelta(hours=24), True),
        (EventType.MAINTENANCE_SCHEDULED, timedelta(hours=30), False),
        (EventType.MAINTENANCE_STARTED, timedelta(hours=3), False),
    ],
)
def test_a_late_schedule_notice_is_the_reminder(type: EventType, until_start: timedelta, covers: bool) -> None:
    assert policy.covers_reminder(ev(type), replace(PENDING, scheduled_for=NOW + until_start)) is covers


@pytest.mark.parametrize(
    ("attempts", "rand", "seconds"),
    [(1, 0.0, 0.5), (1, 1.0, 1.0), (2, 0.0, 1.0), (5, 1.0, 16.0), (9, 0.0, 128.0), (10, 1.0, 300.0),
     (50, 0.5, 225.0), (10_000, 0.0, 150.0)],
)
def test_retry_delay_doubles_with_jitter_up_to_the_cap(attempts: int, rand: float, seconds: float) -> None:
    assert retry_delay(attempts, 1.0, 300.0, rand) == seconds


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks spec's example secret


def test_webhook_signature_matches_the_standard_webhooks_example() -> None:
    """The spec's own test vector: msg_p5jXN8AQM9LWM0D4loKWxJek, 1614265330, {"test": 2432232314}."""
    body = b'{"test": 2432232314}'
    sig = webhook.sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_webhook_signature_binds_id_body_and_timestamp() -> None:
    body = b'{"type":"maintenance_scheduled"}'
    signed = webhook.headers(SECRET, "42", 1_767_614_400, body)
    now = 1_767_614_400 + 10
    assert webhook.verify(SECRET, body, signed, now)
    for secret, b, changes, at in [
        (webhook.new_secret(), body, {}, now),  # wrong secret
        (SECRET, body + b" ", {}, now),  # body changed
        (SECRET, body, {"webhook-timestamp": "1767614401"}, now),  # timestamp changed
        (SECRET, body, {"webhook-id": "43"}, now),  # id changed
        (SECRET, body, {}, now + 3600),  # too old: a replay
        (SECRET, body, {"webhook-timestamp": "soon"}, now),
    ]:
        assert not webhook.verify(secret, b, {**signed, **changes}, at)


def test_email_headers_are_stable_for_a_row() -> None:
    item = OutboxItem(Channel.EMAIL, "email:m-1:maintenance_scheduled", "example-app", "owner@example.com",
                      "Subject", "Body\n", NOW, NOW, id=42)
    msg = build_email(item, "kvmaint@ops.example")
    assert msg["Message-ID"] == message_id(item, "kvmaint@ops.example") == build_email(item, "kvmaint@ops.example")["Message-ID"]
    assert msg["Message-ID"].startswith("<kvmaint.42.") and msg["Message-ID"].endswith("@ops.example>")
    assert message_id(replace(item, dedupe_key="email:m-2:maintenance_scheduled"), "x@y") != message_id(item, "x@y")
    assert (msg["To"], msg["From"], msg["Auto-Submitted"]) == ("owner@example.com", "kvmaint@ops.example", "auto-generated")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hooks.example.com/kvmaint", True),
        ("http://127.0.0.1:8080/x?y=1", True),
        ("", False),
        ("ftp://example.com/", False),
        ("https://", False),
        ("https://user:pw@example.com/", False),
        ("https://example.com/a b", False),
        ("https://example.com:99999/", False),
        ("https://example.com/" + "x" * 2000, False),
        ("javascript:alert(1)", False),
    ],
)
def test_webhook_urls(url: str, ok: bool) -> None:
    if ok:
        assert check_url(url) == url
    else:
        with pytest.raises(InvalidArgument) as err:
            check_url(url)
        assert [v.field for v in err.value.violations] == ["url"]


@pytest.mark.parametrize(
    ("secret", "ok"),
    [
        (SECRET, True),
        ("whsec_" + base64.b64encode(b"k" * 64).decode(), True),
        ("whsec_" + base64.b64encode(b"k" * 23).decode(), False),  # under 24 bytes
        ("whsec_" + base64.b64encode(b"k" * 65).decode(), False),
        ("whsec_not base64!!", False),
        ("x" * 32, False),  # no whsec_ prefix
    ],
)
def test_webhook_secrets(secret: str, ok: bool) -> None:
    if ok:
        assert webhook.check_secret(secret) == secret
    else:
        with pytest.raises(InvalidArgument):
            webhook.check_secret(secret)


def config_ev(seq: int, maintenance_id: str = "m-1") -> Event:
    return Event(seq, EventType.CONFIG_VAR_CHANGED, NOW, APP.name, ADDON.name, maintenance_id,
                 "REDIS_URL now points at the new primary db-2:7002: restart or reconnect",
                 {"key": "REDIS_URL", "value": "redis://10.0.0.2:7002"})


def test_a_config_var_change_goes_to_webhooks_only_once_per_change() -> None:
    n = policy.notice(config_ev(41), APP, ADDON, STARTED)
    assert n is not None and not n.email
    assert n.fact == "example-app:config_var_changed:41"
    assert n.subject == "Config var REDIS_URL of example-app changed"
    assert n.payload["type"] == "config_var_changed" and n.payload["sequence"] == 41
    assert n.payload["config_var"] == {"name": "REDIS_URL", "value": "redis://10.0.0.2:7002"}
    assert n.payload["maintenance"]["id"] == "m-1" and n.payload["maintenance"]["status"] == "preparing"
    assert n.payload["addon"] == ADDON.name and n.payload["commands"] == {}
    items = policy.deliveries(n, APP, [HOOK], True, NOW)
    assert [(i.kind, i.dedupe_key) for i in items] == [(Channel.WEBHOOK, "webhook:w-1:example-app:config_var_changed:41")]
    assert json.loads(items[0].body) == n.payload
    again = policy.notice(config_ev(42), APP, ADDON, STARTED)
    assert again is not None and again.fact != n.fact  # each change is its own fact

    created = policy.notice(config_ev(3, maintenance_id=""), APP, ADDON, None)  # an add-on was created
    assert created is not None and created.payload["maintenance"] is None

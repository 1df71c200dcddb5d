"""Registering webhooks over gRPC and with `kvmaint webhooks*`: validation, tokens, the secret shown once."""

from __future__ import annotations

import base64

import grpc

from kvmaint.v1 import fleet_pb2 as fpb
from tests.cli.conftest import Cli
from tests.conftest import APP_TOKENS, OPERATOR_TOKEN
from tests.support.rpc import api, error_of, field_violations

APP = "example-app"


def test_rpc_rules_and_app_token_scope(scheduler_factory) -> None:
    s = scheduler_factory(tokens=True)
    with api(s.address, OPERATOR_TOKEN) as op:
        for app in (APP, "other-app"):
            op.CreateApp(fpb.CreateAppRequest(name=app, owner_email=f"ops@{app}.example"))
        mine = op.with_token(APP_TOKENS[APP])
        theirs = op.with_token(APP_TOKENS["other-app"])

        made = mine.CreateWebhook(fpb.CreateWebhookRequest(url="https://hooks.example.com/a"))  # own app
        assert made.webhook.app == APP and len(made.secret) >= 32
        given = mine.CreateWebhook(
            fpb.CreateWebhookRequest(app=APP, url="http://127.0.0.1:9/b", secret="whsec_" + base64.b64encode(b"s3cret-" * 4).decode())
        )
        assert given.secret == ""  # a given secret is not echoed
        listed = mine.ListWebhooks(fpb.ListWebhooksRequest()).webhooks
        assert [h.url for h in listed] == ["https://hooks.example.com/a", "http://127.0.0.1:9/b"]
        assert op.ListWebhooks(fpb.ListWebhooksRequest(app=APP)).webhooks == listed
        assert "s3cret" not in str(listed)

        for call, code, field in [
            (lambda: mine.CreateWebhook(fpb.CreateWebhookRequest(url="ftp://x.example/")), "INVALID_ARGUMENT", "url"),
            (lambda: mine.CreateWebhook(fpb.CreateWebhookRequest(url="https://x.example/", secret="short")),
             "INVALID_ARGUMENT", "secret"),
            (lambda: mine.CreateWebhook(fpb.CreateWebhookRequest(url="https://hooks.example.com/a")),
             "ALREADY_EXISTS", None),
            (lambda: op.CreateWebhook(fpb.CreateWebhookRequest(url="https://x.example/")), "INVALID_ARGUMENT", "app"),
            (lambda: op.CreateWebhook(fpb.CreateWebhookRequest(app="nope", url="https://x.example/")),
             "NOT_FOUND", None),
            (lambda: theirs.ListWebhooks(fpb.ListWebhooksRequest(app=APP)), "PERMISSION_DENIED", None),
            (lambda: theirs.DeleteWebhook(fpb.DeleteWebhookRequest(app=APP, id=made.webhook.id)),
             "PERMISSION_DENIED", None),
            (lambda: theirs.DeleteWebhook(fpb.DeleteWebhookRequest(id=made.webhook.id)), "NOT_FOUND", None),
            (lambda: mine.DeleteWebhook(fpb.DeleteWebhookRequest()), "INVALID_ARGUMENT", "id"),
        ]:
            err = error_of(call)
            assert err.code() == getattr(grpc.StatusCode, code), (code, err.details())
            if field:
                assert field_violations(err) == [field]
        mine.DeleteWebhook(fpb.DeleteWebhookRequest(id=made.webhook.id))
        assert [h.id for h in mine.ListWebhooks(fpb.ListWebhooksRequest()).webhooks] == [given.webhook.id]


def test_cli_add_list_remove(scheduler) -> None:
    cli = Cli(scheduler.address)
    cli.ok("apps:create", APP, "--owner-email", "ops@example.com")
    added = cli.ok("webhooks:add", "https://hooks.example.com/k", "-a", APP, "--json").json()
    assert set(added) == {"id", "app", "url", "created_at", "secret"} and len(added["secret"]) >= 32
    human = cli.ok("webhooks:add", "https://hooks.example.com/other", "-a", APP)
    assert "Adding webhook https://hooks.example.com/other to ⬢ example-app... done" in human.err
    assert "secret: " in human.out and "shown only now" in human.out
    quiet = cli.ok("webhooks:add", "https://hooks.example.com/given", "-a", APP, "--secret", "whsec_" + base64.b64encode(b"x" * 24).decode(), "--json")
    assert "secret" not in quiet.json()

    listed = cli.ok("webhooks", "-a", APP, "--json").json()
    assert [h["url"] for h in listed] == [
        "https://hooks.example.com/k", "https://hooks.example.com/other", "https://hooks.example.com/given",
    ]
    assert all("secret" not in h for h in listed)
    table = cli.ok("webhooks", "-a", APP).out.splitlines()
    assert table[0].split() == ["ID", "URL", "CREATED"] and added["id"] in table[1]

    cli.ok("webhooks:remove", added["id"], "-a", APP)
    assert len(cli.ok("webhooks", "-a", APP, "--json").json()) == 2
    bad = cli("webhooks:add", "not a url", "-a", APP)
    assert bad.code != 0 and "webhook URL" in bad.err
    gone = cli("webhooks:remove", added["id"], "-a", APP)
    assert gone.code != 0 and "Couldn't find webhook" in gone.err

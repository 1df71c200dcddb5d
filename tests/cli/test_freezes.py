"""data:maintenances:freezes* against the real scheduler process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.cli.conftest import Cli, create_premium
from tests.conftest import APP_TOKENS


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_freeze_add_list_remove_and_deadline(cli: Cli) -> None:
    create_premium(cli)
    now = datetime.now(UTC)
    cli.ok(
        "maintenances:require",
        "--reason",
        "security_patch",
        "--all",
        "--required-by",
        iso(now + timedelta(days=10)),
    )

    refused = cli(
        "data:maintenances:freezes:add",
        "-a",
        "example-app",
        "--from",
        iso(now),
        "--to",
        iso(now + timedelta(days=11)),
        "--reason",
        "year end",
    )
    assert refused.code == 1
    assert "past its deadline" in refused.err and "required by" in refused.err
    assert cli.ok("data:maintenances:freezes", "-a", "example-app", "--json").json() == []

    added = cli.ok(
        "data:maintenances:freezes:add",
        "-a",
        "example-app",
        "--from",
        iso(now),
        "--to",
        iso(now + timedelta(days=2)),
        "--reason",
        "launch week",
        "--json",
    ).json()
    assert added["app"] == "example-app" and added["reason"] == "launch week"
    table = cli.ok("data:maintenances:freezes", "-a", "example-app").out
    assert added["id"] in table and "launch week" in table
    # The pending maintenance was moved past the freeze, and the history says why.
    info = cli.ok("data:maintenances:info", "REDIS_URL", "-a", "example-app", "--json").json()
    assert datetime.fromisoformat(info["scheduled_for"]) >= now + timedelta(days=2) - timedelta(seconds=5)

    cli.ok("data:maintenances:freezes:remove", added["id"], "-a", "example-app")
    assert cli.ok("data:maintenances:freezes", "-a", "example-app", "--json").json() == []
    gone = cli("data:maintenances:freezes:remove", added["id"], "-a", "example-app")
    assert gone.code == 1 and "Couldn't find freeze" in gone.err


def test_bad_freeze_input(cli: Cli) -> None:
    create_premium(cli)
    now = datetime.now(UTC)
    backwards = cli(
        "data:maintenances:freezes:add",
        "-a",
        "example-app",
        "--from",
        iso(now + timedelta(days=2)),
        "--to",
        iso(now),
    )
    assert backwards.code == 1 and "end after it starts" in backwards.err
    garbage = cli("data:maintenances:freezes:add", "-a", "example-app", "--from", "tomorrow", "--to", "later")
    assert garbage.code != 0 and "--from" in garbage.err
    neither = cli("data:maintenances:freezes:add", "--from", iso(now), "--to", iso(now + timedelta(days=1)))
    assert neither.code != 0 and "--fleet" in neither.err


def test_fleet_freeze_is_for_operators(scheduler_factory, make_cli) -> None:
    s = scheduler_factory(tokens=True)
    from tests.conftest import OPERATOR_TOKEN

    op = make_cli(s, OPERATOR_TOKEN)
    create_premium(op)
    owner = make_cli(s, APP_TOKENS["example-app"])
    now = datetime.now(UTC)
    window = ["--from", iso(now), "--to", iso(now + timedelta(days=1))]
    denied = owner("data:maintenances:freezes:add", "--fleet", *window)
    assert denied.code == 1 and "operator" in denied.err
    own = owner.ok("data:maintenances:freezes:add", "-a", "example-app", *window, "--json").json()
    fleet = op.ok("data:maintenances:freezes:add", "--fleet", *window, "--json").json()
    assert fleet["app"] == "(fleet)"
    # The owner sees its own freeze and the fleet's.
    seen = {f["id"] for f in owner.ok("data:maintenances:freezes", "-a", "example-app", "--json").json()}
    assert seen == {own["id"], fleet["id"]}

"""The seed's flows, end to end: `kvmaint` against the real scheduler process.

Add-ons are registered on fake host ids (db-1:7001), which the scheduler records without contacting Redis.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from kvmaint.cli.format import INFO_KEYS
from kvmaint.cli.heroku import INFO_EXTRA_KEYS, MAINTENANCE_KEYS
from tests.cli.conftest import Cli, create_premium

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")
NOT_IN_MAINTENANCE_MODE = ("Application is not in maintenance mode. To proceed, put the application into "
                           "maintenance mode or re-run the command with --confirm example-app")


def block(text: str) -> dict[str, str]:
    """An aligned `key: value` block back into a dict."""
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("==="))
    return {k.strip(): v.strip() for k, v in pairs}


def value_columns(lines: list[str]) -> set[int]:
    """Where the values of an aligned block start (non-empty values only): one column when aligned."""
    starts = set()
    for line in lines:
        key, value = line.split(":", 1)
        if value.strip():
            starts.add(len(key) + 1 + len(value) - len(value.lstrip()))
    return starts


def days_ahead(days: int) -> str:
    """A date the scheduler accepts as a deadline (in the future, within 5 years), as YYYY-MM-DD."""
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def require(cli: Cli, *target: str, required_by: str | None = None) -> None:
    required_by = required_by or days_ahead(365)
    cli.ok("maintenances:require", "--reason", "routine_maintenance", "--required-by", required_by, *target)


def test_apps_and_addons(cli: Cli) -> None:
    created = cli.ok("apps:create", "example-app", "--owner-email", "ops@example.com")
    assert created.err == "Creating ⬢ example-app... done\n"
    assert created.out == ""
    apps = cli.ok("apps")
    assert apps.lines[0].split() == ["NAME", "OWNER", "MAINTENANCE", "MODE", "CREATED"]
    assert apps.lines[1].split()[:3] == ["example-app", "ops@example.com", "off"]

    made = cli.ok("addons:create", "premium-0", "-a", "example-app", "--primary", "db-1:7001",
                  "--standby", "db-2:7002")
    assert made.err == "Creating premium-0 on ⬢ example-app... done\n"
    match = re.fullmatch(r"Created (redis-[a-z]+-\d+) as REDIS_URL\n", made.out)
    assert match, made.out
    name = match.group(1)

    table = cli.ok("addons", "-a", "example-app").lines
    assert table[0].split() == ["NAME", "APP", "PLAN", "ATTACHMENTS", "WINDOW", "PRIMARY", "STANDBY"]
    row = table[1]
    assert row.startswith(f"{name}  ") and "premium-0" in row and row.endswith("db-1:7001  db-2:7002")
    # columns line up: every header starts where its values start
    assert table[0].index("PRIMARY") == row.index("db-1:7001")
    assert cli.ok("addons").lines == table  # without -a: every app

    config = cli.ok("config", "-a", "example-app")
    assert config.lines[0] == "=== example-app Config Vars"
    assert block(config.out)["REDIS_URL"].startswith("redis://db-1:7001")


def test_redis_info_shows_when_maintenance_is_required(cli: Cli) -> None:
    name = create_premium(cli)
    info = cli.ok("redis:info", "REDIS_URL", "-a", "example-app")
    assert info.lines[0] == f"=== {name} (REDIS_URL)"
    fields = block(info.out)
    assert fields["Plan"] == "Premium 0"
    # No agent runs in this test: nothing vouches for db-1:7001 (status comes from what agents see).
    assert fields["Status"].startswith("unknown: the agent of host db-1 (primary db-1:7001) is not connected")
    assert fields["Maintenance"] == "not required"
    assert re.fullmatch(r"\w+days \d\d:\d\d to \d\d:\d\d UTC", fields["Maintenance window"])
    assert (fields["Primary"], fields["Standby"]) == ("db-1:7001", "db-2:7002")
    labels = [line.split(":")[0] for line in info.lines[1:]]
    assert labels == ["Plan", "Status", "Created", "Maintenance", "Maintenance window", "Primary", "Standby"]
    assert len(value_columns(info.lines[1:])) == 1

    deadline = days_ahead(40)
    require(cli, "--addon", name, required_by=deadline)
    assert block(cli.ok("redis:info", name, "-a", "example-app").out)["Maintenance"] == \
        f"required by {deadline} 00:00:00 +0000"


def test_redis_info_without_addon_shows_every_addon_of_the_app(cli: Cli) -> None:
    first = create_premium(cli)
    second = create_premium(cli, "example-app", "db-3:7003", "db-4:7004", "--as", "CACHE_URL")
    create_premium(cli, "other-app", "db-5:7005", "db-6:7006")
    out = cli.ok("redis:info", "-a", "example-app").out
    headings = [line for line in out.splitlines() if line.startswith("===")]
    assert sorted(headings) == sorted([f"=== {first} (REDIS_URL)", f"=== {second} (CACHE_URL)"])
    views = cli.ok("redis:info", "-a", "example-app", "--json").json()
    assert {v["name"] for v in views} == {first, second}
    assert all(v["maintenance"] == "not required" and v["maintenance_required_by"] is None for v in views)


def test_maintenance_info_has_the_seeds_keys_in_order(cli: Cli) -> None:
    name = create_premium(cli)
    deadline = days_ahead(40)
    require(cli, "--all", required_by=f"{deadline}T08:54:02.518")
    info = cli.ok("data:maintenances:info", "REDIS_URL", "-a", "example-app")
    assert info.err == "Fetching maintenance... done\n"
    assert [line.split(":", 1)[0] for line in info.lines] == list(INFO_KEYS)
    fields = block(info.out)
    assert fields["addon_attachments"] == "REDIS_URL"
    assert fields["addon_name"] == name
    assert fields["addon_plan"] == "premium-0"
    assert fields["app_name"] == "example-app"
    assert fields["method"] == "failover"
    assert fields["reason"] == "routine_maintenance"
    assert fields["status"] == "pending"
    assert fields["required_by"] == f"{deadline}T08:54:02.518+00:00"
    assert ISO.match(fields["scheduled_for"]) and ISO.match(fields["server_created_at"])
    assert fields["completed_at"] == fields["started_at"] == fields["duration_seconds"] == ""
    assert fields["window"] == fields["addon_window"]
    assert len(value_columns(info.lines)) == 1
    # --json is Heroku's API object: nested addon and app, then its fields, then kvmaint's extra keys.
    as_json = cli.ok("data:maintenances:info", name, "--json").json()
    assert list(as_json) == ["addon", "app", *MAINTENANCE_KEYS, *INFO_EXTRA_KEYS]
    assert as_json["addon"] == {"attachments": ["REDIS_URL"], "kind": fields["addon_kind"], "name": name,
                                "plan": "premium-0", "window": fields["window"],
                                "description": fields["addon_description"]}
    assert as_json["app"] == {"name": "example-app"}
    assert as_json["completed_at"] is None and as_json["required_by"] == fields["required_by"]


def test_window_update_then_window(cli: Cli) -> None:
    create_premium(cli)
    require(cli, "--all")
    updated = cli.ok("data:maintenances:window:update", "REDIS_URL", "Sunday", "14:30", "-a", "example-app")
    assert updated.err == "Setting maintenance window for REDIS_URL to Sundays 14:30 to 18:30 UTC... done\n"
    shown = block(cli.ok("data:maintenances:window", "REDIS_URL", "-a", "example-app").out)
    assert shown["window"] == "Sundays 14:30 to 18:30 UTC"
    assert shown["previous_window"] != ""
    scheduled = datetime.fromisoformat(shown["scheduled_for"])
    assert (scheduled.strftime("%A"), f"{scheduled:%H:%M}") == ("Sunday", "14:30")
    assert block(cli.ok("redis:info", "REDIS_URL", "-a", "example-app").out)["Maintenance window"] == \
        "Sundays 14:30 to 18:30 UTC"


def test_bad_day_names_the_bad_part(cli: Cli) -> None:
    create_premium(cli)
    bad = cli("data:maintenances:window:update", "REDIS_URL", "Funday", "14:30", "-a", "example-app")
    assert bad.code == 1
    assert bad.out == ""
    assert bad.err.count("\n") == 1 and "'Funday'" in bad.err
    assert "14:30" not in bad.err  # the time was fine: only the day is named


def test_schedule_by_weeks_and_into_a_week(cli: Cli) -> None:
    create_premium(cli)
    require(cli, "--all")
    before = block(cli.ok("data:maintenances:info", "REDIS_URL", "-a", "example-app").out)["scheduled_for"]
    moved = cli.ok("data:maintenances:schedule", "REDIS_URL", "-a", "example-app", "--weeks", "1")
    assert re.fullmatch(r"Scheduling maintenance for redis-[a-z]+-\d+\.\.\. done\n", moved.err)
    fields = block(moved.out)
    assert [line.split(":", 1)[0] for line in moved.lines] == ["scheduled_for", "previously_scheduled_for",
                                                                "explanation"]
    assert fields["previously_scheduled_for"] == before
    assert datetime.fromisoformat(fields["scheduled_for"]) - datetime.fromisoformat(before) == timedelta(weeks=1)
    assert fields["explanation"]

    target = datetime.fromisoformat(fields["scheduled_for"]).date() + timedelta(weeks=3)
    into = cli.ok("data:maintenances:schedule", "REDIS_URL", "-a", "example-app", "--week", target.isoformat(),
                  "--json").json()
    assert into["previously_scheduled_for"] == fields["scheduled_for"]
    when = datetime.fromisoformat(into["scheduled_for"]).date()
    assert when.isocalendar()[:2] == target.isocalendar()[:2]
    assert into["explanation"]


def test_run_needs_maintenance_mode_or_confirm(cli: Cli) -> None:
    name = create_premium(cli)
    require(cli, "--all")
    refused = cli("data:maintenances:run", "REDIS_URL", "-a", "example-app")
    assert (refused.code, refused.out, refused.err) == (1, "", NOT_IN_MAINTENANCE_MODE + "\n")

    started = cli.ok("data:maintenances:run", "REDIS_URL", "-a", "example-app", "--confirm", "example-app")
    assert started.err == f"Starting maintenance for {name}... done\n"
    assert block(cli.ok("data:maintenances:info", name).out)["status"] in ("preparing", "running")


def test_run_in_maintenance_mode(cli: Cli) -> None:
    name = create_premium(cli)
    require(cli, "--all")
    assert cli.ok("maintenance:on", "-a", "example-app").err == "Enabling maintenance mode for ⬢ example-app... done\n"
    started = cli.ok("data:maintenances:run", "REDIS_URL", "-a", "example-app", "--json")
    assert started.err == f"Starting maintenance for {name}... done\n"
    assert started.json()["status"] in ("preparing", "running")
    off = cli.ok("maintenance:off", "-a", "example-app", "--json")
    assert off.err == "Disabling maintenance mode for ⬢ example-app... done\n"
    assert off.json()["maintenance_mode"] is False


def test_run_without_a_pending_maintenance_prints_the_servers_sentence(cli: Cli) -> None:
    name = create_premium(cli)
    result = cli("data:maintenances:run", "REDIS_URL", "-a", "example-app", "--confirm", "example-app")
    assert (result.code, result.out) == (1, "")
    assert result.err == f"No maintenance is required for {name}.\n"


def test_history_and_maintenance_list(cli: Cli) -> None:
    name = create_premium(cli)
    assert cli.ok("data:maintenances:history", name).lines == []
    require(cli, "--all")
    history = cli.ok("data:maintenances:history", "REDIS_URL", "-a", "example-app")
    assert history.lines[0].split() == ["ID", "STATUS", "REASON", "METHOD", "SCHEDULED", "FOR", "STARTED", "AT",
                                        "COMPLETED", "AT", "DURATION", "(S)"]
    assert len(history.lines) == 2 and " pending " in history.lines[1]
    one = cli.ok("data:maintenances:history", "REDIS_URL", "-a", "example-app", "-n", "1", "--json").json()
    assert [m["addon"]["name"] for m in one] == [name] and one[0]["status"] == "pending"
    too_many = cli("data:maintenances:history", "REDIS_URL", "-a", "example-app", "-n", "30")
    assert too_many.code == 1 and too_many.err.count("\n") == 1 and "20" in too_many.err

    listed = cli.ok("data:maintenances", "-a", "example-app")
    assert listed.lines[0].split()[:4] == ["ID", "ADDON", "STATUS", "REASON"]
    assert listed.lines[1].split()[1:5] == [name, "pending", "routine_maintenance", "failover"]
    assert cli.ok("data:maintenances", "-a", "example-app", "--json").json()[0]["id"] == one[0]["id"]

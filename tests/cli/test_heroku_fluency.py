"""Heroku CLI fluency against the real scheduler process: the short flags, KVMAINT_APP, `maintenance`,
the `redis` alias, Heroku's JSON shapes, and `data:maintenances:wait` failing at once when nothing runs."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kvmaint.cli.heroku import INFO_EXTRA_KEYS, ITEM_EXTRA_KEYS, MAINTENANCE_KEYS, WINDOW_KEYS
from tests.cli.conftest import Cli, create_premium, until
from tests.cli.test_maintenance_e2e import create
from tests.cli.test_seed_flows import block, require
from tests.cli.test_streams_and_errors import Lines
from tests.conftest import APP_TOKENS, OPERATOR_TOKEN
from tests.support.agentproc import AgentProcess
from tests.support.scheduler import SchedulerProcess


def test_short_flags_are_the_long_ones(cli: Cli) -> None:
    name = create_premium(cli)
    require(cli, "--all")
    long = cli.ok("data:maintenances:info", "REDIS_URL", "-a", "example-app", "--json").json()
    assert cli.ok("data:maintenances:info", "REDIS_URL", "-a", "example-app", "-j").json() == long
    assert cli.ok("-j", "data:maintenances:window", name).json() == \
        cli.ok("data:maintenances:window", name, "--json").json()

    # -n and --num on history (Heroku's --num), and the 1..20 bound from the server.
    assert len(cli.ok("data:maintenances:history", name, "--num", "1", "-j").json()) == 1
    assert len(cli.ok("data:maintenances:history", name, "-n", "1", "-j").json()) == 1
    assert cli("data:maintenances:history", name, "--num", "21").code == 1

    # -c APP is --confirm: a wrong name is refused with Heroku's sentence, the right one starts it.
    refused = cli("data:maintenances:run", "REDIS_URL", "-a", "example-app", "-c", "other-app")
    assert refused.code == 1 and refused.err.endswith("--confirm example-app\n"), refused.err
    started = cli.ok("data:maintenances:run", "REDIS_URL", "-a", "example-app", "-c", "example-app", "-j")
    assert started.err == f"Starting maintenance for {name}... done\n"
    assert started.json()["status"] in ("preparing", "ready", "running")
    # apps:destroy takes -c too.
    create_premium(cli, "doomed-app", "db-5:7005", "db-6:7006")
    cli.ok("apps:destroy", "doomed-app", "-c", "doomed-app")
    assert "doomed-app" not in {a["name"] for a in cli.ok("apps", "-j").json()}


def test_kvmaint_app_stands_in_for_a_missing_app_flag(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    name = create_premium(cli)
    create_premium(cli, "other-app", "db-3:7003", "db-4:7004")
    missing = cli("config")
    assert (missing.code, missing.out) == (2, "")
    assert missing.err == "Missing required flag -a/--app APP (or set KVMAINT_APP). See 'kvmaint config -h'.\n"

    monkeypatch.setenv("KVMAINT_APP", "example-app")
    assert cli.ok("config").out.startswith("=== example-app Config Vars\n")
    assert block(cli.ok("redis:info", "REDIS_URL").out)["Plan"] == "Premium 0"
    assert cli.ok("data:maintenances:info", "REDIS_URL", "-j").json()["addon"]["name"] == name
    # -a wins over the variable.
    assert cli.ok("config", "-a", "other-app").out.startswith("=== other-app Config Vars\n")
    assert [a["app"] for a in cli.ok("addons", "-j").json()] == ["example-app"]


def test_maintenance_status_and_the_redis_alias(cli: Cli) -> None:
    name = create_premium(cli)
    assert cli.ok("maintenance", "-a", "example-app").out == "off\n"
    cli.ok("maintenance:on", "-a", "example-app")
    status = cli.ok("maintenance", "-a", "example-app")
    assert (status.out, status.err) == ("on\n", "")
    assert cli.ok("maintenance", "-a", "example-app", "-j").json()["maintenance_mode"] is True
    unknown = cli("maintenance", "-a", "no-such-app")
    assert (unknown.code, unknown.err) == (1, "Couldn't find that app: no-such-app.\n")

    alias = cli.ok("redis", "REDIS_URL", "-a", "example-app")
    assert alias.out == cli.ok("redis:info", "REDIS_URL", "-a", "example-app").out
    assert alias.out.startswith(f"=== {name} (REDIS_URL)\n")


def test_json_takes_herokus_shapes(cli: Cli) -> None:
    name = create_premium(cli, "example-app", "db-1:7001", "db-2:7002", "--as", "REDIS_URL", "--as",
                          "CACHE_URL")
    require(cli, "--all")
    addon = cli.ok("addons", "-a", "example-app", "-j").json()[0]
    expected_addon = {"attachments": ["REDIS_URL", "CACHE_URL"], "kind": addon["kind"], "name": name,
                      "plan": "premium-0", "window": addon["window"], "description": addon["description"]}
    assert addon["kind"] and addon["window"].endswith(" UTC")

    info = cli.ok("data:maintenances:info", name, "-j").json()
    assert list(info) == ["addon", "app", *MAINTENANCE_KEYS, *INFO_EXTRA_KEYS]
    assert (info["addon"], info["app"]) == (expected_addon, {"name": "example-app"})
    assert (info["status"], info["reason"], info["method"]) == ("pending", "routine_maintenance", "failover")
    assert info["window"] == addon["window"] and info["server_created_at"] == addon["created_at"]
    assert info["completed_at"] is None and info["started_at"] is None and info["attempts"] == 0

    for items in (cli.ok("data:maintenances", "-a", "example-app", "-j").json(),
                  cli.ok("data:maintenances:history", "CACHE_URL", "-a", "example-app", "-j").json()):
        assert len(items) == 1
        assert list(items[0]) == ["addon", "app", *MAINTENANCE_KEYS, *ITEM_EXTRA_KEYS]
        assert (items[0]["addon"], items[0]["app"]) == (expected_addon, {"name": "example-app"})
        assert items[0]["id"] == info["id"] and items[0]["scheduled_for"] == info["scheduled_for"]
        assert items[0]["server_created_at"] == addon["created_at"]

    # Window commands answer Heroku's Window object: scheduled_at / previously_scheduled_at.
    updated = cli.ok("data:maintenances:window:update", name, "Sunday", "14:30", "-j")
    assert updated.err == f"Setting maintenance window for {name} to Sundays 14:30 to 18:30 UTC... done\n"
    window = updated.json()
    assert list(window) == list(WINDOW_KEYS)
    assert (window["window"], window["previous_window"]) == ("Sundays 14:30 to 18:30 UTC", addon["window"])
    assert window["previously_scheduled_at"] == info["scheduled_for"]
    assert window["scheduled_at"] == cli.ok("data:maintenances:info", name, "-j").json()["scheduled_for"]
    shown = cli.ok("data:maintenances:window", name, "-j").json()
    assert shown["window"] == "Sundays 14:30 to 18:30 UTC" and shown["scheduled_at"] == window["scheduled_at"]
    # The human output is kvmaint's, as before.
    human = block(cli.ok("data:maintenances:window", name).out)
    assert human["scheduled_for"] == window["scheduled_at"]


def test_wait_on_a_pending_maintenance_fails_at_once(cli: Cli) -> None:
    name = create_premium(cli)
    require(cli, "--all")
    began = time.monotonic()
    result = cli.run("data:maintenances:wait", "REDIS_URL", "-a", "example-app")
    assert (result.code, result.out) == (1, "")
    assert result.err == f"There currently isn't any maintenance in progress for {name}.\n"
    assert time.monotonic() - began < 20  # a process start and one call, not weeks of following


@pytest.fixture
def patient_fleet(scheduler_factory: Callable[..., SchedulerProcess],
                  tmp_path: Path) -> Iterator[tuple[Cli, dict[str, AgentProcess]]]:
    """Like fleet_cli, but a standby may take a minute to catch up: a test holds one back on purpose."""
    scheduler = scheduler_factory(extra_args=["--catch-up-timeout", "60", "--command-timeout", "90",
                                              "--tick-seconds", "0.5"])
    hosts = {h: AgentProcess(h, scheduler.address, tmp_path).start() for h in ("db-1", "db-2")}
    cli = Cli(scheduler.address)
    try:
        until(lambda: {a["host_id"] for a in cli.ok("agents", "-j").json() if a["connected"]} == set(hosts),
              what="agents db-1 and db-2 connected")
        yield cli, hosts
    finally:
        for agent in hosts.values():
            agent.stop()
        for agent in hosts.values():
            agent.stop_servers()


def test_wait_follows_a_running_maintenance_to_the_end(
        patient_fleet: tuple[Cli, dict[str, AgentProcess]]) -> None:
    cli, hosts = patient_fleet
    addon = create(cli)
    name = str(addon["name"])
    standby_host, standby_port = str(addon["standby"]).split(":")
    pid = until(lambda: hosts[standby_host].server_pid(int(standby_port)), what="standby pid")
    os.kill(pid, signal.SIGSTOP)  # the standby cannot catch up: the maintenance stays in progress
    stopped = True
    try:
        cli.ok("maintenances:require", "--reason", "security_patch", "--addon", name)
        cli.ok("data:maintenances:run", "REDIS_URL", "-a", "example-app", "-c", "example-app")
        proc = cli.popen("data:maintenances:wait", "REDIS_URL", "-a", "example-app", "-j")
        first = Lines(proc.stderr).next(timeout=30)
        assert re.match(r"\[ *\d+\.\ds\]  (preparing|ready|running)  ", first), first
        os.kill(pid, signal.SIGCONT)  # let it catch up: the maintenance goes on to the end
        stopped = False
        out, _ = proc.communicate(timeout=90)
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)
    assert proc.returncode == 0
    final = json.loads(out)
    assert (final["addon"]["name"], final["status"]) == (name, "completed")
    assert final["completed_at"] and isinstance(final["duration_seconds"], int)


def test_run_dash_w_follows_to_the_end(fleet_cli: tuple[Cli, dict[str, AgentProcess]]) -> None:
    cli, _ = fleet_cli
    name = str(create(cli)["name"])
    cli.ok("maintenances:require", "--reason", "security_patch", "--addon", name)
    result = cli.run("data:maintenances:run", "REDIS_URL", "-a", "example-app", "-c", "example-app", "-w",
                     "-j", timeout=90)
    assert result.code == 0, result.err
    assert result.err.splitlines()[0] == f"Starting maintenance for {name}... done"
    assert any(" step failover " in line for line in result.err.splitlines())
    final = result.json()
    assert (final["addon"]["name"], final["app"], final["status"]) == (name, {"name": "example-app"},
                                                                       "completed")


def test_maintenance_status_with_an_app_token(scheduler_factory: Callable[..., SchedulerProcess],
                                              make_cli: Callable[[SchedulerProcess, str | None], Cli]) -> None:
    scheduler = scheduler_factory(tokens=True)
    operator = make_cli(scheduler, OPERATOR_TOKEN)
    create_premium(operator)
    create_premium(operator, "other-app", "db-3:7003", "db-4:7004")
    owner = make_cli(scheduler, APP_TOKENS["example-app"])
    assert owner.ok("maintenance", "-a", "example-app").out == "off\n"  # GetApp: an app token reads its own
    denied = owner("maintenance", "-a", "other-app")
    assert (denied.code, denied.err) == (1, "This token may act only on app example-app, not other-app.\n")

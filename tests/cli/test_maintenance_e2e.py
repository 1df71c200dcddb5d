"""Maintenances run for real through the CLI: scheduler and agents as processes, real redis-servers.

What only a real run shows: `--wait` following WaitMaintenance to the end, the final info block and exit
code, history of several maintenances, the app following the new primary, and a failure's sentence.
"""

from __future__ import annotations

import os
import signal
from urllib.parse import urlsplit

from kvmaint.cli.format import INFO_KEYS
from kvmaint.cli.maintenance import retry_sentence
from tests.cli.conftest import Cli, Result, until
from tests.cli.test_seed_flows import block
from tests.support.agentproc import AgentProcess


def create(cli: Cli) -> dict[str, object]:
    cli.ok("apps:create", "example-app")
    addon: dict[str, object] = cli.ok("addons:create", "premium-0", "-a", "example-app", "--json").json()
    return addon


def require_and_run(cli: Cli, addon: str) -> Result:
    cli.ok("maintenances:require", "--reason", "security_patch", "--addon", addon)
    return cli.run("data:maintenances:run", "REDIS_URL", "-a", "example-app", "--confirm", "example-app",
                   "--wait", timeout=90)


def test_run_wait_follows_the_failover_to_the_end(fleet_cli: tuple[Cli, dict[str, AgentProcess]]) -> None:
    cli, _ = fleet_cli
    addon = create(cli)
    name, primary, standby = addon["name"], addon["primary"], addon["standby"]
    assert cli.ok("config", "-a", "example-app").out.count(":") >= 1

    first = require_and_run(cli, str(name))
    assert first.code == 0, first.err
    progress = first.err.splitlines()
    assert progress[0] == f"Starting maintenance for {name}... done"
    # The standby's lag as the agents measure it, on a live line (catch-up on these small data sets can
    # end before its first measurement reaches the stream, so any step's line may carry it).
    assert any(" step " in line and "standby lag" in line for line in progress), progress
    assert any(" step failover " in line for line in progress)
    assert "completed" in progress[-1]
    info = block(first.out)
    assert [line.split(":", 1)[0] for line in first.out.splitlines()] == list(INFO_KEYS)
    assert (info["status"], info["method"], info["reason"]) == ("completed", "failover", "security_patch")
    assert info["completed_at"] and info["started_at"] and info["duration_seconds"].isdigit()
    assert info["write_pause_ms"].isdigit()

    # The old standby is the primary now, and the app's REDIS_URL points at it.
    after = cli.ok("addons", "-a", "example-app", "--json").json()[0]
    assert (after["primary"], after["standby"]) == (standby, primary)
    endpoint = next(s["endpoint"] for s in after["servers"] if s["role"] == "primary")
    url = urlsplit(cli.ok("config", "-a", "example-app", "--json").json()["REDIS_URL"])
    assert (url.scheme, f"{url.hostname}:{url.port}", url.username) == ("redis", endpoint, name)
    assert url.password
    assert block(cli.ok("redis:info", "REDIS_URL", "-a", "example-app").out)["Maintenance"] == "not required"

    second = require_and_run(cli, str(name))
    assert second.code == 0, second.err
    history = cli.ok("data:maintenances:history", "REDIS_URL", "-a", "example-app", "--json").json()
    assert [m["status"] for m in history] == ["completed", "completed"]
    assert history[0]["id"] == block(second.out)["id"]  # newest first
    assert history[1]["id"] == info["id"]
    newest = cli.ok("data:maintenances:history", "REDIS_URL", "-a", "example-app", "-n", "1", "--json").json()
    assert [m["id"] for m in newest] == [history[0]["id"]]
    table = cli.ok("data:maintenances:history", "REDIS_URL", "-a", "example-app").lines
    assert [line.split()[:2] for line in table[1:]] == [[m["id"], "completed"] for m in history]

    types = [line.split()[2] for line in cli.ok("events", "--addon", str(name)).lines]
    assert types.count("maintenance_completed") == 2 and "maintenance_step" in types


def test_a_failed_attempt_ends_wait_with_its_reason_and_stays_required(fleet_cli: tuple[Cli, dict[str, AgentProcess]]) -> None:
    cli, hosts = fleet_cli
    addon = create(cli)
    standby_host, standby_port = str(addon["standby"]).split(":")
    pid = until(lambda: hosts[standby_host].server_pid(int(standby_port)), what="standby pid")
    os.kill(pid, signal.SIGSTOP)  # the standby stops replicating: it never catches up
    try:
        result = require_and_run(cli, str(addon["name"]))
    finally:
        os.kill(pid, signal.SIGCONT)
    assert result.code == 1
    info = block(result.out)
    # The attempt failed before the point of no return: still required, pending again, reason kept.
    assert (info["status"], info["attempts"], info["needs_operator"]) == ("pending", "1", "off")
    assert info["last_failure_reason"].startswith("catch_up: ") and not info["failure_reason"]
    assert result.err.splitlines()[-1] == retry_sentence(str(addon["name"]), {**info, "attempts": 1,
                                                                               "needs_operator": False})
    assert result.err.splitlines()[-1] == (
        f"Maintenance of {addon['name']} failed: {info['last_failure_reason'].rstrip('.')}; "
        f"it is pending again (attempt 1 failed) for {info['scheduled_for']}.")
    listed = cli.ok("data:maintenances", "-a", "example-app", "--json").json()
    assert [m["status"] for m in listed] == ["pending"]
    shown = block(cli.ok("redis:info", "REDIS_URL", "-a", "example-app").out)
    assert shown["Maintenance"].startswith("required by ")


def test_agents_table(fleet_cli: tuple[Cli, dict[str, AgentProcess]]) -> None:
    cli, _ = fleet_cli
    create(cli)

    def reported() -> list[str] | None:
        """Agents report their servers with their next heartbeat."""
        lines = cli.ok("agents").lines
        return lines if "master" in "".join(lines) and "slave" in "".join(lines) else None

    table = until(reported, what="both servers reported")
    assert table[0].split() == ["HOST", "ADVERTISED", "AS", "STATUS", "VERSION", "SERVERS"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert set(rows) == {"db-1", "db-2"}
    assert all(" connected " in row for row in rows.values())
    assert any(" master" in row for row in rows.values()) and any(" slave" in row for row in rows.values())

"""Events, live waiting, tokens, JSON output and failures, against the real scheduler process."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Callable

import pytest

from kvmaint.cli.format import INFO_KEYS
from tests.cli.conftest import Cli, create_premium
from tests.conftest import APP_TOKENS, OPERATOR_TOKEN
from tests.support.scheduler import SchedulerProcess


class Lines:
    """Reads a pipe on a thread so a test can wait for the next line with a deadline."""

    def __init__(self, pipe: object) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe: object) -> None:
        for line in pipe:  # type: ignore[attr-defined]
            self._queue.put(line)

    def next(self, timeout: float = 10) -> str:
        return self._queue.get(timeout=timeout)


def interrupt(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """Ctrl-C: SIGINT, then the exit code and whatever is left on stderr."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    return proc.returncode, err


def test_events_lines_json_lines_and_since(cli: Cli) -> None:
    name = create_premium(cli)
    lines = cli.ok("events").lines
    assert len(lines) >= 2
    first = lines[0].split(maxsplit=4)
    assert first[0] == "1" and first[2] == "app_created" and first[3] == "example-app"
    assert any(line.split()[2] == "addon_created" and line.split()[4] == name for line in lines)

    events = [json.loads(line) for line in cli.ok("events", "--json").lines]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert set(events[0]) == {"sequence", "time", "type", "app", "addon", "maintenance_id", "message",
                              "attributes"}
    assert [e["sequence"] for e in map(json.loads, cli.ok("events", "--since", "1", "--json").lines)] == \
        list(range(2, len(events) + 1))
    only_addon = [json.loads(x) for x in cli.ok("events", "--addon", name, "--json").lines]
    assert only_addon and all(e["addon"] == name for e in only_addon)
    unknown = cli("events", "-a", "no-such-app")  # never existed: a typo, not an empty history
    assert unknown.code == 1 and "Couldn't find that app: no-such-app." in unknown.err


def test_events_follow_streams_until_ctrl_c(cli: Cli) -> None:
    cli.ok("apps:create", "example-app")
    proc = cli.popen("events", "--follow", "--json")
    try:
        out = Lines(proc.stdout)
        assert json.loads(out.next())["type"] == "app_created"
        cli.ok("maintenance:on", "-a", "example-app")
        event = json.loads(out.next())
        assert (event["sequence"], event["type"], event["app"]) == (2, "maintenance_mode_changed", "example-app")
        assert proc.poll() is None  # still following
    finally:
        code, err = interrupt(proc)
    assert (code, err) == (130, "")


def test_run_wait_shows_progress_and_ctrl_c_exits_130(cli: Cli) -> None:
    name = create_premium(cli)
    cli.ok("maintenances:require", "--reason", "security_patch", "--addon", name)
    proc = cli.popen("data:maintenances:run", "REDIS_URL", "-a", "example-app", "--confirm", "example-app",
                     "--wait")
    err = Lines(proc.stderr)
    try:
        assert err.next() == f"Starting maintenance for {name}... done\n"
        progress = err.next()
        assert re.match(r"\[ *\d+\.\ds\]  (preparing|running|completed|failed|canceled)", progress), progress
        proc.wait(2)
    except subprocess.TimeoutExpired:
        pass
    if proc.poll() is None:
        # No agent serves the fake hosts, so the maintenance stays put: the wait ends by Ctrl-C, quietly.
        code, rest = interrupt(proc)
        assert (code, rest) == (130, "")
        return
    # Were the maintenance to end on its own, the command prints the final info block.
    out = proc.stdout.read() if proc.stdout else ""
    assert [line.split(":", 1)[0] for line in out.splitlines()] == list(INFO_KEYS)
    status = out.split("\nstatus:", 1)[1].split("\n", 1)[0].strip()
    assert proc.returncode == (0 if status == "completed" else 1)


def test_wait_without_a_maintenance_is_an_error(cli: Cli) -> None:
    name = create_premium(cli)
    result = cli("data:maintenances:wait", "REDIS_URL", "-a", "example-app")
    assert result.code == 1 and result.out == ""
    assert result.err == f"There currently isn't any maintenance in progress for {name}.\n"


def test_require_targets_and_already_pending(cli: Cli) -> None:
    a = create_premium(cli)
    b = create_premium(cli, "example-app", "db-3:7003", "db-4:7004", "--as", "CACHE_URL")
    filed = cli.ok("maintenances:require", "--reason", "security_patch", "--method", "restart", "--addon", a,
                   "--json").json()
    assert filed["already_pending"] == []
    assert (filed["filed"], filed["already_pending_count"], filed["skipped"], filed["lists_omitted"]) == (1, 0, {}, False)
    assert [(m["addon"], m["reason"], m["method"], m["status"]) for m in filed["maintenances"]] == [
        (a, "security_patch", "restart", "pending")]

    again = cli.ok("maintenances:require", "--reason", "emergency", "--plan", "premium-0")
    [done, kept, counts] = again.err.splitlines()
    assert (done, kept) == ("Requiring maintenance for every premium-0 add-on... done",
                            f"Already pending, kept as they are: {a}.")
    assert counts.startswith("Filed 1, already pending 1; 1 batch, filing cli-")
    filing = counts.rsplit(" ", 1)[1].rstrip(".")
    listed = cli.ok("data:maintenances", "--filing", filing, "--json").json()
    assert [(m["addon"], m["reason"]) for m in listed] == [(b, "emergency")]
    assert cli("data:maintenances").code == 1  # neither an app nor a filing
    assert again.lines[0].split()[:3] == ["ADDON", "APP", "ID"]
    assert [line.split()[0] for line in again.lines[1:]] == [b]

    nothing = cli.ok("maintenances:require", "--reason", "emergency", "--plan", "mini")
    assert (nothing.out, nothing.err.splitlines()[-1]) == ("", "No add-on matched.")

    bad = cli("maintenances:require", "--reason", "whim", "--all")
    assert (bad.code, bad.err) == (1, "Unknown --reason value 'whim'; allowed values are routine_maintenance, "
                                      "security_patch, redis_upgrade, infrastructure, emergency.\n")
    bad_time = cli("maintenances:require", "--reason", "emergency", "--all", "--required-by", "soon")
    assert bad_time.code == 1 and "ISO 8601" in bad_time.err


def test_every_read_command_prints_parseable_json(cli: Cli) -> None:
    name = create_premium(cli)
    cli.ok("maintenances:require", "--reason", "infrastructure", "--all")
    outputs = {
        "apps": cli.ok("apps", "--json").json(),
        "addons": cli.ok("--json", "addons", "-a", "example-app").json(),
        "config": cli.ok("config", "-a", "example-app", "--json").json(),
        "redis:info": cli.ok("redis:info", name, "--json").json(),
        "data:maintenances": cli.ok("data:maintenances", "-a", "example-app", "--json").json(),
        "info": cli.ok("data:maintenances:info", name, "--json").json(),
        "window": cli.ok("data:maintenances:window", name, "--json").json(),
        "history": cli.ok("data:maintenances:history", name, "--json").json(),
    }
    assert outputs["apps"][0]["name"] == "example-app"
    assert outputs["addons"][0]["servers"][0] == {"role": "primary", "address": "db-1:7001",
                                                  "endpoint": outputs["addons"][0]["servers"][0]["endpoint"],
                                                  "build": "", "version": ""}  # no agent reported it
    assert "REDIS_URL" in outputs["config"]
    assert outputs["redis:info"][0]["maintenance"].startswith("required by ")
    assert outputs["data:maintenances"][0]["reason"] == "infrastructure"
    assert outputs["info"]["reason"] == "infrastructure"
    assert set(outputs["window"]) == {"window", "previous_window", "scheduled_at", "previously_scheduled_at"}
    assert outputs["history"][0]["history"][0]["status"] == "pending"
    write = cli.ok("apps:create", "json-app", "--json").json()
    assert write["name"] == "json-app" and write["maintenance_mode"] is False


def test_errors_are_one_sentence_and_exit_1(cli: Cli) -> None:
    create_premium(cli)
    unknown = cli("data:maintenances:info", "NOPE_URL", "-a", "example-app")
    assert (unknown.code, unknown.out) == (1, "")
    assert unknown.err == "Couldn't find add-on or attachment NOPE_URL on app example-app.\n"

    invalid = cli("apps:create", "Bad App")
    assert invalid.code == 1 and invalid.err.count("\n") == 1 and "'Bad App'" in invalid.err

    duplicate = cli("apps:create", "example-app")
    assert duplicate.code == 1 and duplicate.err.count("\n") == 1

    as_process = cli.run("redis:info", "NOPE_URL", "-a", "example-app")
    assert (as_process.code, as_process.out) == (1, "")
    assert as_process.err == "Couldn't find add-on or attachment NOPE_URL on app example-app.\n"


def test_unreachable_scheduler_as_a_process(cli: Cli, scheduler: SchedulerProcess) -> None:
    scheduler.stop()
    result = cli.run("apps")
    assert (result.code, result.out) == (1, "")
    assert result.err == f"Cannot reach the scheduler at {scheduler.address}: connection refused.\n"


def test_apps_destroy_needs_the_name_twice(cli: Cli) -> None:
    create_premium(cli)
    missing = cli("apps:destroy", "example-app")
    assert missing.code == 1 and missing.err.endswith("re-run the command with --confirm example-app\n")
    destroyed = cli.ok("apps:destroy", "example-app", "--confirm", "example-app")
    assert destroyed.err == "Destroying ⬢ example-app (including all add-ons)... done\n"
    assert cli.ok("apps", "--json").json() == []
    assert cli.ok("addons", "--json").json() == []


def test_tokens(scheduler_factory: Callable[..., SchedulerProcess],
                make_cli: Callable[[SchedulerProcess, str | None], Cli],
                monkeypatch: pytest.MonkeyPatch) -> None:
    scheduler = scheduler_factory(tokens=True)
    operator = make_cli(scheduler, OPERATOR_TOKEN)
    create_premium(operator)
    create_premium(operator, "other-app", "db-3:7003", "db-4:7004")

    anonymous = make_cli(scheduler, None)("apps")
    assert anonymous.code == 1
    assert anonymous.err == "A bearer token is required: pass --token or set KVMAINT_TOKEN.\n"
    assert make_cli(scheduler, "wrong-token-123")("apps").err == "The token is not valid.\n"

    app = make_cli(scheduler, APP_TOKENS["example-app"])
    # An app token names its app implicitly: REDIS_URL resolves within example-app without -a.
    assert app.ok("data:maintenances:info", "REDIS_URL", "--json").json()["app"] == {"name": "example-app"}
    denied = app("config", "-a", "other-app")
    assert denied.code == 1 and denied.err.count("\n") == 1 and "other-app" in denied.err
    assert app("maintenances:require", "--reason", "emergency", "--all").code == 1
    # Streams carry the token too, and an app token sees its own app's events only.
    events = [json.loads(line) for line in app.ok("events", "--json").lines]
    assert events and {e["app"] for e in events} == {"example-app"}

    monkeypatch.setenv("KVMAINT_TOKEN", OPERATOR_TOKEN)
    assert make_cli(scheduler, None).ok("apps", "--json").json()[0]["name"] == "example-app"

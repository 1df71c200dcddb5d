"""`kvmaint apps:exec` as a separate process, with real children, a real scheduler, agents and redis-servers.

The children are plain programs that only read REDIS_URL from their environment (a shell loop with
redis-cli, and bench/plain_writer.py on redis-py): no kvmaint import. What is proved:
- exit status, environment, a command that cannot start, an unknown app;
- SIGINT / SIGTERM / SIGHUP reach the child (and only once), the child's status is ours; a child that
  ignores SIGTERM is killed after the grace period;
- a scheduler restart is survived without a restart; a real maintenance restarts each child exactly once,
  and the restarted child writes to the new primary.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from kvmaint.redact import redact_url
from tests.cli.conftest import FAST, Cli, create_premium, until
from tests.support.agentproc import AgentProcess
from tests.support.scheduler import ROOT, SchedulerProcess

PLAIN_WRITER = str(ROOT / "bench" / "plain_writer.py")


@dataclass
class Exec:
    """One `kvmaint apps:exec` process; its stdout (the child's) and stderr go to files."""

    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def lines(self, kind: str) -> list[list[str]]:
        return [line.split() for line in self.stdout().splitlines() if line.startswith(kind + " ")]

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)


@pytest.fixture
def run_exec(tmp_path: Path) -> Iterator[Callable[..., Exec]]:
    started: list[Exec] = []

    def start(address: str, app: str, *command: str, grace: float = 5, env: dict[str, str] | None = None) -> Exec:
        n = len(started)
        out, err = tmp_path / f"exec-{n}.out", tmp_path / f"exec-{n}.err"
        base = {k: v for k, v in os.environ.items() if not k.startswith("KVMAINT_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "kvmaint.cli", "--scheduler", address, "apps:exec", "-a", app,
             "--grace", str(grace), "--", *command],
            cwd=ROOT, env={**base, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdin=subprocess.DEVNULL, stdout=out.open("wb"), stderr=err.open("wb"),
        )
        started.append(Exec(proc, out, err))
        return started[-1]

    yield start
    for e in started:
        if e.proc.poll() is None:
            e.proc.kill()
            e.proc.wait(10)


def test_the_command_gets_the_config_vars_and_its_status_is_ours(cli: Cli, run_exec: Callable[..., Exec]) -> None:
    create_premium(cli, "env-app")
    url = cli.ok("config", "-a", "env-app", "--json").json()["REDIS_URL"]
    e = run_exec(cli.address, "env-app", "sh", "-c", 'echo "url=$REDIS_URL home=$HOME"; exit 3')
    assert e.wait() == 3
    assert f"url={url} home={os.environ['HOME']}" in e.stdout()  # config vars on top of our environment
    assert "the command exited with status 3" in e.stderr()

    missing = run_exec(cli.address, "env-app", "/nonexistent/program")
    assert missing.wait() == 127
    assert "cannot run /nonexistent/program: No such file or directory" in missing.stderr()

    unknown = run_exec(cli.address, "no-such-app", "true")
    assert unknown.wait() == 1
    assert "no-such-app" in unknown.stderr() and "started" not in unknown.stderr()

    usage = cli("apps:exec", "-a", "env-app", "--")
    assert usage.code == 1 and "Name the command to run after --" in usage.err


TRAPPER = """
import signal, sys, time
def got(n, f):
    print(f"got {signal.Signals(n).name}", flush=True)
    sys.exit(40 + n)
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, got)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def test_signals_reach_the_child_once_and_its_status_is_ours(cli: Cli, run_exec: Callable[..., Exec]) -> None:
    create_premium(cli, "sig-app")
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    runs = {s: run_exec(cli.address, "sig-app", sys.executable, "-c", TRAPPER) for s in sigs}
    for s, e in runs.items():
        until(lambda e=e: "ready" in e.stdout(), what="child ready")
        e.proc.send_signal(s)
    for s, e in runs.items():
        assert e.wait() == 40 + s, e.stderr()
        assert e.stdout().count("got ") == 1 and f"got {s.name}" in e.stdout()
        assert f"got {s.name}: passing it on, then exiting" in e.stderr()

    stubborn = run_exec(cli.address, "sig-app", "sh", "-c", 'trap "" TERM; echo ready; sleep 60', grace=0.5)
    until(lambda: "ready" in stubborn.stdout(), what="stubborn child ready")
    stubborn.proc.send_signal(signal.SIGTERM)
    assert stubborn.wait() == 128 + signal.SIGKILL
    assert "did not exit within 0.5 s: SIGKILL" in stubborn.stderr()


SHELL_LOOP = ('echo "start $$ $REDIS_URL"; n=0; '
              'while :; do redis-cli -u "$REDIS_URL" SET "sh:$$:$n" "$n" >/dev/null; n=$((n+1)); sleep 0.05; done')


@pytest.fixture
def fleet(scheduler_factory: Callable[..., SchedulerProcess],
          tmp_path: Path) -> Iterator[tuple[SchedulerProcess, Cli, dict[str, AgentProcess]]]:
    scheduler = scheduler_factory(extra_args=FAST)
    hosts = {h: AgentProcess(h, scheduler.address, tmp_path).start() for h in ("db-1", "db-2")}
    cli = Cli(scheduler.address)
    try:
        connected(cli, hosts)
        yield scheduler, cli, hosts
    finally:
        for agent in hosts.values():
            agent.stop()
        for agent in hosts.values():
            agent.stop_servers()


def connected(cli: Cli, hosts: dict[str, AgentProcess]) -> None:
    until(lambda: {a["host_id"] for a in cli.ok("agents", "--json").json() if a["connected"]} == set(hosts),
          what="agents connected")


def keys_of(url: str, pattern: str) -> list[str]:
    with redis.Redis.from_url(url, decode_responses=True) as r:
        return list(r.scan_iter(match=pattern, count=1000))


def test_plain_programs_restart_once_through_a_maintenance_and_write_to_the_new_primary(
    fleet: tuple[SchedulerProcess, Cli, dict[str, AgentProcess]], run_exec: Callable[..., Exec]
) -> None:
    scheduler, cli, hosts = fleet
    cli.ok("apps:create", "example-app")
    addon = cli.ok("addons:create", "premium-0", "-a", "example-app", "--json").json()
    old_url = cli.ok("config", "-a", "example-app", "--json").json()["REDIS_URL"]
    shell = run_exec(cli.address, "example-app", "sh", "-c", SHELL_LOOP, grace=5)
    python = run_exec(cli.address, "example-app", sys.executable, PLAIN_WRITER, grace=5,
                      env={"PLAIN_WRITER_PREFIX": "py", "PLAIN_WRITER_INTERVAL": "0.02"})
    first_sh = until(lambda: shell.lines("start"), what="shell loop started")[0]
    first_py = until(lambda: python.lines("start"), what="python loop started")[0]
    assert first_sh[2] == old_url and first_py[2] == old_url
    until(lambda: keys_of(old_url, f"sh:{first_sh[1]}:*") and python.lines("ack"), what="first writes")

    # A scheduler restart: both re-watch, and nothing restarts (the config is what they run with).
    scheduler.restart()
    for e in (shell, python):
        until(lambda e=e: "config vars unchanged; nothing to restart" in e.stderr(), timeout=30,
              what="re-watched after the scheduler restart")
        assert len(e.lines("start")) == 1 and "restarting" not in e.stderr()
    connected(cli, hosts)

    cli.ok("maintenances:require", "--reason", "security_patch", "--addon", addon["name"])
    done = cli.run("data:maintenances:run", "REDIS_URL", "-a", "example-app", "--confirm", "example-app",
                   "--wait", timeout=90)
    assert done.code == 0, done.err
    new_url = cli.ok("config", "-a", "example-app", "--json").json()["REDIS_URL"]
    assert new_url != old_url and new_url.endswith(":" + str(addon["standby"]).split(":")[1])

    for e, prefix in ((shell, "sh"), (python, "py")):
        starts = until(lambda e=e: len(e.lines("start")) == 2 and e.lines("start"), what="restarted")
        assert starts[1][2] == new_url
        # The restarted program writes, and it writes to the new primary.
        until(lambda p=prefix, pid=starts[1][1]: len(keys_of(new_url, f"{p}:{pid}:*")) >= 3,
              what=f"{prefix} writes on the new primary")
        err = e.stderr()
        assert err.count("restarting (SIGTERM") == 1, err
        assert f"REDIS_URL changed from {redact_url(old_url)} to {redact_url(new_url)}: restarting" in err
        assert urlsplit(new_url).password and urlsplit(new_url).password not in err, "a password printed"
        assert "restarted (the previous one" in err

    # The Python writer stops gracefully on SIGTERM (its in-flight write finished); no restart after.
    assert python.lines("stop") and python.lines("stop")[0][1] == first_py[1]
    with redis.Redis.from_url(new_url, decode_responses=True) as r:
        acked = [a[1] for a in python.lines("ack")]
        assert all(v is not None for v in r.mget(acked)), "an acknowledged write is missing"
    for e in (shell, python):
        e.proc.send_signal(signal.SIGTERM)
    assert python.wait() == 0  # the writer exits 0 on SIGTERM, and its status is apps:exec's
    assert shell.wait() == 128 + signal.SIGTERM
    assert len(shell.lines("start")) == len(python.lines("start")) == 2

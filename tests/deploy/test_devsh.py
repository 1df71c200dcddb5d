"""`scripts/dev.sh` as a person runs it: a real process tree, its example app following a maintenance, and
nothing it started surviving SIGHUP (the terminal closed) or SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.cli.conftest import Cli, until
from tests.support.redisproc import free_port
from tests.support.scheduler import ROOT

APP_LINE = re.compile(r"^app: \d\d:\d\d:\d\d (\S+) counter=(\d+) writes ok=(\d+) errors=(\d+)")


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a live process; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[0]


def running(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] != "Z"  # a zombie has exited


def descendants(root: int) -> set[int]:
    """Every process below `root` now (children in other sessions included: they keep their parent)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[0]
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def under(directory: Path) -> set[int]:
    """Live processes whose command line or working directory names `directory`."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if (str(directory) in cmdline or cwd.startswith(str(directory))) and running(int(entry.name)):
            pids.add(int(entry.name))
    return pids


@dataclass
class DevSh:
    proc: subprocess.Popen[str]
    state: Path
    scheduler: str
    lines: list[str] = field(default_factory=list)

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def app_lines(self) -> list[tuple[str, int, int]]:
        return [(m[1], int(m[2]), int(m[3])) for line in self.lines if (m := APP_LINE.match(line))]

    def started_processes(self) -> set[int]:
        """Everything dev.sh started: its process tree and the redis-servers the agents wrote pids for."""
        pids = descendants(self.proc.pid) | {self.proc.pid}
        for pidfile in self.state.glob("agent-*/servers/*/redis.pid"):
            pids.add(int(pidfile.read_text().strip()))
        return pids

    def output(self) -> str:
        return "\n".join(self.lines[-60:])


def start_devsh(tmp_path: Path) -> DevSh:
    state = tmp_path / "fleet"
    scheduler = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KVMAINT_")}
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "dev.sh"), "--dir", str(state), "--listen", scheduler,
         "--sentinel-listen", "127.0.0.1:0"],
        cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, text=True, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    dev = DevSh(proc, state, scheduler)
    threading.Thread(target=dev.read, daemon=True).start()
    return dev


def stop_and_check(dev: DevSh, send: signal.Signals, *, to_group: bool) -> float:
    """Sends `send`, waits for dev.sh to exit 0, and checks no process it started outlives it; returns
    how long the stop took."""
    started = dev.started_processes()
    servers = list(dev.state.glob("agent-*/servers/*/redis.pid"))
    assert len(servers) == 3, servers  # premium-0's primary and standby, and the mini add-on's server
    assert len(started) >= 9, started  # and dev.sh, the scheduler, 2 agents, apps:exec, the app
    begun = time.monotonic()
    if to_group:
        os.killpg(dev.proc.pid, send)  # what a closing terminal does to its foreground job
    else:
        os.kill(dev.proc.pid, send)
    code = dev.proc.wait(90)
    took = time.monotonic() - begun
    assert code == 0, dev.output()
    until(lambda: not {pid for pid in started if running(pid)}, timeout=15,
          what=f"every process dev.sh started gone after {send.name}")
    assert under(dev.state) == set(), under(dev.state)
    return took


def kill_leftovers(dev: DevSh) -> None:
    if dev.proc.poll() is None:
        for pid in dev.started_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    for pid in under(dev.state):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def test_the_example_app_follows_a_maintenance_and_sighup_stops_everything(tmp_path: Path) -> None:
    dev = start_devsh(tmp_path)
    try:
        until(lambda: any(ok > 0 for _, _, ok in dev.app_lines()) or dev.proc.poll() is not None,
              timeout=120, what="the example app writing")
        assert "Press Ctrl-C to stop" in "\n".join(dev.lines), dev.output()
        old, _, _ = dev.app_lines()[-1]
        cli = Cli(dev.scheduler)
        deadline = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86400))
        # premium-0 only: the mini add-on has no window, so a requirement would start it at once, beside this one
        cli.ok("maintenances:require", "--reason", "security_patch", "--plan", "premium-0", "--required-by", deadline)
        run = cli.run("data:maintenances:run", "REDIS_URL", "-a", "example-app", "--confirm", "example-app",
                      "--wait", timeout=90)
        assert run.code == 0, run.err
        before = max(counter for where, counter, _ in dev.app_lines() if where == old)

        def on_new_primary() -> list[tuple[str, int, int]]:
            return [line for line in dev.app_lines() if line[0] != old and line[2] > 0]

        new, after, _ = until(on_new_primary, timeout=60, what="the app writing to the new primary")[0]
        assert after > before, dev.output()  # the counter carried on from where the old primary left it
        text = "\n".join(dev.lines)
        # The URL carries the add-on's user and password; apps:exec prints the password as ***.
        hidden = r"redis://[\w-]+:\*\*\*@"
        changed = rf"kvmaint apps:exec: REDIS_URL changed from {hidden}{re.escape(old)} to {hidden}{re.escape(new)}: "
        assert re.search(changed, text), text
        url = cli.ok("config:get", "REDIS_URL", "-a", "example-app").out.strip()
        password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        assert password and password not in text, "a password printed"
        assert f"app: started, writing INCR example:counter to {new} (REDIS_URL)" in text
        stop_and_check(dev, signal.SIGHUP, to_group=True)
    finally:
        kill_leftovers(dev)


def test_sigterm_stops_everything(tmp_path: Path) -> None:
    dev = start_devsh(tmp_path)
    try:
        until(lambda: dev.app_lines() or dev.proc.poll() is not None, timeout=120, what="the example app writing")
        assert dev.app_lines(), dev.output()
        took = stop_and_check(dev, signal.SIGTERM, to_group=False)
        assert took < 60
    finally:
        kill_leftovers(dev)

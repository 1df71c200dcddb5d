"""Running `kvmaint` against the real scheduler process: in-process through `main(argv)` for speed, or as
a separate `python -m kvmaint.cli` process where the process boundary matters (exit codes, signals)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kvmaint.cli import main
from tests.support.agentproc import AgentProcess
from tests.support.scheduler import ROOT, SchedulerProcess

T = TypeVar("T")
# Short scheduler bounds, so that a maintenance that cannot proceed fails in seconds.
FAST = ["--catch-up-timeout", "5", "--command-timeout", "20", "--tick-seconds", "0.5"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


class Cli:
    """`kvmaint` pointed at one scheduler, with an optional token."""

    def __init__(self, address: str, token: str | None = None) -> None:
        self.address = address
        self.token = token

    def _argv(self, argv: tuple[str, ...], token: str | None) -> list[str]:
        token = self.token if token is None else token
        return ["--scheduler", self.address, *(["--token", token] if token else []), *argv]

    def __call__(self, *argv: str, token: str | None = None) -> Result:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(self._argv(argv, token))
        return Result(code, out.getvalue(), err.getvalue())

    def ok(self, *argv: str, token: str | None = None) -> Result:
        """Runs and insists on success, showing stderr otherwise."""
        result = self(*argv, token=token)
        assert result.code == 0, result.err
        return result

    def popen(self, *argv: str, token: str | None = None) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KVMAINT_")}
        return subprocess.Popen([sys.executable, "-m", "kvmaint.cli", *self._argv(argv, token)], cwd=ROOT,
                                env={**env, "PYTHONUNBUFFERED": "1"}, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, *argv: str, token: str | None = None, timeout: float = 30) -> Result:
        proc = self.popen(*argv, token=token)
        out, err = proc.communicate(timeout=timeout)
        return Result(proc.returncode, out, err)


@pytest.fixture(autouse=True)
def _no_kvmaint_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's KVMAINT_* settings must not leak into the tests."""
    for name in ("KVMAINT_SCHEDULER", "KVMAINT_TOKEN", "KVMAINT_CA", "KVMAINT_APP"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cli(scheduler: SchedulerProcess) -> Cli:
    return Cli(scheduler.address)


@pytest.fixture
def make_cli() -> Callable[[SchedulerProcess, str | None], Cli]:
    def make(scheduler: SchedulerProcess, token: str | None = None) -> Cli:
        return Cli(scheduler.address, token)

    return make


def create_premium(cli: Cli, app: str = "example-app", primary: str = "db-1:7001",
                   standby: str = "db-2:7002", *extra: str) -> str:
    """An app (if missing) with a premium-0 add-on on fake host ids; returns the add-on's name."""
    if app not in {a["name"] for a in cli.ok("apps", "--json").json()}:
        cli.ok("apps:create", app, "--owner-email", f"ops@{app}.example")
    created = cli.ok("addons:create", "premium-0", "-a", app, "--primary", primary, "--standby", standby,
                     *extra, "--json").json()
    return str(created["name"])


def until(predicate: Callable[[], T | None], timeout: float = 20.0, what: str = "condition") -> T:
    """Polls instead of sleeping a fixed time; returns the first truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout:.0f}s (last value {value!r})")
        time.sleep(0.05)


@pytest.fixture
def fleet_cli(scheduler_factory: Callable[..., SchedulerProcess],
              tmp_path: Path) -> Iterator[tuple[Cli, dict[str, AgentProcess]]]:
    """A scheduler and agents db-1 and db-2 (separate processes with real redis-servers), both connected."""
    scheduler = scheduler_factory(extra_args=FAST)
    hosts = {h: AgentProcess(h, scheduler.address, tmp_path).start() for h in ("db-1", "db-2")}
    cli = Cli(scheduler.address)
    try:
        until(lambda: {a["host_id"] for a in cli.ok("agents", "--json").json() if a["connected"]} == set(hosts),
              what="agents db-1 and db-2 connected")
        yield cli, hosts
    finally:
        for agent in hosts.values():
            agent.stop()
        for agent in hosts.values():
            agent.stop_servers()

"""One scheduler per port and per state file or PostgreSQL database: a second real `kvmaint-scheduler` process refuses to start
with a sentence, and the first keeps serving."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from kvmaint.v1 import fleet_pb2 as fpb
from tests.support.rpc import api
from tests.support.scheduler import ROOT, SchedulerProcess


def second(db: Path | str, listen: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "--listen", listen, "--db", str(db)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def still_serves(first: SchedulerProcess) -> None:
    assert first.proc is not None and first.proc.poll() is None
    with api(first.address) as a:
        a.ListApps(fpb.ListAppsRequest())


def test_a_second_scheduler_on_a_busy_port_fails_at_once(
    scheduler_factory: Callable[..., SchedulerProcess], tmp_path: Path
) -> None:
    first = scheduler_factory()
    done = second(tmp_path / "other.db", first.address)
    assert done.returncode == 2
    assert f"kvmaint-scheduler: cannot listen on {first.address}: the address is in use" in done.stderr
    still_serves(first)


def test_a_second_scheduler_on_a_state_file_in_use_names_its_holder(
    scheduler_factory: Callable[..., SchedulerProcess], tmp_path: Path
) -> None:
    first = scheduler_factory()
    assert first.proc is not None
    done = second(first.db, "127.0.0.1:0")
    assert done.returncode == 2
    assert (
        f"kvmaint-scheduler: state file {first.db} is in use by another kvmaint-scheduler "
        f"(pid {first.proc.pid}, lock {first.db}.lock)"
    ) in done.stderr
    still_serves(first)

    first.kill()  # the kernel drops a dead holder's lock: a restart after a crash is not blocked
    first.start()
    still_serves(first)

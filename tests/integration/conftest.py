from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.agentproc import AgentProcess
from tests.support.scheduler import SchedulerProcess

# Short bounds so that failures show up in seconds, not minutes.
FAST = ["--catch-up-timeout", "5", "--command-timeout", "20", "--tick-seconds", "0.5"]


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    started: list[AgentProcess] = []

    def make(
        host_id: str, scheduler: str, extra_args: list[str] | None = None, workdir: Path | None = None
    ) -> AgentProcess:
        a = AgentProcess(host_id, scheduler, workdir or tmp_path, list(extra_args or []))
        started.append(a)
        return a.start()

    yield make
    for a in started:
        a.stop()
    for a in started:
        a.stop_servers()


@pytest.fixture
def fleet(scheduler_factory: Callable[..., SchedulerProcess], agents: Callable[..., AgentProcess]):
    """A scheduler process and two agent processes, db-1 and db-2."""
    s = scheduler_factory(extra_args=FAST)
    a1 = agents("db-1", s.address)
    a2 = agents("db-2", s.address)
    return s, {"db-1": a1, "db-2": a2}

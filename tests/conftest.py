from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.scheduler import SchedulerProcess

OPERATOR_TOKEN = "op-secret-token"
APP_TOKENS = {"example-app": "app-token-example", "other-app": "app-token-other"}
# Agents without mTLS present an agent token: one for any host, one bound to db-2 only.
AGENT_TOKEN = "agent-secret-token"
AGENT_DB2_TOKEN = "agent-db2-only-token"


def write_tokens(path: Path) -> Path:
    lines = [f'[[token]]\ntoken = "{OPERATOR_TOKEN}"\nrole = "operator"\n']
    for app, tok in APP_TOKENS.items():
        lines.append(f'[[token]]\ntoken = "{tok}"\nrole = "app"\napp = "{app}"\n')
    lines.append(f'[[token]]\ntoken = "{AGENT_TOKEN}"\nrole = "agent"\n')
    lines.append(f'[[token]]\ntoken = "{AGENT_DB2_TOKEN}"\nrole = "agent"\nhosts = ["db-2"]\n')
    path.write_text("\n".join(lines))
    return path


@pytest.fixture
def scheduler_factory(tmp_path: Path) -> Iterator[Callable[..., SchedulerProcess]]:
    """Starts scheduler processes (separate OS processes, real SQLite file); stops them all at teardown."""
    started: list[SchedulerProcess] = []

    def make(
        *,
        tokens: bool = False,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        db: Path | None = None,
    ) -> SchedulerProcess:
        args = list(extra_args or [])
        if tokens:
            args += ["--tokens", str(write_tokens(tmp_path / "tokens.toml"))]
        proc = SchedulerProcess(
            db=db or tmp_path / "state.db", workdir=tmp_path, extra_args=args, env=env or {}
        )
        started.append(proc)
        return proc.start()

    yield make
    for p in started:
        p.stop()


@pytest.fixture
def scheduler(scheduler_factory: Callable[..., SchedulerProcess]) -> SchedulerProcess:
    return scheduler_factory()

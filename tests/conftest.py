from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from server.storage.select import AnyStore, store_for
from tests.support.scheduler import SchedulerProcess
from tests.support.stores import BACKENDS, backend_db

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
def state_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | str]:
    """Where a test's state lives: a SQLite file by default; `on_both_stores` (tests/support/stores.py)
    runs the test on PostgreSQL too."""
    with backend_db(getattr(request, "param", "sqlite"), tmp_path) as db:
        yield db


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AnyStore]:
    """An open store, once on each backend: the storage contract (tests/storage) holds for both."""
    with backend_db(request.param, tmp_path) as db:
        s = store_for(db)
        await s.open()
        try:
            yield s
        finally:
            await s.close()


@pytest.fixture
def scheduler_factory(tmp_path: Path, state_db: Path | str) -> Iterator[Callable[..., SchedulerProcess]]:
    """Starts scheduler processes (separate OS processes on `state_db`); stops them all at teardown."""
    started: list[SchedulerProcess] = []

    def make(
        *,
        tokens: bool = False,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        db: Path | str | None = None,
    ) -> SchedulerProcess:
        args = list(extra_args or [])
        if tokens:
            args += ["--tokens", str(write_tokens(tmp_path / "tokens.toml"))]
        proc = SchedulerProcess(
            db=db or state_db, workdir=tmp_path, extra_args=args, env=env or {}
        )
        started.append(proc)
        return proc.start()

    yield make
    for p in started:
        p.stop()


@pytest.fixture
def scheduler(scheduler_factory: Callable[..., SchedulerProcess]) -> SchedulerProcess:
    return scheduler_factory()

"""Bad observability flags are refused with a sentence naming the flag, before anything starts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent.config import build_config
from kvmaint.errors import InvalidArgument
from tests.support.scheduler import ROOT


@pytest.mark.parametrize(
    ("values", "needle"),
    [({"metrics_listen": "nowhere"}, "--metrics-listen 'nowhere' is not HOST:PORT"), ({"log_format": "xml"}, "--log-format")],
)
def test_agent_refuses_bad_flags(values, needle) -> None:
    with pytest.raises(InvalidArgument, match=needle):
        build_config({"host_id": "db-1", **values})


def test_scheduler_refuses_bad_flags(tmp_path) -> None:
    for args, needle in (
        (["--metrics-listen", "127.0.0.1:99999"], "is not HOST:PORT"),
        (["--log-format", "xml"], "invalid choice: 'xml'"),
    ):
        out = subprocess.run(
            [sys.executable, "-m", "server", "--db", str(tmp_path / "s.db"), *args],
            cwd=ROOT, capture_output=True, text=True, timeout=30,
        )
        assert out.returncode == 2 and needle in out.stderr, out.stderr
        assert not (tmp_path / "s.db").exists()

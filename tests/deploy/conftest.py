"""Deployment tests: the shipped files (deploy/, scripts/dev.sh, the README) used as an operator would."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import _no_kvmaint_env, fleet_cli  # noqa: F401  (fixtures shared with the CLI tests)
from tests.support.scheduler import ROOT

DEPLOY = ROOT / "deploy"


def example(name: str) -> Path:
    return DEPLOY / name

"""A CLI that helps: "did you mean" for commands and flags, errors that name the command's own help,
`--version` on every binary, and a TLS hint when a plaintext client meets a TLS scheduler."""

from __future__ import annotations

import socket
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from kvmaint.tlsprobe import speaks_tls
from kvmaint.version import version
from tests.cli.conftest import Cli
from tests.cli.test_tls import tls_scheduler  # noqa: F401 - the fixture
from tests.support.scheduler import ROOT, SchedulerProcess


def test_an_unknown_command_suggests_the_close_one(cli: Cli) -> None:
    typo = cli("data:maintenance:info", "REDIS_URL", "-a", "example-app")
    assert (typo.code, typo.out) == (2, "")
    assert typo.err == ("'data:maintenance:info' is not a kvmaint command. Did you mean data:maintenances:info? "
                        "See 'kvmaint -h'.\n")
    assert cli("redis:inf").err.startswith("'redis:inf' is not a kvmaint command. Did you mean redis:info?")
    # The last part of a command is enough to be found.
    assert "Did you mean data:maintenances:history?" in cli("histroy").err
    nothing = cli("frobnicate")
    assert nothing.err == "'frobnicate' is not a kvmaint command. See 'kvmaint -h'.\n"
    assert "apps:create" not in nothing.err  # not a dump of every command


def test_an_unknown_flag_suggests_and_points_at_the_commands_help(cli: Cli) -> None:
    flag = cli("data:maintenances:run", "REDIS_URL", "-a", "example-app", "--wiat")
    assert (flag.code, flag.out) == (2, "")
    assert flag.err == "Unknown flag --wiat. Did you mean --wait? See 'kvmaint data:maintenances:run -h'.\n"
    assert cli("data:maintenances:history", "X", "--nmu", "3").err == (
        "Unknown flag --nmu. Did you mean --num? See 'kvmaint data:maintenances:history -h'.\n")
    assert cli("apps", "--frobnicate").err == "Unknown flag --frobnicate. See 'kvmaint apps -h'.\n"
    extra = cli("data:maintenances:info", "REDIS_URL", "surplus")
    assert extra.err == "Unexpected argument: surplus. See 'kvmaint data:maintenances:info -h'.\n"
    missing = cli("data:maintenances:window:update", "REDIS_URL", "Sunday")
    assert missing.code == 2
    assert missing.err == ("The following arguments are required: TIME. "
                           "See 'kvmaint data:maintenances:window:update -h'.\n")
    bad_number = cli("data:maintenances:history", "X", "-n", "many")
    assert bad_number.err.endswith("See 'kvmaint data:maintenances:history -h'.\n")


def console_scripts() -> list[str]:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    return sorted(scripts)


@pytest.mark.parametrize("script", console_scripts())
def test_every_binary_has_version(script: str) -> None:
    binary = Path(sys.executable).parent / script
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{script} {version()}\n", "")


def test_the_version_is_the_distributions() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert version() == project["version"]
    assert set(console_scripts()) >= {"kvmaint", "kvmaint-scheduler", "kvmaint-agent", "kvmaint-local",
                                      "kvmaint-devcerts"}


def test_a_plaintext_client_is_told_the_scheduler_speaks_tls(tls_scheduler: tuple[Cli, Path]) -> None:  # noqa: F811
    cli, _ = tls_scheduler
    assert speaks_tls(cli.address)
    result = cli.run("apps")
    assert (result.code, result.out) == (1, "")
    assert result.err.startswith(f"Cannot reach the scheduler at {cli.address}: ")
    assert result.err.endswith(f". The scheduler at {cli.address} speaks TLS: pass --ca FILE (or set "
                               "KVMAINT_CA) with the CA certificate that signed its certificate.\n")
    assert result.err.count("\n") == 1


def test_no_tls_hint_for_a_plaintext_scheduler_or_a_closed_port(
        scheduler_factory: Callable[..., SchedulerProcess]) -> None:
    scheduler = scheduler_factory()
    assert not speaks_tls(scheduler.address)  # a plaintext gRPC server answers a ClientHello with no TLS
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{free.getsockname()[1]}"
    assert not speaks_tls(closed)
    result = Cli(closed)("apps")
    assert result.err == f"Cannot reach the scheduler at {closed}: connection refused.\n"

"""`--ca`: the CLI talks TLS to a scheduler serving its clients' port with a certificate from that CA."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kvmaint.devcerts import write_dev_pki
from tests.cli.conftest import Cli
from tests.conftest import OPERATOR_TOKEN
from tests.support.scheduler import SchedulerProcess


def pki(out: Path) -> Path:
    write_dev_pki(out, ["db-1"], "localhost")
    return out


@pytest.fixture
def tls_scheduler(scheduler_factory: Callable[..., SchedulerProcess], tmp_path: Path) -> tuple[Cli, Path]:
    certs = pki(tmp_path / "pki")
    scheduler = scheduler_factory(tokens=True, extra_args=[
        "--tls-cert", str(certs / "scheduler.pem"), "--tls-key", str(certs / "scheduler-key.pem"),
        "--tls-ca", str(certs / "ca.pem"), "--agent-listen", "127.0.0.1:0"])
    return Cli(scheduler.address, OPERATOR_TOKEN), certs / "ca.pem"


def test_with_the_ca_the_cli_works_over_tls(tls_scheduler: tuple[Cli, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    cli, ca = tls_scheduler
    cli.ok("--ca", str(ca), "apps:create", "example-app")
    monkeypatch.setenv("KVMAINT_CA", str(ca))
    assert [a["name"] for a in cli.ok("apps", "--json").json()] == ["example-app"]
    cli.ok("events", "--json")  # streams too


def test_without_the_right_ca_the_cli_cannot_connect(tls_scheduler: tuple[Cli, Path], tmp_path: Path) -> None:
    cli, _ = tls_scheduler
    plaintext = cli("apps")
    other_ca = pki(tmp_path / "other") / "ca.pem"
    # As a process too: gRPC's own handshake log must not add lines to the one sentence.
    untrusted = cli.run("--ca", str(other_ca), "apps")
    for result in (plaintext, untrusted):
        assert (result.code, result.out) == (1, "")
        assert result.err.startswith(f"Cannot reach the scheduler at {cli.address}: ")
        assert result.err.count("\n") == 1
    assert untrusted.err.endswith(": TLS handshake failed: unable to get local issuer certificate.\n")

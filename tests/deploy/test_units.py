"""The systemd units pass `systemd-analyze verify` with no warning and keep a low exposure score."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.scheduler import ROOT

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is missing (.ci/run installs systemd)"
)
SCRIPT = ROOT / "scripts" / "verify_units.sh"


def verify(units: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = [str(SCRIPT), *([str(units)] if units else [])]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_shipped_units_verify_clean() -> None:
    result = verify()
    assert result.returncode == 0, result.stdout + result.stderr
    for unit in ("kvmaint-scheduler.service", "kvmaint-agent.service", "kvmaint-backup.service"):
        assert f"{unit}: verify clean, exposure" in result.stdout, result.stdout
    assert "kvmaint-backup.timer: verify clean" in result.stdout


def test_units_run_the_installed_binaries_with_the_example_configs() -> None:
    """ExecStart names the console scripts pyproject.toml installs and the configs deploy/ ships."""
    for unit, binary, config in (
        ("kvmaint-scheduler.service", "kvmaint-scheduler", "scheduler.toml"),
        ("kvmaint-agent.service", "kvmaint-agent", "agent.toml"),
    ):
        text = (ROOT / "deploy" / "systemd" / unit).read_text()
        assert f"ExecStart=/opt/kvmaint/bin/{binary} --config /etc/kvmaint/{config}\n" in text
        assert (ROOT / "deploy" / config).is_file()
        for option in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "StateDirectory="):
            assert option in text, (unit, option)


def test_a_misspelt_or_bad_option_fails_the_check(tmp_path: Path) -> None:
    """systemd-analyze only warns (exit 0) on an unknown key or a bad value; the check must fail."""
    good = (ROOT / "deploy" / "systemd" / "kvmaint-scheduler.service").read_text()
    for name, broken in (
        ("typo", good.replace("ProtectSystem=strict", "ProtectSystm=strict")),
        ("family", good.replace("RestrictAddressFamilies=AF_INET", "RestrictAddressFamilies=AF_BOGUS")),
        ("binary", good.replace("/opt/kvmaint/bin/kvmaint-scheduler", "/opt/kvmaint/bin/kvmaint-nope")),
        ("exposed", good.replace("ProtectSystem=strict", "ProtectSystem=no").replace("PrivateUsers=yes\n", "")
         .replace("CapabilityBoundingSet=\n", "").replace("SystemCallFilter=@system-service\n", "")
         .replace("PrivateDevices=yes\n", "").replace("ProtectHome=yes\n", "")),
    ):
        units = tmp_path / name
        units.mkdir()
        (units / "kvmaint-scheduler.service").write_text(broken)
        result = verify(units)
        assert result.returncode == 1, (name, result.stdout)

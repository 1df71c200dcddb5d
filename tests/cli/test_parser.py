"""The command line itself, without a scheduler: flags in either place, usage mistakes, exit codes."""

from __future__ import annotations

import socket

import pytest

from kvmaint.cli import main
from kvmaint.cli.parser import build_parser


def test_global_options_go_before_or_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--json", "--scheduler", "h:1", "apps"])
    after = parser.parse_args(["apps", "--json", "--scheduler", "h:1"])
    for args in (before, after):
        assert args.json is True and args.scheduler == "h:1"


def test_addons_create_flags() -> None:
    args = build_parser().parse_args(["addons:create", "premium-0", "-a", "example-app",
                                      "--primary", "db-1:7001", "--standby", "db-2:7002", "--name", "redis-x",
                                      "--as", "REDIS_URL", "--as", "CACHE_URL"])
    assert (args.plan, args.app, args.primary, args.standby, args.addon_name, args.attachments) == (
        "premium-0", "example-app", "db-1:7001", "db-2:7002", "redis-x", ["REDIS_URL", "CACHE_URL"])


def test_require_targets_are_exclusive_and_addons_repeat() -> None:
    parser = build_parser()
    args = parser.parse_args(["maintenances:require", "--reason", "security_patch", "--addon", "a", "b",
                              "--addon", "c"])
    assert args.addons == ["a", "b", "c"] and not args.all
    assert parser.parse_args(["maintenances:require", "--reason", "emergency", "--all"]).all


def test_usage_mistake_is_one_sentence_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["maintenances:require", "--reason", "emergency", "--all", "--plan", "mini"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "not allowed with argument" in err
    assert main(["data:maintenances:schedule", "r", "--weeks", "1", "--week", "2026-01-05"]) == 2


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-h"]) == 0
    assert "data:maintenances:window:update" in capsys.readouterr().out


def test_bad_values_fail_before_dialing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--scheduler", "127.0.0.1:1", "maintenances:require", "--reason", "whim", "--all"]) == 1
    assert capsys.readouterr().err == (
        "Unknown --reason value 'whim'; allowed values are routine_maintenance, security_patch, "
        "redis_upgrade, infrastructure, emergency.\n")
    assert main(["--scheduler", "127.0.0.1:1", "addons:create", "mini", "-a", "x", "--primary", "db-1"]) == 1
    assert "expected HOST:PORT" in capsys.readouterr().err
    assert main(["--scheduler", "127.0.0.1:1", "apps:destroy", "x", "--confirm", "y"]) == 1
    assert capsys.readouterr().err == "Confirmation y did not match x. Aborted.\n"


def test_unreachable_scheduler(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("KVMAINT_SCHEDULER", address)
    assert main(["apps"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"Cannot reach the scheduler at {address}: connection refused.\n"


def test_missing_ca_file_is_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--ca", "/nonexistent/ca.pem", "apps"]) == 1
    assert capsys.readouterr().err == "Cannot read the CA file /nonexistent/ca.pem: No such file or directory.\n"

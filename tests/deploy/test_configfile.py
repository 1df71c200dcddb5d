"""`kvmaint-scheduler --config FILE` and the example files in deploy/: parsed for real, started for real."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import parse_config
from kvmaint.devcerts import write_dev_pki
from server import configfile
from server.__main__ import build_parser, parse_args
from server.auth import TokenTable
from tests.cli.conftest import Cli, until
from tests.deploy.conftest import example
from tests.support.agentproc import AgentProcess
from tests.support.scheduler import ROOT, SchedulerProcess

# Every key of the examples, as a value or commented out, is one of these.
KEY_LINE = re.compile(r"^#?\s*([a-z_]+)\s*=", re.M)


def scheduler_options() -> dict[str, argparse.Action]:
    return configfile.file_options(build_parser())


def run_scheduler(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_every_flag_is_in_the_example_and_settable_from_a_file(tmp_path: Path) -> None:
    options = scheduler_options()
    assert {"listen", "db", "tokens", "catch_up_timeout", "smtp_starttls", "log_format"} <= set(options)
    listed = set(KEY_LINE.findall(example("scheduler.toml").read_text()))
    assert set(options) <= listed, f"flags missing from deploy/scheduler.toml: {set(options) - listed}"
    # Each key, written in a file, gives what the same flag gives on the command line.
    values = {
        "listen": ("127.0.0.1:7000", "127.0.0.1:7000"), "db": ("x/state.db", Path("x/state.db")),
        "tokens": ("t.toml", "t.toml"), "port_file": ("p", Path("p")),
        "sentinel_listen": ("127.0.0.1:7001", "127.0.0.1:7001"), "agent_listen": ("127.0.0.1:7002", "127.0.0.1:7002"),
        "tls_cert": ("c.pem", Path("c.pem")), "tls_key": ("k.pem", Path("k.pem")), "tls_ca": ("a.pem", Path("a.pem")),
        "catch_up_timeout": (7.5, 7.5), "failover_timeout_ms": (900, 900), "command_timeout": (11, 11.0),
        "tick_seconds": (0.5, 0.5), "max_concurrent": (3, 3), "max_per_host": (1, 1),
        "smtp_host": ("smtp.example.com", "smtp.example.com"), "smtp_port": (2525, 2525),
        "smtp_user": ("u", "u"), "smtp_starttls": (True, True), "smtp_from": ("a@b.example", "a@b.example"),
        "operator_email": ("ops@b.example", "ops@b.example"),
        "notify_interval": (2, 2.0), "notify_retry_max": (60, 60.0), "webhook_allow_private": (True, True),
        "metrics_listen": ("127.0.0.1:7003", "127.0.0.1:7003"), "http_listen": ("127.0.0.1:7004", "127.0.0.1:7004"),
        "log_level": ("DEBUG", "DEBUG"), "log_format": ("json", "json"),
        "lease_seconds": (3, 3.0), "replica_id": ("r1", "r1"), "advertise": ("h.example:7005", "h.example:7005"),
    }
    assert set(values) == set(options), set(options) ^ set(values)
    lines = [f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v).replace(chr(39), chr(34))}"
             for k, (v, _) in values.items()]
    config = tmp_path / "all.toml"
    config.write_text("\n".join(lines) + "\n")
    parsed = vars(parse_args(["--config", str(config)]))
    assert {k: parsed[k] for k in values} == {k: want for k, (_, want) in values.items()}


def test_flags_win_over_the_file_and_dashes_work(tmp_path: Path) -> None:
    config = tmp_path / "s.toml"
    config.write_text('listen = "127.0.0.1:7000"\ntick-seconds = 2.5\nmax_per_host = 4\n')
    args = parse_args(["--max-per-host", "1", "--config", str(config), "--listen", "127.0.0.1:7100"])
    assert (args.listen, args.tick_seconds, args.max_per_host) == ("127.0.0.1:7100", 2.5, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('lisen = "127.0.0.1:1"\n', "unknown key 'lisen'; did you mean 'listen'?"),
        ('zzz = 1\n', "unknown key 'zzz'; known keys: advertise, agent_listen, catch_up_timeout,"),
        ("tick_seconds = -1\n", "tick_seconds: -1 must be above zero"),
        ('smtp_starttls = "yes"\n', "smtp_starttls must be true or false, not 'yes'"),
        ('log_format = "xml"\n', "log_format must be one of text, json, not 'xml'"),
        ("max_concurrent = [1]\n", "max_concurrent must be a string or a number"),
        ("listen = \n", "is not valid TOML"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = run_scheduler("--config", str(config))
    assert result.returncode == 2
    assert result.stderr.startswith(f"kvmaint-scheduler: {config}"), result.stderr
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_the_agent_refuses_an_unknown_key(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('host_id = "db-1"\nheartbeat_second = 2\n')
    with pytest.raises(Exception, match="unknown key 'heartbeat_second'; did you mean 'heartbeat_seconds'"):
        parse_config(["--config", str(config)])
    result = subprocess.run([sys.executable, "-m", "agent", "--config", str(config)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown key 'heartbeat_second'" in result.stderr


def test_example_files_parse() -> None:
    args = parse_args(["--config", str(example("scheduler.toml"))])
    assert args.db == Path("/var/lib/kvmaint/state.db") and args.tokens == "/etc/kvmaint/tokens.toml"
    assert args.agent_listen and args.tls_cert and args.tls_key and args.tls_ca
    agent = parse_config(["--config", str(example("agent.toml"))])
    assert agent.host_id == "db-1" and agent.tls is not None and agent.builds[0][0] == "redis-7.0"
    tokens = TokenTable.load(example("tokens.toml"))
    roles = {p.role for p in tokens._tokens.values()}
    assert roles == {"operator", "app", "agent"}


def test_the_examples_start_a_fleet_with_mtls_and_their_tokens(
    scheduler_factory, tmp_path: Path
) -> None:
    """The example scheduler.toml, agent.toml and tokens.toml, with only this machine's paths and ports
    given as flags (which win over the files): the agent connects over mTLS, the example tokens work."""
    pki = tmp_path / "pki"
    write_dev_pki(pki, ["db-1"], "localhost")
    scheduler: SchedulerProcess = scheduler_factory(extra_args=[
        "--config", str(example("scheduler.toml")),
        "--agent-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
        "--tokens", str(example("tokens.toml")),
        "--tls-cert", str(pki / "scheduler.pem"), "--tls-key", str(pki / "scheduler-key.pem"),
        "--tls-ca", str(pki / "ca.pem"),
    ])
    agent = AgentProcess("db-1", f"127.0.0.1:{scheduler.agent_port}", tmp_path, [
        "--config", str(example("agent.toml")),
        "--tls-ca", str(pki / "ca.pem"), "--tls-cert", str(pki / "db-1.pem"), "--tls-key", str(pki / "db-1-key.pem"),
    ]).start()
    try:
        operator = Cli(scheduler.address, "REPLACE-operator-token-0123456789")
        ca = ["--ca", str(pki / "ca.pem")]

        def connected() -> bool:
            result = operator("agents", "--json", *ca)
            return result.code == 0 and any(a["host_id"] == "db-1" and a["connected"] for a in result.json())

        until(connected, timeout=30, what="db-1 connected through the example configs")
        # The scheduler took the example's JSON logs and its tokens: an app token may not list agents.
        assert '"message": "scheduler serving on' in scheduler.log_text()
        app = Cli(scheduler.address, "REPLACE-example-app-token-0123456789")("agents", *ca)
        assert app.code != 0 and "operator" in app.err
    finally:
        agent.stop()
        agent.stop_servers()


def test_the_file_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KVMAINT_LISTEN", "127.0.0.1:7200")
    monkeypatch.setenv("KVMAINT_LOG_FORMAT", "json")
    config = tmp_path / "s.toml"
    config.write_text('listen = "127.0.0.1:7000"\n')
    args = parse_args(["--config", str(config)])
    assert (args.listen, args.log_format) == ("127.0.0.1:7000", "json")  # the file, then the environment

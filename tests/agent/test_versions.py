"""The agent refuses, with one sentence, a Redis it could not fail over (CLIENT PAUSE WRITE needs Redis
6.2+ or Valkey), whether it would start servers with that binary or adopts a running one. The old
server is a real Redis 5.0.7 (tests/support/oldredis.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from agent.redisnode.version import ServerVersion, parse_info, parse_version_output, require_supported
from kvmaint.errors import ErrorReason, FailedPrecondition
from tests.support.eventually import eventually
from tests.support.oldredis import old_redis_server
from tests.support.redisproc import REDIS_SERVER, RedisFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "expected", "supported"),
    [
        ("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64", ServerVersion("Redis", (7, 0, 15)), True),
        ("Redis server v=6.2.0 sha=0", ServerVersion("Redis", (6, 2, 0)), True),
        ("Redis server v=6.0.16 sha=0", ServerVersion("Redis", (6, 0, 16)), False),
        ("Valkey server v=8.1.8 sha=0", ServerVersion("Valkey", (8, 1, 8)), True),
        ("KeyDB server v=6.3.4 sha=0", ServerVersion("KeyDB", (6, 3, 4)), False),
        ("something else", None, False),
    ],
)
def test_version_output_table(text, expected, supported) -> None:
    version = parse_version_output(text)
    assert version == expected
    assert (version is not None and version.supported) is supported


def test_info_and_the_sentence() -> None:
    assert parse_info({"redis_version": "7.2.4", "valkey_version": "8.1.8"}) == ServerVersion("Valkey", (8, 1, 8))
    assert parse_info({"redis_version": "6.2"}) == ServerVersion("Redis", (6, 2, 0))
    with pytest.raises(FailedPrecondition) as caught:
        require_supported(parse_info({"redis_version": "5.0.7"}), "The server on port 7001")
    assert caught.value.reason == ErrorReason.SERVER_VERSION_UNSUPPORTED
    assert str(caught.value).startswith(
        "The server on port 7001 is Redis 5.0.7; kvmaint needs Redis 6.2 or later, or Valkey 7.2 or later"
    )


def run_agent(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "agent", "--host-id", "db-1", "--scheduler", "127.0.0.1:1",
            "--data-dir", str(tmp_path / "agent"), *args,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_agent_refuses_an_old_redis_server_binary(tmp_path) -> None:
    old = old_redis_server()
    proc = run_agent(tmp_path, "--redis-server", str(old))
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2, out
    assert f"The redis-server binary {old} is Redis 5.0.7; kvmaint needs Redis 6.2 or later" in out


def test_agent_refuses_to_adopt_an_old_server(tmp_path) -> None:
    with RedisFactory(tmp_path / "redis", redis_server=str(old_redis_server())) as factory:
        server = factory.start(appendonly=False)
        with redis.Redis(port=server.port, protocol=2) as client, pytest.raises(redis.ResponseError):
            client.execute_command("CLIENT", "PAUSE", "10", "WRITE")  # what a failover needs: absent in 5.0
        proc = run_agent(tmp_path, "--adopt", str(server.port))
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2, out
    assert f"The server on port {server.port} (adopted) is Redis 5.0.7; kvmaint needs Redis 6.2" in out


async def test_agent_runs_with_a_supported_server_and_says_which(tmp_path) -> None:
    with RedisFactory(tmp_path / "redis") as factory:
        server = factory.start(appendonly=False)
        proc = run_agent(tmp_path, "--adopt", str(server.port), "--redis-server", REDIS_SERVER)
        lines: list[str] = []
        try:
            assert proc.stdout is not None

            def said_it() -> bool:
                line = proc.stdout.readline()  # type: ignore[union-attr]
                lines.append(line)
                return f"starts servers with {REDIS_SERVER} (Redis " in line

            await eventually(said_it, timeout=20, message="the agent names its redis-server version")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=20)
    assert proc.returncode == 0, "".join(lines)

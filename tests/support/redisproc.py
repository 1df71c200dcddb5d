"""Real redis-server processes for tests: each on a free ephemeral port in its own directory.

Use it as a factory that collects its own teardown:

    @pytest.fixture
    def redis_factory(tmp_path):
        with RedisFactory(tmp_path / "redis") as factory:
            yield factory

    async def test_x(redis_factory):
        primary = await redis_factory.astart()
        replica = await redis_factory.astart(replicaof=primary)

Never uses port 6379. Every process started is killed at teardown, even if a test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import redis
import redis.asyncio

REDIS_SERVER = (
    os.environ.get("KVMAINT_TEST_REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"
)
FORBIDDEN_PORTS = frozenset({6379})


def free_port(host: str = "127.0.0.1") -> int:
    """An ephemeral port nobody listens on right now (never 6379)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in FORBIDDEN_PORTS:
            return port


def ping(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """True when a Redis answers +PONG on the port (raw RESP, no client library or event loop)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def wait_until_ready(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"redis-server on port {port} exited with code {proc.returncode} while starting"
            )
        if ping(port):
            return
        time.sleep(0.01)
    raise TimeoutError(f"redis-server on port {port} did not answer PING within {timeout}s")


@dataclass
class RedisProcess:
    """One redis-server the factory started."""

    port: int
    dir: Path
    proc: subprocess.Popen[bytes]
    host: str = "127.0.0.1"
    _clients: list[redis.asyncio.Redis] = field(default_factory=list, repr=False)

    @property
    def logfile(self) -> Path:
        return self.dir / "redis.log"

    def client(self, **kwargs: object) -> redis.asyncio.Redis:
        """An asyncio client (decode_responses=True); closed by the factory at teardown."""
        options: dict[str, object] = {"decode_responses": True, "socket_timeout": 5.0}
        options.update(kwargs)
        client = redis.asyncio.Redis(host=self.host, port=self.port, **options)  # type: ignore[arg-type]
        self._clients.append(client)
        return client

    def sync_client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, decode_responses=True, socket_timeout=5.0)

    def alive(self) -> bool:
        return self.proc.poll() is None

    async def synced(self) -> bool:
        """A replica whose link is up and whose post-sync AOF rewrite has ended: what the agent's
        catch-up check demands before it calls a standby ready (poll it with `eventually`)."""
        from agent.redisnode.catchup import aof_settled

        client = self.client()
        replication = await client.info("replication")
        if replication.get("role") != "slave" or replication.get("master_link_status") != "up":
            return False
        return aof_settled(await client.info("persistence"))

    def kill(self) -> None:
        """SIGKILL: the crash case, no AOF flush beyond what the OS already has."""
        if self.alive():
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def terminate(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets but answers nothing (a hung host)."""
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    async def aclose_clients(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                await client.aclose()
        self._clients.clear()


class RedisFactory:
    """Starts redis-server processes under `base_dir`; `close()` (or leaving the `with`) kills them all."""

    def __init__(self, base_dir: Path, redis_server: str = REDIS_SERVER) -> None:
        self.base_dir = Path(base_dir)
        self.redis_server = redis_server
        self.started: list[RedisProcess] = []

    def start(
        self,
        *extra_args: str,
        replicaof: RedisProcess | tuple[str, int] | None = None,
        appendonly: bool = True,
        port: int | None = None,
    ) -> RedisProcess:
        """Starts one server and returns once it answers PING (blocking: fine in fixtures)."""
        for _ in range(5):
            chosen = port or free_port()
            server_dir = self.base_dir / str(chosen)
            server_dir.mkdir(parents=True, exist_ok=True)
            options = {
                "port": str(chosen),
                "bind": "127.0.0.1",
                "dir": str(server_dir),
                "appendonly": "yes" if appendonly else "no",
                "appendfsync": "everysec",
                "save": "",
                "daemonize": "no",
                "logfile": str(server_dir / "redis.log"),
                "pidfile": str(server_dir / "redis.pid"),
                # Start a replica's full sync at once rather than waiting 5 s for more replicas to come.
                "repl-diskless-sync-delay": "0",
            }
            args = [self.redis_server]
            for name, value in options.items():
                args += [f"--{name}", value]
            if replicaof is not None:
                host, rport = (
                    (replicaof.host, replicaof.port) if isinstance(replicaof, RedisProcess) else replicaof
                )
                args += ["--replicaof", host, str(rport)]
            args += list(extra_args)
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_until_ready(chosen, proc)
            except RuntimeError:
                # Lost the race for the port to someone else: try another one.
                if port is not None:
                    raise
                continue
            server = RedisProcess(port=chosen, dir=server_dir, proc=proc)
            self.started.append(server)
            return server
        raise RuntimeError("could not start redis-server on a free port after 5 attempts")

    async def astart(
        self,
        *extra_args: str,
        replicaof: RedisProcess | tuple[str, int] | None = None,
        appendonly: bool = True,
        port: int | None = None,
    ) -> RedisProcess:
        """`start` without blocking the event loop while the server boots."""
        import asyncio

        return await asyncio.to_thread(
            self.start, *extra_args, replicaof=replicaof, appendonly=appendonly, port=port
        )

    def close(self) -> None:
        for server in self.started:
            if server.alive():
                server.thaw()
            server.kill()
        self.started.clear()

    async def aclose(self) -> None:
        for server in self.started:
            await server.aclose_clients()
        self.close()

    def __enter__(self) -> RedisFactory:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[RedisProcess]:
        return iter(self.started)


def kill_pidfiles(root: Path) -> list[int]:
    """Kills every redis-server whose pidfile lies under `root` (servers an agent started detached)."""
    killed: list[int] = []
    for pidfile in Path(root).rglob("*.pid"):
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed

"""redis-server processes the agent owns: each at DATA_DIR/servers/PORT/ with its own redis.conf.

Servers are started in their own session, so they outlive the agent: restarting or upgrading the
agent never takes the data plane down. The config file is the server's memory across restarts; the
agent runs CONFIG REWRITE after every role change so a restarted server comes back in its current role.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio
import redis.exceptions

from agent.builds import Build
from agent.redisnode.acl import RedisTls, ServerAuth, conf_lines, save_agent_credentials
from agent.redisnode.rcmd import rcmd
from agent.redisnode.role import DesiredRole, conf_with_role
from agent.redisnode.status import describe_error
from kvmaint.clock import Clock
from kvmaint.errors import FailedPrecondition, Unavailable

log = logging.getLogger(__name__)

CONF_NAME = "redis.conf"
FORBIDDEN_PORTS = frozenset({6379})
READY_TIMEOUT_SECONDS = 30.0
# SHUTDOWN on a primary may wait up to shutdown-timeout (10 s) for lagging replicas.
EXIT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class ServerLayout:
    """Where one managed server keeps its files."""

    port: int
    dir: Path

    @classmethod
    def under(cls, servers_dir: Path, port: int) -> ServerLayout:
        return cls(port=port, dir=(servers_dir / str(port)).resolve())

    @property
    def conf(self) -> Path:
        return self.dir / CONF_NAME

    @property
    def pidfile(self) -> Path:
        return self.dir / "redis.pid"

    @property
    def logfile(self) -> Path:
        return self.dir / "redis.log"

    @property
    def stderr_file(self) -> Path:
        """What the server printed before its log file opened (a fatal config error), from its last start."""
        return self.dir / "redis.stderr"

    @property
    def build_file(self) -> Path:
        """The name of the build the server runs on: it survives agent restarts with the config."""
        return self.dir / "build"

    @property
    def auth_file(self) -> Path:
        """The agent's user on this server (0600); absent for a server without authentication."""
        return self.dir / "agent-auth.json"

    def recorded_build(self) -> str:
        try:
            return self.build_file.read_text().strip()
        except OSError:
            return ""


def render_conf(
    layout: ServerLayout,
    replicaof: tuple[str, int] | None = None,
    bind: tuple[str, ...] = ("127.0.0.1",),
    auth: ServerAuth | None = None,
    tls: RedisTls | None = None,
) -> str:
    """The initial config of a managed server: loopback plus the host's advertised address (so standbys on
    other hosts can replicate), AOF fsynced every second, foreground; its users and TLS from acl.py."""
    lines = [
        "# Written by kvmaint-agent; CONFIG REWRITE keeps it in step with the server's role.",
        f"bind {' '.join(dict.fromkeys(bind))}",
        *conf_lines(auth, layout.port, tls),
        f'dir "{layout.dir}"',
        "appendonly yes",
        "appendfsync everysec",
        "daemonize no",
        # A new standby syncs at once; the default waits 5 s in case more replicas come to share the RDB.
        "repl-diskless-sync-delay 0",
        f'pidfile "{layout.pidfile}"',
        f'logfile "{layout.logfile}"',
    ]
    if replicaof is not None:
        lines.append(f"replicaof {replicaof[0]} {replicaof[1]}")
    return "\n".join(lines) + "\n"


def pick_free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (never 6379). Racy by nature; `start` retries on a lost race."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in FORBIDDEN_PORTS:
            return port


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def startup_error(layout: ServerLayout) -> str:
    """Why a server exited while starting: its stderr's last lines (a fatal config error is printed there,
    before the log file opens), else its log's last line."""
    try:
        text = layout.stderr_file.read_text(errors="replace")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    except OSError:
        lines = []
    return " ".join(lines[-2:]) if lines else last_log_line(layout)


def last_log_line(layout: ServerLayout) -> str:
    try:
        lines = layout.logfile.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


class ServerProcess:
    """Starts and stops one managed redis-server; knows its pid whether or not this agent spawned it."""

    def __init__(
        self,
        layout: ServerLayout,
        build: Build,
        clock: Clock,
        bind: tuple[str, ...] = ("127.0.0.1",),
        tls: RedisTls | None = None,
    ) -> None:
        self.bind = bind
        self.tls = tls
        self.layout = layout
        self.build = build
        self.clock = clock
        self._child: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self.layout.port

    def detach(self) -> None:
        """Lets a running child outlive this handle: a daemon thread reaps it whenever it exits."""
        child, self._child = self._child, None
        if child is not None and child.poll() is None:
            threading.Thread(target=child.wait, name=f"reap-redis-{self.port}", daemon=True).start()

    def write_conf(self, replicaof: tuple[str, int] | None, auth: ServerAuth | None = None) -> None:
        self.layout.dir.mkdir(parents=True, exist_ok=True)
        if auth is not None:
            save_agent_credentials(self.layout.auth_file, auth.agent)
        _write_durably(self.layout.conf, render_conf(self.layout, replicaof, self.bind, auth, self.tls))
        self.use_build(self.build)

    def use_build(self, build: Build) -> None:
        """The build the next start runs; recorded next to the config."""
        self.build = build
        _write_durably(self.layout.build_file, build.name + "\n")

    def write_role(self, role: DesiredRole) -> None:
        """Rewrites the config's replicaof line to the desired role before a start (see role.py)."""
        if not self.layout.conf.exists():
            raise FailedPrecondition(f"No config for port {self.port} at {self.layout.conf}.")
        _write_durably(self.layout.conf, conf_with_role(self.layout.conf.read_text(), role))

    def pid(self) -> int | None:
        """The server's pid if it is running (our child, or found through its pidfile)."""
        if self._child is not None:
            if self._child.poll() is None:
                return self._child.pid
            self._child = None
        try:
            pid = int(self.layout.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    async def start(self, client: redis.asyncio.Redis) -> None:
        """Spawns redis-server on its config and returns once it answers PING with its data loaded."""
        if self.pid() is not None and await _answers(client):
            return
        if not self.layout.conf.exists():
            raise FailedPrecondition(f"No config for port {self.port} at {self.layout.conf}.")
        log.info("starting port %d on build %s (%s)", self.port, self.build.describe(), self.layout.conf)
        with open(self.layout.stderr_file, "wb") as err:  # noqa: ASYNC230 - a local file, opened at once
            self._child = subprocess.Popen(  # noqa: ASYNC220 - fork+exec returns at once; no waiting here
                [self.build.path, str(self.layout.conf)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                cwd=self.layout.dir,
                start_new_session=True,
                # CONFIG REWRITE writes the config anew; it holds masterauth, so it (and the data) stays 0600.
                umask=0o077,
            )
        await self._wait_ready(client)

    async def _wait_ready(self, client: redis.asyncio.Redis) -> None:
        deadline = self.clock.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            if self._child is not None and self._child.poll() is not None:
                code = self._child.returncode
                self._child = None
                raise Unavailable(
                    f"redis-server on port {self.port} exited with code {code} while starting: "
                    f"{startup_error(self.layout) or 'no log line'}."
                )
            if await _answers(client):
                return
            if self.clock.monotonic() >= deadline:
                raise Unavailable(
                    f"redis-server on port {self.port} did not answer within {READY_TIMEOUT_SECONDS:.0f}s."
                )
            await self.clock.sleep(0.02)

    async def shutdown(self, client: redis.asyncio.Redis) -> None:
        """SHUTDOWN (AOF flushed, replicas given time to catch up), then waits for the process to exit.

        Redis refuses SHUTDOWN while it writes its initial AOF (right after a replica's full sync); that
        refusal is retried until the rewrite is over, within the exit timeout.
        """
        pid = self.pid()
        deadline = self.clock.monotonic() + EXIT_TIMEOUT_SECONDS
        while True:
            try:
                await rcmd(client, "SHUTDOWN")
            except redis.exceptions.ConnectionError:
                break  # the expected answer: the server closed the connection as it exited
            except redis.exceptions.ResponseError as exc:
                if self.clock.monotonic() >= deadline:
                    raise FailedPrecondition(
                        f"redis-server on port {self.port} kept refusing SHUTDOWN: {exc} "
                        f"({last_log_line(self.layout)})."
                    ) from exc
                log.info("port %d refused SHUTDOWN (%s); retrying", self.port, last_log_line(self.layout))
                await self.clock.sleep(0.05)
                continue
            except (redis.exceptions.RedisError, OSError) as exc:
                if pid is None:
                    return
                log.warning(
                    "SHUTDOWN on port %d failed (%s); sending SIGTERM", self.port, describe_error(exc)
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            break
        await client.connection_pool.disconnect()
        await self._wait_exit(pid)

    async def _wait_exit(self, pid: int | None) -> None:
        deadline = self.clock.monotonic() + EXIT_TIMEOUT_SECONDS
        while True:
            child_done = self._child is None or self._child.poll() is not None
            if child_done and (pid is None or not pid_alive(pid)):
                self._child = None
                return
            if self.clock.monotonic() >= deadline:
                raise Unavailable(
                    f"redis-server on port {self.port} did not exit within {EXIT_TIMEOUT_SECONDS:.0f}s."
                )
            await self.clock.sleep(0.02)


def _write_durably(path: Path, text: str) -> None:
    """Atomic and fsynced; readable by the agent's user only (a config holds masterauth)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


async def _answers(client: redis.asyncio.Redis) -> bool:
    """PING answered: the server is up and done loading (a loading server answers LOADING)."""
    try:
        return bool(await client.ping())
    except (redis.exceptions.RedisError, OSError, TimeoutError):
        return False

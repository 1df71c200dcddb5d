"""Every process the benchmark starts, and one place that ends them all (also on Ctrl-C and errors).

A benchmark that leaves redis-servers, sentinels or agents behind poisons the next run's figures (and
other people's ports), so each start registers its own stop with a `Reaper` before it returns.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.agentproc import AgentProcess
from tests.support.redisproc import RedisFactory, RedisProcess, free_port, kill_pidfiles, ping
from tests.support.scheduler import SchedulerProcess

REDIS_SENTINEL = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"


def endpoint(host: str, port: int | str) -> str:
    """One spelling of a server's address, so addresses from URLs, ROLE and sockets compare equal."""
    if host in ("localhost", "::1"):
        host = "127.0.0.1"
    return f"{host}:{int(port)}"


# address -> (user, password) of servers that require authentication (kvmaint's managed servers).
CREDENTIALS: dict[str, tuple[str, str]] = {}


def remember_credentials(redis_url: str, *addresses: str) -> None:
    """The add-on's user and password (from its REDIS_URL) for the bench's own reads of its servers."""
    parts = urlsplit(redis_url)
    if parts.password is not None:
        for address in addresses:
            CREDENTIALS[endpoint(*split(address))] = (parts.username or "default", parts.password)


def credentials_for(address: str) -> tuple[str | None, str | None]:
    return CREDENTIALS.get(endpoint(*split(address)), (None, None))


def split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


class Reaper:
    """Stops registered things in reverse order; each stop runs once, errors in one don't skip others."""

    def __init__(self) -> None:
        self._stops: list[tuple[str, Callable[[], object]]] = []

    def add(self, what: str, stop: Callable[[], object]) -> None:
        self._stops.append((what, stop))

    def close(self) -> list[str]:
        """Runs every stop; returns descriptions of the ones that failed."""
        problems: list[str] = []
        while self._stops:
            what, stop = self._stops.pop()
            try:
                stop()
            except Exception as exc:
                problems.append(f"{what}: {exc!r}")
        return problems


def kill_popen(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; never leaves a zombie."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)


def start_redis_pair(reaper: Reaper, base: Path) -> tuple[RedisProcess, RedisProcess]:
    """A primary and its replica (REPLICAOF), configured like the servers kvmaint's agents start."""
    factory = RedisFactory(base)
    reaper.add(f"redis-servers under {base}", factory.close)
    primary = factory.start()
    replica = factory.start(replicaof=primary)
    return primary, replica


def sentinel_conf(port: int, workdir: Path, master_port: int) -> str:
    return "\n".join(
        [
            f"port {port}",
            "bind 127.0.0.1",
            "daemonize no",
            f'dir "{workdir}"',
            f'logfile "{workdir / "sentinel.log"}"',
            f'pidfile "{workdir / "sentinel.pid"}"',
            f"sentinel monitor mymaster 127.0.0.1 {master_port} 2",
            "sentinel down-after-milliseconds mymaster 1000",
            "sentinel failover-timeout mymaster 10000",
            "",
        ]
    )


def start_sentinels(reaper: Reaper, base: Path, master_port: int, count: int = 3) -> list[int]:
    """`count` redis-sentinel processes on free ports, each with its own (rewritable) config file."""
    if not Path(REDIS_SENTINEL).exists():
        raise RuntimeError("redis-sentinel not found: apt-get install -y redis-sentinel")
    ports: list[int] = []
    for n in range(count):
        for _ in range(5):
            port = free_port()
            workdir = base / f"sentinel-{n}-{port}"
            workdir.mkdir(parents=True, exist_ok=True)
            conf = workdir / "sentinel.conf"
            conf.write_text(sentinel_conf(port, workdir, master_port))
            proc = subprocess.Popen(
                [REDIS_SENTINEL, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            reaper.add(f"redis-sentinel on {port}", functools.partial(kill_popen, proc))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None and not ping(port):
                time.sleep(0.01)
            if proc.poll() is None and ping(port):
                ports.append(port)
                break
            kill_popen(proc)  # lost the race for the port: take another
        else:
            raise RuntimeError(f"could not start redis-sentinel #{n}; see {base}")
    return ports


def start_kvmaint(
    reaper: Reaper, base: Path, tick_seconds: float = 0.5, extra_args: list[str] | None = None
) -> tuple[SchedulerProcess, list[AgentProcess]]:
    """The scheduler and two agents (db-1, db-2) as separate processes, as in production."""
    base.mkdir(parents=True, exist_ok=True)
    scheduler = SchedulerProcess(
        db=base / "state.db",
        workdir=base,
        extra_args=["--tick-seconds", str(tick_seconds), *(extra_args or [])],
    )
    reaper.add("kvmaint scheduler", scheduler.stop)
    scheduler.start()
    agents: list[AgentProcess] = []
    for host in ("db-1", "db-2"):
        agent = AgentProcess(host, scheduler.address, base)
        # Agents leave their redis-servers running on purpose: kill those after the agent stopped.
        reaper.add(f"redis-servers of agent {host}", functools.partial(_stop_servers, agent))
        reaper.add(f"kvmaint agent {host}", agent.stop)
        agents.append(agent.start())
    return scheduler, agents


def _stop_servers(agent: AgentProcess) -> None:
    agent.stop_servers()
    kill_pidfiles(agent.data_dir)

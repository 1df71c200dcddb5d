"""Watches the ROLE of two servers about every millisecond, from a process of its own.

Its own process, so that polling a thousand times a second neither slows the writer's event loop (which
would inflate the pauses being measured) nor is slowed by it (which would hide short overlaps).

Two masters are only counted when the observation is certain despite the reads not being simultaneous:
the reads alternate between the servers, and a read of X answering `master` counts as an overlap only
when the reads of Y just before and just after it both answered `master` too. A demote-then-promote
switchover can never produce that pattern; promote-then-demote (Sentinel) does whenever the overlap
lasts longer than about two polls.

Run as `python -m bench.rolewatch --out FILE HOST:PORT HOST:PORT`; prints `ready` once both servers
were read, stops on SIGTERM and then writes a JSON summary to FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from bench.procs import Reaper, credentials_for

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RoleSummary:
    servers: list[str]
    reads: int = 0
    # Largest time between two reads of the same server: overlaps shorter than this may go unseen.
    max_read_gap_ms: float = 0.0
    # Reads proven to have happened while both servers answered `master` (see the module docstring).
    overlap_reads: int = 0
    first_overlap: float | None = None
    last_overlap: float | None = None
    # (monotonic time, server, role) each time a server's answer changed; roles: master, slave, down.
    transitions: list[tuple[float, str, str]] = field(default_factory=list)

    @property
    def max_masters(self) -> int:
        if self.overlap_reads:
            return 2
        return 1 if any(role == "master" for _, _, role in self.transitions) else 0

    def became_master(self, server: str, after: float) -> float | None:
        """When `server` was first seen as master at or after `after` (monotonic), if it was."""
        for t, s, role in self.transitions:
            if s == server and role == "master" and t >= after:
                return t
        for t, s, role in reversed(self.transitions):
            if s == server and t < after:
                return after if role == "master" else None
        return None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoleSummary:
        return cls(
            servers=[str(s) for s in data["servers"]],
            reads=int(data["reads"]),
            max_read_gap_ms=float(data["max_read_gap_ms"]),
            overlap_reads=int(data["overlap_reads"]),
            first_overlap=data["first_overlap"],
            last_overlap=data["last_overlap"],
            transitions=[(float(t), str(s), str(r)) for t, s, r in data["transitions"]],
        )


class RoleProbe:
    """ROLE over a raw socket: a tenth of the CPU of a client library, which matters at 2,000 reads/s
    on a small machine that also runs the writer and the servers being measured."""

    def __init__(self, address: str, auth: str = "") -> None:
        """`auth`: "USER PASSWORD" for a server that requires it (kvmaint's), sent once per connection."""
        host, _, port = address.rpartition(":")
        self.addr = (host, int(port))
        self.auth = auth
        self.sock: socket.socket | None = None
        self.buf = b""

    def role(self) -> str:
        """master, slave, down (no answer), or error (LOADING and the like: not writable)."""
        try:
            if self.sock is None:
                self.sock = socket.create_connection(self.addr, timeout=0.05)
                self.sock.settimeout(0.1)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.buf = b""
                if self.auth:
                    self.sock.sendall(f"AUTH {self.auth}\r\n".encode())
                    if self._line() != b"+OK":
                        raise ValueError("AUTH refused")
            self.sock.sendall(b"ROLE\r\n")
            reply = self._read()
        except (OSError, ValueError):
            self.close()
            return "down"
        if isinstance(reply, list) and reply and isinstance(reply[0], bytes):
            return reply[0].decode()
        return "error"

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _fill(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def _read(self) -> object:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"*":
            return [self._read() for _ in range(int(rest))]
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            while len(self.buf) < size + 2:
                self._fill()
            data, self.buf = self.buf[:size], self.buf[size + 2 :]
            return data
        if kind == b"-":
            return ValueError(rest.decode(errors="replace"))
        return rest  # + and :

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None


def watch(servers: list[str], interval: float, stop: list[bool]) -> RoleSummary:
    auth = os.environ.get(AUTH_ENV, "")
    clients = [RoleProbe(server, auth) for server in servers]
    summary = RoleSummary(servers=list(servers))
    last_role: dict[str, str] = {}
    last_read: dict[str, float] = {}
    recent: deque[tuple[int, str, float]] = deque(maxlen=3)
    announced = False
    parent = os.getppid()
    next_round = time.monotonic()
    while not stop[0]:
        if summary.reads % 2000 == 0 and os.getppid() != parent:
            break  # the benchmark died without stopping us: don't poll for ever
        for n, client in enumerate(clients):
            role = client.role()
            now = time.monotonic()
            server = servers[n]
            summary.reads += 1
            if server in last_read:
                summary.max_read_gap_ms = max(summary.max_read_gap_ms, (now - last_read[server]) * 1000)
            last_read[server] = now
            if last_role.get(server) != role:
                summary.transitions.append((now, server, role))
                last_role[server] = role
            recent.append((n, role, now))
            if len(recent) == 3 and all(r == "master" for _, r, _ in recent):
                (a, _, _), (b, _, t_mid), (c, _, _) = recent
                if a == c != b:
                    summary.overlap_reads += 1
                    summary.first_overlap = summary.first_overlap or t_mid
                    summary.last_overlap = t_mid
        if not announced:
            print("ready", flush=True)
            announced = True
        next_round += interval
        delay = next_round - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_round = time.monotonic()
    for client in clients:
        client.close()
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--interval", type=float, default=0.001)
    p.add_argument("servers", nargs=2)
    args = p.parse_args(argv)
    stop = [False]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    summary = watch(args.servers, args.interval, stop)
    with open(args.out, "w") as out:
        json.dump(asdict(summary), out)
    return 0


AUTH_ENV = "KVMAINT_BENCH_REDIS_AUTH"  # in the environment, not on a command line `ps` shows


def _auth(servers: list[str]) -> str:
    user, password = credentials_for(servers[0])
    return f"{user} {password}" if password else ""


class RoleWatcher:
    """The parent's handle on a watcher process: start before the trigger, stop after the switchover."""

    def __init__(self, servers: list[str], out: Path, reaper: Reaper) -> None:
        self.servers = servers
        self.out = out
        self.reaper = reaper
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 10.0) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.rolewatch",
            "--out",
            str(self.out),
            *self.servers,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, AUTH_ENV: _auth(self.servers)},
        )
        proc = self.proc
        self.reaper.add(f"role watcher {proc.pid}", lambda: _kill_if_running(proc, proc.pid))
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        if line.strip() != b"ready":
            raise RuntimeError(f"role watcher did not start (said {line!r})")

    async def stop(self, timeout: float = 10.0) -> RoleSummary:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.proc.wait(), timeout)
        return RoleSummary.from_json(json.loads(self.out.read_text()))


def _kill_if_running(proc: asyncio.subprocess.Process, pid: int) -> None:
    """By pid: this runs after the event loop that owned `proc` may have closed."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())

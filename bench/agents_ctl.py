"""Plumbing shared by the agent-hub benchmark's processes: a JSON-lines control channel, /proc readings,
percentiles and the descriptor limit.

Every child (simulated-agent worker, in-process hub host) reads one JSON request per line on stdin and
answers one JSON line on stdout. A child whose stdin reaches EOF exits, so a benchmark that dies leaves
no child behind (and each child also asks the kernel for SIGKILL when its parent goes away).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import math
import os
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

Json = dict[str, Any]
Handler = Callable[[Json], Awaitable[Json]]

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
# One line of JSON may carry tens of thousands of latencies.
LINE_LIMIT = 1 << 26


# --- process limits -------------------------------------------------------------------------------


def raise_nofile(want: int = 0) -> tuple[int, int]:
    """Raises RLIMIT_NOFILE's soft limit to the hard one (and, with `want` above the hard limit, tries
    the hard one too, which needs CAP_SYS_RESOURCE). Children inherit it. Returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if want > hard != resource.RLIM_INFINITY:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            soft, hard = want, want
    if soft < hard or hard == resource.RLIM_INFINITY:
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def die_with_parent() -> None:
    """Asks the kernel for SIGKILL when the parent exits (Linux; a no-op elsewhere)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# --- /proc ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcSample:
    at: float  # time.monotonic()
    cpu: float  # user + system seconds
    rss: int  # bytes
    hwm: int  # peak RSS, bytes
    fds: int
    threads: int


def proc_sample(pid: int) -> ProcSample:
    base = Path(f"/proc/{pid}")
    stat = (base / "stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)
    status = {}
    for line in (base / "status").read_text().splitlines():
        key, _, value = line.partition(":")
        status[key] = value.strip()
    try:
        fds = len(os.listdir(base / "fd"))
    except OSError:
        fds = -1
    return ProcSample(
        at=time.monotonic(),
        cpu=cpu,
        rss=_kib(status.get("VmRSS", "0 kB")),
        hwm=_kib(status.get("VmHWM", "0 kB")),
        fds=fds,
        threads=int(status.get("Threads", "0")),
    )


def _kib(text: str) -> int:
    return int(text.split()[0]) * 1024


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])  # guest time is already in user
    return (total - idle) / CLK_TCK, total / CLK_TCK


def machine_busy_percent(a: tuple[float, float], b: tuple[float, float]) -> float:
    """How busy all cores were between two machine_cpu() readings, in percent of one core."""
    cores = os.cpu_count() or 1
    total = b[1] - a[1]
    return 100.0 * cores * (b[0] - a[0]) / total if total > 0 else 0.0


def cpu_percent(a: ProcSample, b: ProcSample) -> float:
    """CPU used between two samples, in percent of one core."""
    wall = b.at - a.at
    return 100.0 * (b.cpu - a.cpu) / wall if wall > 0 else 0.0


NET_COUNTERS = (
    ("TcpExt", "ListenOverflows"),
    ("TcpExt", "ListenDrops"),
    ("TcpExt", "TCPReqQFullDrop"),
    ("TcpExt", "TCPReqQFullDoCookies"),
    ("TcpExt", "SyncookiesSent"),
    ("TcpExt", "TCPBacklogDrop"),
    ("TcpExt", "TCPSynRetrans"),
    ("TcpExt", "TCPTimeouts"),
    ("TcpExt", "TCPLossProbes"),
    ("Tcp", "AttemptFails"),
    ("Tcp", "EstabResets"),
    ("Tcp", "RetransSegs"),
)


def net_counters() -> dict[str, int]:
    """The kernel's TCP counters that show a listener overflowing (namespace-wide)."""
    table: dict[str, dict[str, int]] = {}
    for name in ("/proc/net/netstat", "/proc/net/snmp"):
        with contextlib.suppress(OSError):
            lines = Path(name).read_text().splitlines()
            for head, values in zip(lines[::2], lines[1::2], strict=False):
                prefix, _, keys = head.partition(":")
                nums = values.partition(":")[2].split()
                table.setdefault(prefix, {}).update(
                    {k: int(v) for k, v in zip(keys.split(), nums, strict=False) if v.lstrip("-").isdigit()}
                )
    return {f"{p}.{k}": table.get(p, {}).get(k, 0) for p, k in NET_COUNTERS}


def counter_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - v for k, v in before.items() if after.get(k, 0) - v}


# --- statistics -------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (nan when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary_ms(values_s: Sequence[float]) -> Json:
    """n, p50, p90, p99, max of durations given in seconds, in milliseconds."""
    v = sorted(values_s)
    out: Json = {"n": len(v)}
    for name, p in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0)):
        out[name] = round(percentile(v, p) * 1000.0, 2) if v else None
    out["max"] = round(v[-1] * 1000.0, 2) if v else None
    return out


# --- the child's side of the control channel -------------------------------------------------------


async def serve_control(handle: Handler) -> None:
    """Answers requests from stdin until EOF or a request with op "stop" (answered, then returns)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        request: Json = json.loads(line)
        try:
            response = await handle(request)
            response["ok"] = True
        except Exception as exc:
            response = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        response["id"] = request.get("id")
        sys.stdout.write(json.dumps(response) + "\n")
        sys.stdout.flush()
        if request.get("op") == "stop":
            return


def open_log(path: Path) -> BinaryIO:
    """A log file for a child's output, appended to."""
    return open(path, "ab")


# --- the parent's side --------------------------------------------------------------------------------


class ChildError(RuntimeError):
    pass


class Child:
    """A child process spoken to over its stdin/stdout, one request at a time."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log
        self._lock = asyncio.Lock()
        self._next = 0

    @classmethod
    async def start(cls, name: str, argv: list[str], log: Path, cwd: Path) -> Child:
        with open_log(log) as err:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                cwd=cwd,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                limit=LINE_LIMIT,
            )
        return cls(name, proc, log)

    async def request(self, op: str, timeout: float = 60.0, **params: Any) -> Json:
        async with self._lock:
            if self.proc.returncode is not None:
                raise ChildError(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self._next += 1
            self.proc.stdin.write((json.dumps({"id": self._next, "op": op, **params}) + "\n").encode())
            await self.proc.stdin.drain()
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            except TimeoutError:
                raise ChildError(f"{self.name} did not answer {op} within {timeout:.0f} s") from None
            if not line:
                await asyncio.sleep(0.2)
                raise ChildError(f"{self.name} exited ({self.proc.returncode}): {self.log_tail()}")
            response: Json = json.loads(line)
            if not response.get("ok"):
                raise ChildError(f"{self.name}: {op} failed: {response.get('error')}")
            return response

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    async def stop(self, grace: float = 20.0) -> None:
        """Asks it to stop, then SIGKILL after `grace` seconds."""
        if self.proc.returncode is None:
            with contextlib.suppress(ChildError, OSError, ConnectionError, TimeoutError):
                await asyncio.wait_for(self.request("stop", timeout=grace), grace)
        self.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 5)

    def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

"""Agent-hub scale benchmark: N simulated agents, one connection each, against one scheduler process.

Two scenarios, one after the other, each with fresh processes:

- `scheduler`: the real scheduler (`python -m server`) as a process of its own. Measures connecting all N
  agents, a steady heartbeat window (CPU, RSS, an API call's latency) and reconnect storms. The
  scheduler sends agents commands only while driving maintenances, so no round trips here.
- `hub`: `server.agents.hub.AgentHub` alone on a grpc.aio server built like the scheduler's, in a process
  tuned like the scheduler's (bench/agents_hubhost.py), with a driver calling `hub.call` at `--rate`
  per second on random agents. Measures command round trips, steady and during reconnect storms.

The agents live in `--workers` processes (bench/agents_sim.py). A storm closes every agent's channel at
once and re-opens each after a uniform delay in [0, jitter). See bench/README_agents.md.

    .venv/bin/python -m bench.agents_hub [--agents 10000] [--workers 4] [--rate 200] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc
import grpc.aio

from bench.agents_ctl import (
    Child,
    ChildError,
    Json,
    counter_delta,
    cpu_percent,
    die_with_parent,
    machine_busy_percent,
    machine_cpu,
    net_counters,
    open_log,
    proc_sample,
    raise_nofile,
    summary_ms,
)
from kvmaint.v1 import fleet_pb2, fleet_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
POLL = 0.25
# How long after a storm settled to wait for the scheduler's database to catch up.
DRAIN_TIMEOUT = 60.0
MIB = 1024 * 1024

Phase = dict[str, Any]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.agents_hub", description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=10_000, help="simulated agents (default 10000)")
    p.add_argument("--workers", type=int, default=4, help="processes the agents are spread over (default 4)")
    p.add_argument("--only", default="scheduler,hub", help="scenarios to run (default scheduler,hub)")
    p.add_argument(
        "--rate", type=float, default=200.0, help="hub scenario: commands per second (default 200)"
    )
    p.add_argument("--command-timeout", type=float, default=30.0, help="timeout of one command (default 30)")
    p.add_argument("--heartbeat", type=float, default=5.0, help="agents' heartbeat interval, s (default 5)")
    p.add_argument("--steady", type=float, default=30.0, help="steady window, s (default 30)")
    p.add_argument(
        "--storm-jitters",
        default="0.1,0",
        help="one storm per value: reconnect delay uniform in [0, value) s (default 0.1,0)",
    )
    p.add_argument(
        "--hub-servers",
        type=int,
        default=1,
        help="hub scenario: grpc.aio servers sharing the port by SO_REUSEPORT (default 1, as the scheduler)",
    )
    p.add_argument(
        "--hub-variant",
        choices=("scheduler", "indexed"),
        default="scheduler",
        help="hub scenario: the hub as it is, or with the proposed index of pending commands by host",
    )
    p.add_argument(
        "--hub-option",
        action="append",
        default=[],
        metavar="KEY=INT",
        help="hub scenario: one more gRPC server option on top of the scheduler's (repeatable)",
    )
    p.add_argument(
        "--worker-nice",
        type=int,
        default=10,
        help="niceness of the agent workers: they stand for other hosts but share the scheduler's "
        "cores, so they yield to it (default 10; 0 to compete equally)",
    )
    p.add_argument("--connect-jitter", type=float, default=0.0, help="first connects spread over [0, s)")
    p.add_argument("--connect-timeout", type=float, default=240.0, help="bound of connecting all, s")
    p.add_argument("--storm-timeout", type=float, default=120.0, help="bound of one storm, s")
    p.add_argument("--settle", type=float, default=5.0, help="pause after connect and each storm, s")
    p.add_argument(
        "--nofile",
        type=int,
        default=-1,
        help="descriptor limit to ask for, hard limit included (needs CAP_SYS_RESOURCE; default "
        "2 x agents + 4096; 0: only raise the soft limit to the hard one)",
    )
    p.add_argument("--total-timeout", type=float, default=1200.0, help="bound of the whole benchmark, s")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--workdir", type=Path, help="logs and the scheduler's database (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work directory afterwards")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    args.scenarios = [s.strip() for s in args.only.split(",") if s.strip()]
    if not args.scenarios or set(args.scenarios) - {"scheduler", "hub"}:
        p.error("--only takes scheduler and/or hub")
    args.jitters = [float(j) for j in args.storm_jitters.split(",") if j.strip()]
    if args.agents < 1 or args.workers < 1 or args.rate <= 0:
        p.error("--agents, --workers and --rate must be positive")
    args.workers = min(args.workers, args.agents)
    return args


# --- small helpers ------------------------------------------------------------------------------------


def ms3(s: Json) -> str:
    """'p50 / p99 / max' of a summary_ms dict."""
    if not s.get("n"):
        return "-"
    return f"{s['p50']:.1f} / {s['p99']:.1f} / {s['max']:.1f}"


def ms4(s: Json) -> str:
    if not s.get("n"):
        return "-"
    return f"{s['p50']:.1f} / {s['p90']:.1f} / {s['p99']:.1f} / {s['max']:.1f}"


def errors_text(errors: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(errors.items(), key=lambda kv: -kv[1])) or "0"


def net_text(delta: dict[str, int]) -> str:
    return ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in delta.items()) or "0"


async def tcp_connections(port: int) -> int:
    """Established TCP connections whose local port is `port` (the server's side of each)."""
    proc = await asyncio.create_subprocess_exec(
        "ss", "-Htn", "state", "established", f"( sport = :{port} )", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return sum(1 for line in out.decode().splitlines() if line.strip())


def machine(nofile: tuple[int, int]) -> Json:
    def read(path: str) -> str:
        try:
            return Path(path).read_text().strip()
        except OSError:
            return "?"

    mem_kib = next(
        (int(line.split()[1]) for line in read("/proc/meminfo").splitlines() if line.startswith("MemTotal")),
        0,
    )
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "memory GiB": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "ulimit -n (soft, hard)": list(nofile),
        "somaxconn": read("/proc/sys/net/core/somaxconn"),
        "tcp_max_syn_backlog": read("/proc/sys/net/ipv4/tcp_max_syn_backlog"),
        "ip_local_port_range": read("/proc/sys/net/ipv4/ip_local_port_range").replace("\t", "-"),
        "loadavg at start": read("/proc/loadavg").split()[:3],
    }


# --- the processes under test ---------------------------------------------------------------------------


@dataclass
class Target:
    """What the agents connect to: the scheduler process or the hub host."""

    name: str
    port: int
    pid: int
    stop: Callable[[], Awaitable[None]]
    hub: Child | None = None
    db: Path | None = None


async def start_scheduler(workdir: Path, stack: contextlib.AsyncExitStack) -> Target:
    port_file = workdir / "port"
    db = workdir / "state.db"
    logf = open_log(workdir / "scheduler.log")
    stack.callback(logf.close)
    # KVMAINT_BENCH_PROFILE=FILE: the scheduler runs under cProfile and writes its profile there on exit.
    profile = os.environ.get("KVMAINT_BENCH_PROFILE")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *(["-m", "cProfile", "-o", profile] if profile else []),
        "-m",
        "server",
        "--listen",
        "127.0.0.1:0",
        "--db",
        str(db),
        "--port-file",
        str(port_file),
        "--tick-seconds",
        "5",
        cwd=ROOT,
        stdout=logf,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=die_with_parent,
    )

    async def stop() -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    stack.push_async_callback(stop)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            port = int(port_file.read_text().split()[0])
            return Target("scheduler", port, proc.pid, stop, db=db)
        if proc.returncode is not None:
            raise RuntimeError(f"scheduler exited with {proc.returncode}; see {workdir / 'scheduler.log'}")
        await asyncio.sleep(0.05)
    raise TimeoutError(f"scheduler did not write its port file; see {workdir / 'scheduler.log'}")


async def start_hubhost(args: argparse.Namespace, workdir: Path, stack: contextlib.AsyncExitStack) -> Target:
    extra = [x for opt in args.hub_option for x in ("--option", opt)]
    child = await Child.start(
        "hub host",
        [
            sys.executable,
            "-m",
            "bench.agents_hubhost",
            "--seed",
            str(args.seed),
            "--servers",
            str(args.hub_servers),
            "--variant",
            args.hub_variant,
            *extra,
        ],
        workdir / "hubhost.log",
        ROOT,
    )
    stack.push_async_callback(child.stop)
    info = await child.request("port", timeout=30)
    return Target("hub", int(info["port"]), int(info["pid"]), child.stop, hub=child)


async def start_workers(
    args: argparse.Namespace, port: int, workdir: Path, stack: contextlib.AsyncExitStack
) -> list[Child]:
    workers: list[Child] = []
    per, extra = divmod(args.agents, args.workers)
    first = 0
    for w in range(args.workers):
        count = per + (1 if w < extra else 0)
        child = await Child.start(
            f"worker {w}",
            [
                sys.executable,
                "-m",
                "bench.agents_sim",
                "--target",
                f"127.0.0.1:{port}",
                "--first",
                str(first),
                "--count",
                str(count),
                "--heartbeat",
                str(args.heartbeat),
                "--seed",
                str(args.seed * 1000 + w),
                "--nice",
                str(args.worker_nice),
            ],
            workdir / f"worker-{w}.log",
            ROOT,
        )
        stack.push_async_callback(child.stop)
        workers.append(child)
        first += count
    await asyncio.gather(*(w.request("status", timeout=60) for w in workers))
    return workers


# --- probes running alongside -----------------------------------------------------------------------------


@dataclass
class ApiProbe:
    """ListApps on the scheduler twice a second (each call its own task): does the API stay responsive?"""

    port: int
    calls: list[tuple[float, float, str]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            stub = fleet_pb2_grpc.FleetServiceStub(channel)
            tasks: set[asyncio.Task[None]] = set()
            try:
                while True:
                    task = asyncio.create_task(self._one(stub))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    await asyncio.sleep(0.5)
            finally:
                for task in tasks:
                    task.cancel()

    async def _one(self, stub: Any) -> None:
        start = time.monotonic()
        error = ""
        try:
            await stub.ListApps(fleet_pb2.ListAppsRequest(), timeout=30)
        except grpc.aio.AioRpcError as err:
            error = err.code().name
        self.calls.append((start, time.monotonic() - start, error))

    def window(self, since: float, until: float) -> tuple[Json, dict[str, int]]:
        inside = [c for c in self.calls if since <= c[0] <= until]
        errors = Counter(c[2] for c in inside if c[2])
        return summary_ms([c[1] for c in inside if not c[2]]), dict(errors)


def db_rows_since(db: Path, wall: datetime.datetime) -> int:
    """Agents whose last_seen the scheduler has written since `wall` (it writes one row per hello)."""
    stamp = wall.astimezone(datetime.UTC).isoformat(timespec="microseconds")
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        row = conn.execute("SELECT count(*) FROM agents WHERE last_seen >= ?", (stamp,)).fetchone()
    return int(row[0])


# --- the scenarios --------------------------------------------------------------------------------


class Run:
    def __init__(self, args: argparse.Namespace, target: Target, workers: list[Child]) -> None:
        self.args = args
        self.t = target
        self.workers = workers
        self.last_status: list[Json] = []
        self.phase_marks: dict[str, tuple[float, float]] = {}
        self.fds_peak = 0

    async def status(self, since: float = 0.0) -> list[Json]:
        self.last_status = list(
            await asyncio.gather(*(w.request("status", since=since, timeout=60) for w in self.workers))
        )
        return self.last_status

    def errors(self, statuses: list[Json]) -> Counter[str]:
        total: Counter[str] = Counter()
        for s in statuses:
            total.update(s["errors"])
        return total

    def samples(self, statuses: list[Json]) -> dict[str, str]:
        out: dict[str, str] = {}
        for s in statuses:
            for k, v in s["samples"].items():
                out.setdefault(k, v)
        return out

    def workers_cpu(self, a: list[Json], b: list[Json], wall: float) -> float:
        return 100.0 * sum(y["cpu"] - x["cpu"] for x, y in zip(a, b, strict=True)) / wall if wall > 0 else 0.0

    async def wait_welcomed(self, since: float, timeout: float) -> tuple[bool, list[Json]]:
        """Polls the workers until every agent was welcomed on a stream opened after `since`."""
        deadline = time.monotonic() + timeout
        self.fds_peak = 0
        statuses = await self.status(since)
        last_report = time.monotonic()
        while time.monotonic() < deadline:
            welcomed = sum(s["welcomed_since"] for s in statuses)
            if welcomed >= self.args.agents:
                return True, statuses
            if time.monotonic() - last_report > 10:
                errs = errors_text(dict(self.errors(statuses)))
                took = time.monotonic() - since
                log(f"  {welcomed}/{self.args.agents} welcomed after {took:.0f} s ({errs})")
                last_report = time.monotonic()
            await asyncio.sleep(POLL)
            statuses = await self.status(since)
            with contextlib.suppress(OSError):
                self.fds_peak = max(self.fds_peak, proc_sample(self.t.pid).fds)
        return False, statuses

    async def worker_lag(self, since: float, until: float) -> Phase:
        answers = await asyncio.gather(
            *(w.request("lag", since=since, until=until, timeout=60) for w in self.workers)
        )
        lags = summary_ms([x for a in answers for x in a["lag"]])
        return {"agent workers' event-loop lag p50 / p99 / max (ms)": ms3(lags)}

    async def connect_times(self, since: float) -> list[float]:
        answers = await asyncio.gather(
            *(w.request("connect_times", since=since, timeout=60) for w in self.workers)
        )
        return [x for a in answers for x in a["seconds"]]

    async def connect(self) -> Phase:
        n = self.args.agents
        log(f"{self.t.name}: connecting {n} agents from {len(self.workers)} workers")
        before_s = await self.status()
        net0 = net_counters()
        m0 = machine_cpu()
        p0 = proc_sample(self.t.pid)
        t0 = time.monotonic()
        await asyncio.gather(
            *(w.request("start", jitter=self.args.connect_jitter, timeout=120) for w in self.workers)
        )
        ok, after = await self.wait_welcomed(t0, self.args.connect_timeout)
        p1 = proc_sample(self.t.pid)
        m1 = machine_cpu()
        last = max((s["last_welcome"] for s in after), default=0.0)
        welcomed = sum(s["welcomed_since"] for s in after)
        self.phase_marks["connect"] = (t0, last or time.monotonic())
        conns = await tcp_connections(self.t.port)
        errors = self.errors(after) - self.errors(before_s)
        phase: Phase = {
            "agents welcomed": f"{welcomed}/{n}",
            "time until all welcomed (s)": round(last - t0, 2)
            if ok
            else f"not within {self.args.connect_timeout:.0f}",
            "per agent: open -> welcome p50 / p99 / max (ms)": ms3(summary_ms(await self.connect_times(t0))),
            "TCP connections at the server port (ss)": conns,
            "agent errors": errors_text(dict(errors)),
            f"{self.t.name} CPU while connecting (% of a core)": round(cpu_percent(p0, p1), 1),
            f"{self.t.name} CPU time per agent (ms)": round(1000 * (p1.cpu - p0.cpu) / n, 2),
            "agent workers' CPU while connecting (% of a core, sum)": round(
                self.workers_cpu(before_s, after, p1.at - p0.at), 1
            ),
            "whole machine CPU busy (% of a core)": round(machine_busy_percent(m0, m1), 1),
            f"{self.t.name} RSS after (MiB)": round(p1.rss / MIB, 1),
            f"{self.t.name} open fds / threads": f"{p1.fds} / {p1.threads}",
            "kernel TCP counters (delta)": net_text(counter_delta(net0, net_counters())),
        }
        if errors:
            phase["error samples"] = self.samples(after)
        phase["_ok"] = ok
        return phase

    async def steady(self, extra: Callable[[float, float], Awaitable[Phase]]) -> Phase:
        log(f"{self.t.name}: steady window of {self.args.steady:.0f} s")
        s0 = await self.status()
        m0 = machine_cpu()
        p0 = proc_sample(self.t.pid)
        await asyncio.sleep(self.args.steady)
        p1 = proc_sample(self.t.pid)
        m1 = machine_cpu()
        s1 = await self.status()
        wall = p1.at - p0.at
        self.phase_marks["steady"] = (p0.at, p1.at)
        errors = self.errors(s1) - self.errors(s0)
        phase: Phase = {
            "window (s)": round(wall, 1),
            "agents connected at the end": f"{sum(s['connected'] for s in s1)}/{self.args.agents}",
            "heartbeats sent per second": round(
                sum(b["heartbeats"] - a["heartbeats"] for a, b in zip(s0, s1, strict=True)) / wall
            ),
            "agent errors": errors_text(dict(errors)),
            f"{self.t.name} CPU (% of a core)": round(cpu_percent(p0, p1), 1),
            "agent workers' CPU (% of a core, sum)": round(self.workers_cpu(s0, s1, wall), 1),
            "whole machine CPU busy (% of a core)": round(machine_busy_percent(m0, m1), 1),
            f"{self.t.name} RSS (MiB)": round(p1.rss / MIB, 1),
        }
        phase.update(await extra(p0.at, p1.at))
        phase.update(await self.worker_lag(p0.at, p1.at))
        if errors:
            phase["error samples"] = self.samples(s1)
        return phase

    async def storm(self, jitter: float, extra: Callable[[float, float], Awaitable[Phase]]) -> Phase:
        n = self.args.agents
        log(f"{self.t.name}: reconnect storm, jitter {jitter:g} s")
        s0 = await self.status()
        net0 = net_counters()
        m0 = machine_cpu()
        p0 = proc_sample(self.t.pid)
        wall0 = datetime.datetime.now(datetime.UTC)
        t0 = time.monotonic()
        await asyncio.gather(*(w.request("storm", jitter=jitter, timeout=60) for w in self.workers))
        ok, s1 = await self.wait_welcomed(t0, self.args.storm_timeout)
        p1 = proc_sample(self.t.pid)
        m1 = machine_cpu()
        last = max((s["last_welcome"] for s in s1), default=0.0)
        closed = max((s["last_closed"] for s in s1), default=0.0)
        end = last if ok else time.monotonic()
        self.phase_marks[f"storm {jitter:g}"] = (t0, end)
        errors = self.errors(s1) - self.errors(s0)
        phase: Phase = {
            "agents welcomed again": f"{sum(s['welcomed_since'] for s in s1)}/{n}",
            "time until all channels closed (s)": round(closed - t0, 2) if closed > t0 else "-",
            "time until all welcomed again (s)": round(last - t0, 2)
            if ok
            else f"not within {self.args.storm_timeout:.0f}",
            "per agent: open -> welcome p50 / p99 / max (ms)": ms3(summary_ms(await self.connect_times(t0))),
            "agent errors (besides the deliberate close)": errors_text(dict(errors)),
            f"{self.t.name} CPU during the storm (% of a core)": round(cpu_percent(p0, p1), 1),
            f"{self.t.name} CPU time per agent reconnected (ms)": round(1000 * (p1.cpu - p0.cpu) / n, 2),
            "agent workers' CPU during the storm (% of a core, sum)": round(
                self.workers_cpu(s0, s1, p1.at - p0.at), 1
            ),
            "whole machine CPU busy (% of a core)": round(machine_busy_percent(m0, m1), 1),
            f"{self.t.name} RSS after / peak so far (MiB)": f"{p1.rss / MIB:.1f} / {p1.hwm / MIB:.1f}",
            f"{self.t.name} open fds, most seen during the storm": max(self.fds_peak, p1.fds),
            "kernel TCP counters (delta)": net_text(counter_delta(net0, net_counters())),
        }
        phase.update(await extra(t0, end))
        phase.update(await self.worker_lag(t0, end))
        if self.t.db is not None:
            phase["hello rows written to the database (s after the storm began)"] = await self.db_drain(
                wall0, t0
            )
        if errors:
            phase["error samples"] = self.samples(s1)
        phase["_ok"] = ok
        return phase

    async def db_drain(self, wall0: datetime.datetime, t0: float) -> str:
        """The scheduler writes each hello to SQLite in the background: when has it caught up?"""
        assert self.t.db is not None
        deadline = time.monotonic() + DRAIN_TIMEOUT
        rows = 0
        while time.monotonic() < deadline:
            try:
                rows = await asyncio.to_thread(db_rows_since, self.t.db, wall0)
            except sqlite3.Error as exc:
                log(f"  reading the scheduler's database: {exc}")
            if rows >= self.args.agents:
                return f"{time.monotonic() - t0:.1f}"
            await asyncio.sleep(0.5)
        return f"only {rows}/{self.args.agents} by {time.monotonic() - t0:.0f}"


async def scenario(args: argparse.Namespace, name: str, workdir: Path) -> Json:
    out: Json = {}
    async with contextlib.AsyncExitStack() as stack:
        if name == "scheduler":
            target = await start_scheduler(workdir, stack)
        else:
            target = await start_hubhost(args, workdir, stack)
        log(f"{name}: listening on 127.0.0.1:{target.port} (pid {target.pid})")
        out["startup"] = {f"{name} RSS before agents (MiB)": round(proc_sample(target.pid).rss / MIB, 1)}
        workers = await start_workers(args, target.port, workdir, stack)
        run = Run(args, target, workers)
        probe: ApiProbe | None = None
        if name == "scheduler":
            probe = ApiProbe(target.port)
            probe.task = asyncio.create_task(probe.run())
            stack.callback(probe.task.cancel)

        connect = await run.connect()
        out["connect"] = connect
        if not connect.pop("_ok"):
            log(f"{name}: not every agent connected; skipping the other phases")
            return out
        await asyncio.sleep(args.settle)

        async def api_window(since: float, until: float) -> Phase:
            if probe is None:
                return {}
            summary, errors = probe.window(since, until)
            return {
                "API ListApps p50 / p99 / max (ms)": ms3(summary),
                "API ListApps errors": errors_text(errors),
            }

        hub = target.hub
        if hub is not None:
            await hub.request("drive", rate=args.rate, hosts=args.agents, call_timeout=args.command_timeout)
            await asyncio.sleep(2.0)  # the driver's first calls are not part of any window

        async def hub_window(since: float, until: float) -> Phase:
            if hub is None:
                return await api_window(since, until)
            answer = await hub.request("lag", since=since, until=until)
            count, longest = answer["gc2"]
            return {
                "hub event-loop lag p50 / p99 / max (ms)": ms3(answer["lag"]),
                "hub full (gen 2) GC passes, longest (ms)": f"{count}, {longest}" if count else "0",
            }

        out["steady"] = await run.steady(hub_window)
        for jitter in args.jitters:
            await asyncio.sleep(args.settle)
            phase = await run.storm(jitter, hub_window)
            out[f"storm, jitter {jitter:g} s"] = phase
            if not phase.pop("_ok"):
                log(f"{name}: the storm did not settle; skipping further storms")
                break
        await asyncio.sleep(args.settle)

        if hub is not None:
            unfinished = (await hub.request("halt", wait=args.command_timeout + 5, timeout=120))["unfinished"]
            calls = (await hub.request("calls", timeout=120))["calls"]
            for phase_name, (since, until) in run.phase_marks.items():
                if phase_name == "connect":
                    continue
                key = "steady" if phase_name == "steady" else f"storm, jitter {phase_name.split()[1]} s"
                if key not in out:
                    continue
                inside = [c for c in calls if since <= c[0] <= until]
                errs = Counter(c[2].split(":")[0] for c in inside if c[2])
                lat = summary_ms([c[1] for c in inside if not c[2]])
                out[key]["round trips (commands)"] = lat["n"]
                out[key]["round trip p50 / p90 / p99 / max (ms)"] = ms4(lat)
                out[key]["round-trip errors"] = errors_text(dict(errs))
                out[key]["_round_trips"] = lat
                if key != "steady":
                    for label, flag in (("had a session", True), ("had none (reconnecting)", False)):
                        part = summary_ms([c[1] for c in inside if not c[2] and c[3] is flag])
                        out[key][f"  host {label} when sent: n, p50 / p90 / p99 / max"] = (
                            f"{part['n']}, {ms4(part)}"
                        )
            out["end"] = {"commands unfinished at the end": unfinished}

        final = proc_sample(target.pid)
        out.setdefault("end", {}).update(
            {
                f"{name} RSS at the end / peak (MiB)": f"{final.rss / MIB:.1f} / {final.hwm / MIB:.1f}",
                f"{name} open fds / threads": f"{final.fds} / {final.threads}",
            }
        )
        log(f"{name}: stopping")
    logname = "scheduler.log" if name == "scheduler" else "hubhost.log"
    text = (workdir / logname).read_text(errors="replace")
    out["end"][f"{logname}: ERROR lines / tracebacks"] = (
        f"{text.count(' ERROR ')} / {text.count('Traceback')}"
    )
    return out


# --- the table ------------------------------------------------------------------------------------


def table(result: Json) -> str:
    lines: list[str] = []
    s = result["settings"]
    m = result["machine"]
    lines.append(
        f"kvmaint agent hub: {s['agents']} agents in {s['workers']} worker processes, one TCP connection "
        f"each; heartbeat {s['heartbeat']:g} s; hub driver {s['rate']:g} commands/s; agent workers at nice "
        f"{s['worker_nice']}"
    )
    lines.append(
        f"{m['date']}  nproc {m['nproc']}  {m['memory GiB']} GiB  kernel {m['kernel']}  Python {m['python']}"
        f"  grpcio {m['grpcio']}  ulimit -n {m['ulimit -n (soft, hard)'][0]}  somaxconn {m['somaxconn']}"
        f"  load {' '.join(m['loadavg at start'])}"
    )
    for name, phases in result["scenarios"].items():
        lines.append("")
        title = {
            "scheduler": "SCHEDULER (python -m server, separate process)",
            "hub": "HUB (AgentHub on a grpc.aio server like the scheduler's, driver in-process)",
        }[name]
        if name == "hub":
            changes = [f"{s['hub_servers']} servers on the port"] if s["hub_servers"] != 1 else []
            changes += [f"option {o}" for o in s["hub_options"]]
            if s["hub_variant"] != "scheduler":
                changes.append(f"variant {s['hub_variant']} (proposed change, not the scheduler's code)")
            if changes:
                title += "\n  CHANGED FROM THE SCHEDULER: " + "; ".join(changes)
        lines.append(title)
        for phase, figures in phases.items():
            lines.append(f"  {phase}")
            width = max((len(k) for k in figures if not k.startswith("_")), default=0)
            for k, v in figures.items():
                if k.startswith("_"):
                    continue
                if isinstance(v, dict):
                    for kk, vv in v.items():
                        lines.append(f"    {'  ' + kk:<{width}}  {vv}")
                    continue
                lines.append(f"    {k:<{width}}  {v}")
    return "\n".join(lines)


async def amain(args: argparse.Namespace, workdir: Path, nofile: tuple[int, int]) -> Json:
    result: Json = {
        "machine": machine(nofile),
        "settings": {
            "agents": args.agents,
            "workers": args.workers,
            "heartbeat": args.heartbeat,
            "rate": args.rate,
            "hub_servers": args.hub_servers,
            "hub_options": args.hub_option,
            "hub_variant": args.hub_variant,
            "worker_nice": args.worker_nice,
            "command_timeout": args.command_timeout,
            "steady": args.steady,
            "storm_jitters": args.jitters,
        },
        "scenarios": {},
    }
    for name in args.scenarios:
        sub = workdir / name
        sub.mkdir(parents=True, exist_ok=True)
        try:
            result["scenarios"][name] = await scenario(args, name, sub)
        except (ChildError, RuntimeError, TimeoutError) as exc:
            log(f"{name}: failed: {exc}")
            result["scenarios"][name] = {"failed": {"error": str(exc)[:2000]}}
    return result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    nofile = raise_nofile(args.nofile if args.nofile >= 0 else 2 * args.agents + 4096)
    if nofile[0] <= 2 * args.agents:
        log(
            f"warning: ulimit -n is {nofile[0]}, not above twice the agent count ({2 * args.agents}); "
            "the hard limit could not be raised (needs CAP_SYS_RESOURCE)"
        )
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kvmaint-agents-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"work directory {workdir}; ulimit -n {nofile[0]} (hard {nofile[1]})")

    async def bounded() -> Json:
        loop = asyncio.get_running_loop()
        main_task = asyncio.current_task()
        assert main_task is not None
        loop.add_signal_handler(signal.SIGTERM, main_task.cancel)
        return await asyncio.wait_for(amain(args, workdir, nofile), args.total_timeout)

    failed = False
    try:
        result = asyncio.run(bounded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        log(f"interrupted; every process started was stopped; logs in {workdir}")
        sys.exit(130)
    except TimeoutError:
        log(f"the whole benchmark took longer than {args.total_timeout:.0f} s; stopped")
        sys.exit(1)
    finally:
        if args.keep or args.workdir:
            log(f"logs kept in {workdir}")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(table(result))
    for phases in result["scenarios"].values():
        failed = failed or "failed" in phases
    if not (args.keep or args.workdir):
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

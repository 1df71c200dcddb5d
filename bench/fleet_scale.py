"""What one scheduler costs as the fleet grows (issue 9 section 1), on SQLite or PostgreSQL.

Per size, the state is written straight through the project's store in bulk (not through the API: the
same rows `CreateAddon` and a completed maintenance would leave, many per statement and 2,000 add-ons per
transaction: 100k in about a minute): apps of 100 add-ons on 40 hosts, each
add-on with one maintenance completed 30 days ago (three history entries). Then a real scheduler process
(`python -m server`, no agents) serves it, and the bench measures over real gRPC on loopback:

- startup to first answer: from spawning the process to its first `GetMaintenanceInfo` answer;
- idle CPU of the process over 10 s with nothing due (its periodic passes still run), and its RSS;
- planner and reminder passes: the mean of the passes the process timed itself in the window
  (`kvmaint_planner_pass_duration_seconds`, `kvmaint_reminder_pass_duration_seconds` on /metrics);
- `GetMaintenanceInfo` p50/p99/max at concurrency 20 on random add-ons, for 11 s (two 5 s ticks);
- `CreateAddon` p50 of 20 new add-ons registered on existing servers;

then again with 2% of the add-ons due (pending, scheduled a minute ago; `--max-concurrent 1`, so the
planner queues all but one: with no agents, that one fails its first step and goes back to pending) and
another 2% starting within 24 hours (the reminder pass's candidates). DB size: the file and its WAL,
or `pg_database_size`.

    .venv/bin/python -m bench.fleet_scale                              # 1,000 and 10,000 on SQLite
    .venv/bin/python -m bench.fleet_scale --sizes 1000,10000,100000
    .venv/bin/python -m bench.fleet_scale --db postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import grpc

from kvmaint.channel import CHANNEL_OPTIONS
from kvmaint.v1 import fleet_pb2, fleet_pb2_grpc, maintenance_pb2, maintenance_pb2_grpc, resources_pb2
from server.domain.models import (
    Addon,
    App,
    HistoryEntry,
    Maintenance,
    Method,
    Reason,
    Role,
    ServerRef,
    Status,
)
from server.domain.windows import random_default_window
from server.storage.select import AnyStore, store_for

HOSTS = [f"db-{i}" for i in range(1, 41)]
PER_APP = 100
CONCURRENCY = 20
LOAD_SECONDS = 11.0
IDLE_SECONDS = 10.0
GOALS = {  # issue 9 at 100k add-ons on one scheduler
    "planner_idle_ms": 200.0,
    "planner_due_ms": 2000.0,
    "api_p99_ms": 100.0,
    "api_max_ms": 1000.0,
    "first_answer_s": 3.0,
    "idle_cpu_pct": 10.0,
}


@dataclass
class Phase:
    planner_ms: float = -1.0
    planner_passes: int = 0
    reminder_ms: float = -1.0
    reminder_passes: int = 0
    api_p50_ms: float = -1.0
    api_p99_ms: float = -1.0
    api_max_ms: float = -1.0
    api_calls: int = 0
    api_errors: int = 0


@dataclass
class Result:
    size: int
    store: str
    seed_s: float = 0.0
    first_answer_s: float = -1.0
    idle_cpu_pct: float = -1.0
    rss_mb: float = -1.0
    db_mb: float = -1.0
    create_p50_ms: float = -1.0
    idle: Phase = field(default_factory=Phase)
    due: Phase = field(default_factory=Phase)
    # RequireMaintenance(all) from a default client (4 MB receive limit), with the API load beside it.
    require_s: float = -1.0
    require_reply_bytes: int = -1
    require_filed: int = -1
    require_batches: int = -1
    require: Phase = field(default_factory=Phase)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def addon_name(i: int) -> str:
    return f"redis-{i:06d}"


def maint(mid: str, i: int, status: Status, now: datetime, **kw: object) -> Maintenance:
    kw.setdefault("required_by", now + timedelta(days=10))
    return Maintenance(
        id=mid,
        addon=addon_name(i),
        app=f"app-{i // PER_APP:05d}",
        reason=Reason.ROUTINE_MAINTENANCE,
        method=Method.FAILOVER,
        status=status,
        created_at=now - timedelta(days=31),
        **kw,  # type: ignore[arg-type]
    )


SEED_BATCH = 2000  # add-ons per transaction while seeding


async def seed(store: AnyStore, n: int, rng: random.Random) -> None:
    """N add-ons, each with one maintenance completed 30 days ago: the rows `CreateAddon` and a completed
    maintenance leave (the store's `insert_apps`/`insert_addons`/`insert_maintenances` write exactly what
    `insert_app`/`insert_addon`/`insert_maintenance` do), many per statement and SEED_BATCH add-ons per
    transaction."""
    now = datetime.now(UTC)
    done = now - timedelta(days=30)
    for start in range(0, n, SEED_BATCH):
        apps: list[App] = []
        addons: list[Addon] = []
        maints: list[Maintenance] = []
        for i in range(start, min(n, start + SEED_BATCH)):
            app = f"app-{i // PER_APP:05d}"
            if i % PER_APP == 0:
                apps.append(App(app, f"{app}@example.com", False, now - timedelta(days=200)))
            h = rng.randrange(len(HOSTS))
            servers = (
                ServerRef(HOSTS[h], 10000 + i, Role.PRIMARY),
                ServerRef(HOSTS[(h + 1) % len(HOSTS)], 10000 + i, Role.STANDBY),
            )
            window = random_default_window(rng)
            addons.append(
                Addon(
                    addon_name(i),
                    app,
                    "premium-0",
                    "heroku-redis",
                    "premium HA",
                    ("REDIS_URL",),
                    now - timedelta(days=200),
                    servers,
                    window,
                )
            )
            history = (
                HistoryEntry(done - timedelta(days=6), Status.PENDING, "", "Required"),
                HistoryEntry(done - timedelta(minutes=1), Status.RUNNING, "failover", "Started"),
                HistoryEntry(done, Status.COMPLETED, "", "Completed"),
            )
            maints.append(
                maint(
                    f"m-done-{i:06d}",
                    i,
                    Status.COMPLETED,
                    now,
                    required_by=done + timedelta(days=1),
                    scheduled_for=done - timedelta(minutes=1),
                    started_at=done - timedelta(minutes=1),
                    completed_at=done,
                    window=window,
                    write_pause_ms=120,
                    history=history,
                )
            )
        async with store.transaction() as tx:
            await tx.insert_apps(apps)
            await tx.insert_addons(addons)
            await tx.insert_maintenances(maints)


async def seed_due(store: AnyStore, n: int) -> None:
    """2% due a minute ago and 2% starting within 24 hours, on distinct add-ons."""
    now = datetime.now(UTC)
    k = max(1, n // 50)
    due: list[Maintenance] = []
    for j in range(2 * k):
        i = (j * 25) % n
        at = now - timedelta(minutes=1) if j < k else now + timedelta(hours=1 + j % 20)
        h = (HistoryEntry(now - timedelta(days=2), Status.PENDING, "", "Required"),)
        due.append(maint(f"m-due-{i:06d}", i, Status.PENDING, now, scheduled_for=at, history=h))
    async with store.transaction() as tx:
        await tx.insert_maintenances(due)


class Target:
    """One state to run the scheduler on: a SQLite file, or a PostgreSQL database of its own."""

    def __init__(self, base: str | None, size: int, workdir: Path) -> None:
        self.base = base
        if base is None:
            self.db: str = str(workdir / f"fleet-{size}.db")
        else:
            parts = urlsplit(base)
            self.name = f"kvmaint_fleet_{size}_{os.getpid()}"
            self.db = urlunsplit(parts._replace(path="/" + self.name))

    @property
    def kind(self) -> str:
        return "sqlite" if self.base is None else "postgresql"

    async def create(self) -> None:
        if self.base is not None:
            import asyncpg

            conn = await asyncpg.connect(self.base)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
                await conn.execute(f'CREATE DATABASE "{self.name}"')
            finally:
                await conn.close()

    async def drop(self) -> None:
        if self.base is not None:
            import asyncpg

            conn = await asyncpg.connect(self.base)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
            finally:
                await conn.close()

    async def settle(self) -> None:
        """After a bulk load, what autovacuum does within a minute or so on PostgreSQL: VACUUM ANALYZE.
        Without it the bulk seed's updated rows leave dead entries in the indexes (every add-on's
        `maintained_at` is written twice), and the first passes walk 100k of them (63 ms where 0.2 ms
        is the steady figure). SQLite needs nothing (its plans do not depend on statistics)."""
        if self.base is None:
            return
        import asyncpg

        conn = await asyncpg.connect(self.db)
        try:
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()

    async def size_mb(self) -> float:
        if self.base is None:
            files = [Path(self.db), Path(self.db + "-wal")]
            total = sum(f.stat().st_size for f in files if f.exists())
            return total / 1e6
        import asyncpg

        conn = await asyncpg.connect(self.db)
        try:
            return float(await conn.fetchval("SELECT pg_database_size(current_database())")) / 1e6
        finally:
            await conn.close()


class Scheduler:
    def __init__(self, db: str, workdir: Path, extra: list[str]) -> None:
        self.port_file = workdir / "ports"
        self.port_file.unlink(missing_ok=True)
        self.metrics_port = free_port()
        self.log = open(workdir / "scheduler.log", "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server",
                "--db",
                db,
                "--listen",
                "127.0.0.1:0",
                "--agent-listen",
                "127.0.0.1:0",
                "--port-file",
                str(self.port_file),
                "--metrics-listen",
                f"127.0.0.1:{self.metrics_port}",
                "--log-level",
                "WARNING",
                *extra,
            ],
            stdout=self.log,
            stderr=self.log,
        )
        self.port = 0

    async def first_answer(self, addon: str, app: str) -> float:
        deadline = self.started + 300
        while not self.port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"scheduler did not start (see {self.log.name})")
            await asyncio.sleep(0.01)
        self.port = int(self.port_file.read_text().split()[0])
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}", options=CHANNEL_OPTIONS) as ch:
            stub = maintenance_pb2_grpc.MaintenanceServiceStub(ch)
            while True:
                try:
                    await stub.GetMaintenanceInfo(
                        maintenance_pb2.GetMaintenanceInfoRequest(app=app, addon=addon), timeout=5
                    )
                    return time.monotonic() - self.started
                except grpc.aio.AioRpcError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.01)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return -1.0

    def passes(self) -> dict[str, tuple[float, float]]:
        """(sum seconds, count) of each timed pass so far."""
        text = (
            urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10)
            .read()
            .decode()
        )
        out: dict[str, list[float]] = {"planner": [0.0, 0.0], "reminder": [0.0, 0.0]}
        for line in text.splitlines():
            for key in out:
                prefix = f"kvmaint_{key}_pass_duration_seconds"
                if line.startswith(prefix + "_sum "):
                    out[key][0] = float(line.split()[1])
                elif line.startswith(prefix + "_count "):
                    out[key][1] = float(line.split()[1])
        return {k: (v[0], v[1]) for k, v in out.items()}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def pass_means(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], phase: Phase
) -> None:
    for key in ("planner", "reminder"):
        s = after[key][0] - before[key][0]
        c = int(after[key][1] - before[key][1])
        setattr(phase, f"{key}_ms", s / c * 1000 if c else -1.0)
        setattr(phase, f"{key}_passes", c)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else -1.0


async def api_load(
    port: int, n: int, seconds: float, phase: Phase, until: asyncio.Event | None = None
) -> None:
    """GetMaintenanceInfo at concurrency 20 for `seconds`, or until `until` is set."""
    lat: list[float] = []
    errors = 0
    end = time.monotonic() + seconds

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) as ch:
        stub = maintenance_pb2_grpc.MaintenanceServiceStub(ch)

        async def worker(seed: int) -> None:
            nonlocal errors
            rng = random.Random(seed)
            while time.monotonic() < end and not (until is not None and until.is_set()):
                i = rng.randrange(n)
                req = maintenance_pb2.GetMaintenanceInfoRequest(
                    app=f"app-{i // PER_APP:05d}", addon=addon_name(i)
                )
                t = time.perf_counter()
                try:
                    await stub.GetMaintenanceInfo(req, timeout=60)
                except grpc.aio.AioRpcError:
                    errors += 1
                lat.append(time.perf_counter() - t)

        await asyncio.gather(*(worker(k) for k in range(CONCURRENCY)))
    phase.api_p50_ms = statistics.median(lat) * 1000
    phase.api_p99_ms = pct(lat, 0.99) * 1000
    phase.api_max_ms = max(lat) * 1000
    phase.api_calls = len(lat)
    phase.api_errors = errors


async def fleet_require(port: int, n: int, result: Result) -> None:
    """RequireMaintenance for the whole fleet from a client with gRPC's default options (as a script
    would), timed, with the API load running until it answers."""
    done = asyncio.Event()

    async def call() -> None:
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                stub = fleet_pb2_grpc.FleetServiceStub(ch)
                t = time.monotonic()
                resp = await stub.RequireMaintenance(
                    fleet_pb2.RequireMaintenanceRequest(
                        all=True, reason=resources_pb2.MAINTENANCE_REASON_SECURITY_PATCH
                    ),
                    timeout=3600,
                )
                result.require_s = time.monotonic() - t
                result.require_reply_bytes = resp.ByteSize()
                result.require_filed = resp.filed_count
                result.require_batches = resp.batches
        finally:
            done.set()

    await asyncio.gather(call(), api_load(port, n, 3600, result.require, until=done))


async def create_p50(port: int, size: int) -> float:
    lat: list[float] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) as ch:
        stub = fleet_pb2_grpc.FleetServiceStub(ch)
        for k in range(20):
            req = fleet_pb2.CreateAddonRequest(
                app="app-00000",
                plan="mini",
                name=f"bench-new-{size}-{k}",
                attachments=[f"BENCH{k}_URL"],
                primary=resources_pb2.ServerAddress(host="db-new", port=30000 + k),
            )
            t = time.perf_counter()
            await stub.CreateAddon(req, timeout=120)
            lat.append(time.perf_counter() - t)
    return statistics.median(lat) * 1000


async def run_size(
    size: int, base: str | None, workdir: Path, rng: random.Random, say: object, require: bool = False
) -> Result:
    log = say  # progress on stderr
    target = Target(base, size, workdir)
    await target.create()
    result = Result(size, target.kind)
    try:
        store = store_for(target.db if base else Path(target.db))
        await store.open()
        try:
            t = time.monotonic()
            await seed(store, size, rng)
            result.seed_s = time.monotonic() - t
        finally:
            await store.close()
        log(f"{size}: seeded through the store in bulk (the rows the API writes) in {result.seed_s:.1f} s")  # type: ignore[operator]
        await target.settle()

        sched = Scheduler(target.db, workdir, [])
        try:
            result.first_answer_s = await sched.first_answer(
                addon_name(size - 1), f"app-{(size - 1) // PER_APP:05d}"
            )
            before, cpu0, t0 = sched.passes(), sched.cpu_seconds(), time.monotonic()
            await asyncio.sleep(IDLE_SECONDS)
            result.idle_cpu_pct = (sched.cpu_seconds() - cpu0) / (time.monotonic() - t0) * 100
            result.rss_mb = sched.rss_mb()
            await api_load(sched.port, size, LOAD_SECONDS, result.idle)
            pass_means(before, sched.passes(), result.idle)
            result.create_p50_ms = await create_p50(sched.port, size)
        finally:
            sched.stop()
        log(f"{size}: nothing due measured: {json.dumps(asdict(result))}")  # type: ignore[operator]

        store = store_for(target.db if base else Path(target.db))
        await store.open()
        try:
            await seed_due(store, size)
        finally:
            await store.close()
        await target.settle()
        sched = Scheduler(target.db, workdir, ["--max-concurrent", "1"])
        try:
            await sched.first_answer(addon_name(0), "app-00000")
            before = sched.passes()
            await api_load(sched.port, size, LOAD_SECONDS, result.due)
            pass_means(before, sched.passes(), result.due)
        finally:
            sched.stop()
        log(f"{size}: 2% due measured: {json.dumps(asdict(result.due))}")  # type: ignore[operator]
        if require:
            sched = Scheduler(target.db, workdir, [])
            try:
                await sched.first_answer(addon_name(0), "app-00000")
                await fleet_require(sched.port, size, result)
            finally:
                sched.stop()
            log(f"{size}: fleet-wide RequireMaintenance measured: {json.dumps(asdict(result))}")  # type: ignore[operator]
        result.db_mb = await target.size_mb()
    finally:
        await target.drop()
    return result


def fmt_ms(x: float) -> str:
    return "-" if x < 0 else (f"{x:.0f}" if x >= 10 else f"{x:.1f}")


def table(results: list[Result], load: tuple[tuple[float, ...], tuple[float, ...]]) -> str:
    rows = [
        ("planner pass, nothing due (ms)", lambda r: fmt_ms(r.idle.planner_ms), "< 200"),
        ("planner pass, 2% due (ms)", lambda r: fmt_ms(r.due.planner_ms), "< 2000"),
        ("reminder pass, nothing due (ms)", lambda r: fmt_ms(r.idle.reminder_ms), ""),
        ("reminder pass, 2% in 24 h (ms)", lambda r: fmt_ms(r.due.reminder_ms), ""),
        (
            "GetMaintenanceInfo p50/p99/max, nothing due (ms)",
            lambda r: (
                f"{fmt_ms(r.idle.api_p50_ms)} / {fmt_ms(r.idle.api_p99_ms)} / {fmt_ms(r.idle.api_max_ms)}"
            ),
            "p99 < 100, max < 1000",
        ),
        (
            "GetMaintenanceInfo p50/p99/max, 2% due (ms)",
            lambda r: f"{fmt_ms(r.due.api_p50_ms)} / {fmt_ms(r.due.api_p99_ms)} / {fmt_ms(r.due.api_max_ms)}",
            "p99 < 100, max < 1000",
        ),
        (
            "API calls / errors",
            lambda r: (
                f"{r.idle.api_calls + r.due.api_calls + r.require.api_calls} / "
                f"{r.idle.api_errors + r.due.api_errors + r.require.api_errors}"
            ),
            "",
        ),
        ("CreateAddon p50 (ms)", lambda r: fmt_ms(r.create_p50_ms), ""),
        (
            "RequireMaintenance(all): s / filed / batches / reply bytes",
            lambda r: (
                "-"
                if r.require_s < 0
                else f"{r.require_s:.1f} / {r.require_filed} / {r.require_batches} / {r.require_reply_bytes}"
            ),
            "reply < 4 MB",
        ),
        (
            "GetMaintenanceInfo p50/p99/max during it (ms)",
            lambda r: (
                "-"
                if r.require_s < 0
                else " / ".join(
                    fmt_ms(x) for x in (r.require.api_p50_ms, r.require.api_p99_ms, r.require.api_max_ms)
                )
            ),
            "p99 < 100, max < 1000",
        ),
        ("startup to first answer (s)", lambda r: f"{r.first_answer_s:.2f}", "< 3"),
        ("idle CPU over 10 s (% of a core)", lambda r: f"{r.idle_cpu_pct:.1f}", "< 10"),
        ("RSS (MB)", lambda r: f"{r.rss_mb:.0f}", ""),
        ("DB size (MB)", lambda r: f"{r.db_mb:.1f}", ""),
    ]
    head = ["", *[f"{r.size:,} ({r.store})" for r in results], "goal at 100k"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, get, goal in rows:
        lines.append("| " + " | ".join([label, *[get(r) for r in results], goal]) + " |")
    cores = os.cpu_count()
    lines.append("")
    before, after = (" ".join(f"{x:.2f}" for x in la) for la in load)
    lines.append(
        "seeded through the store in bulk (the rows CreateAddon and a completed maintenance write; "
        "not the API; on PostgreSQL then VACUUM ANALYZE, as autovacuum would); real scheduler process, "
        "gRPC on loopback; "
        f"load average {before} before, {after} after, {cores} cores"
    )
    return "\n".join(lines)


def compile_bytecode() -> str:
    """Writes __pycache__ for the project and its virtualenv (git-ignored), once per run (the interpreter's
    own library already has its bytecode)."""
    import compileall
    import site

    root = Path(__file__).resolve().parent.parent
    dirs = [root / d for d in ("server", "kvmaint", "agent")] + [Path(p) for p in site.getsitepackages()]
    for d in dirs:
        compileall.compile_dir(d, quiet=2, workers=1)
    return ", ".join(str(d) for d in dirs)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--sizes", default="1000,10000", help="add-on counts, comma-separated (default 1000,10000)"
    )
    p.add_argument(
        "--db", default=None, help="a PostgreSQL URL to create one database per size in (default: SQLite)"
    )
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--require",
        action="store_true",
        help="then time RequireMaintenance for the whole fleet (files ~96%%)",
    )
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rng = random.Random(args.seed)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fleet-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    # An installed kvmaint has its bytecode compiled (pip does it); here PYTHONDONTWRITEBYTECODE may be set,
    # and then every scheduler start would compile ~550 modules from source before its first answer.
    compiled = compile_bytecode()
    say(f"bytecode compiled beforehand for {compiled} (as an installed package has it)")
    load_before = os.getloadavg()
    results = [await run_size(n, args.db, workdir, rng, say, args.require) for n in sizes]
    load_after = os.getloadavg()
    if args.json:
        print(
            json.dumps(
                {"results": [asdict(r) for r in results], "load": [load_before, load_after], "goals": GOALS}
            )
        )
    else:
        print(table(results, (load_before, load_after)))


if __name__ == "__main__":
    asyncio.run(main())

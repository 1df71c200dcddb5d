"""Follow benchmark: do applications that know nothing of kvmaint follow its maintenances?

Each contender is a switchover and a client: kvmaint's planned maintenance (its clients discover the
primary through the scheduler's Sentinel-compatible endpoint, or through kvmaint.client), or real
`redis-sentinel`s doing `SENTINEL FAILOVER` (the same stock clients). The client is a separate process,
one writer `SET k:i i` as fast as it can (tests/stock/sentinel_writer.py, tests/js/sentinel_writer.js,
bench/clients/kvmaint_writer.py); a write that raises is an error surfaced to the application and is
repeated. Per run: warm up, mark, trigger (spread over a second across runs), wait until the switchover
is over and the writer went on, stop it, read back every acknowledged key from the new primary.

    .venv/bin/python -m bench.follow [--runs 10] [--only NAME,...] [--verbose] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.contenders import KvmaintContender, SentinelContender
from bench.procs import Reaper, split
from bench.redisops import admin
from bench.report import machine
from bench.runs import Stat, Topology, stat
from bench.writer import missing_writes
from tests.support.stock import (
    StockWriter,
    ioredis_writer,
    kvmaint_client_writer,
    node_ready,
    old_redis_py_python,
    redis_py_writer,
)

WARMUP_WRITES = 300
TAIL_WRITES = 300
ROOT = Path(__file__).resolve().parents[1]


class ExecWriter:
    """bench/plain_writer.py (reads REDIS_URL once, nothing else) under `kvmaint apps:exec`, which restarts
    it with the new REDIS_URL after the repoint. Same interface as StockWriter; its keys carry the pid of
    each incarnation, so the result lists them for the read-back."""

    def __init__(self, scheduler: str, app: str) -> None:
        self.label = "apps:exec"
        kvmaint = str(Path(sys.executable).with_name("kvmaint"))
        program = [sys.executable, str(ROOT / "bench" / "plain_writer.py")]
        self.argv = [kvmaint, "--scheduler", scheduler, "apps:exec", "-a", app, "--grace", "5", "--"]
        self.argv += program
        self.proc: asyncio.subprocess.Process | None = None
        self.acked = 0
        self.keys: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.last_where = ""
        self.marked: float | None = None
        self.longest = self.baseline = 0.0
        self._last: float | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> ExecWriter:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            words = raw.decode(errors="replace").split()
            if len(words) == 4 and words[0] == "ack":
                key, where, t = words[1], words[2], float(words[3])
                if self._last is not None:
                    gap = t - self._last
                    if self.marked is not None and t >= self.marked:
                        self.longest = max(self.longest, gap)
                    else:
                        self.baseline = max(self.baseline, gap)
                self._last = t
                self.keys.append((key, key.rsplit(":", 1)[1]))
                self.last_where = where
                self.acked += 1
            elif len(words) == 3 and words[0] == "error" and len(self.errors) < 1000:
                self.errors.append(words[1])

    async def mark(self) -> None:
        self.marked = time.monotonic()

    async def stop(self, timeout: float = 20.0) -> dict[str, Any]:
        assert self.proc is not None and self._reader is not None
        self.proc.terminate()  # apps:exec passes it on to the program and exits when it has
        await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.wait_for(self._reader, timeout)
        return {
            "acked": self.acked,
            "errors": len(self.errors),
            "error_samples": sorted(set(self.errors))[:3],
            "longest_pause_ms": round(self.longest * 1000, 1),
            "baseline_pause_ms": round(self.baseline * 1000, 1),
            "port": int(self.last_where.rsplit(":", 1)[1]) if self.last_where else 0,
            "role": "master",  # checked below: the last acknowledgement came from the new primary
            "keys": self.keys,
        }

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


async def lost_keys(address: str, keys: list[tuple[str, str]], chunk: int = 10_000) -> int:
    client = admin(address, 30)  # with the add-on's credentials on kvmaint's servers
    lost = 0
    try:
        for start in range(0, len(keys), chunk):
            part = keys[start : start + chunk]
            values = await client.mget([k for k, _ in part])
            lost += sum(v != want for (_, want), v in zip(part, values, strict=True))
    finally:
        await client.aclose()
    return lost


class KvmaintSentinel(KvmaintContender):
    scheduler_args = ["--sentinel-listen", "127.0.0.1:0"]


Switch = KvmaintSentinel | SentinelContender
# A client, given the switchover (for its addresses) and the topology: the writer process to run.
ClientFn = Callable[[Any, Topology], StockWriter]


def _kvmaint_sentinel(s: KvmaintSentinel) -> tuple[str, str]:
    return f"127.0.0.1:{s.sentinel_port}", s.addon


def _real_sentinel(s: SentinelContender) -> tuple[str, str]:
    return f"127.0.0.1:{s.sentinels[0]}", "mymaster"


@dataclass
class Contender:
    name: str
    switch: str  # "kvmaint" or "sentinel"
    client: ClientFn


def contenders(old_python: str, node: str) -> list[Contender]:
    def sentinel_of(s: Any) -> tuple[str, str]:
        return _kvmaint_sentinel(s) if isinstance(s, KvmaintSentinel) else _real_sentinel(s)

    def py(python: str, retry: bool) -> ClientFn:
        return lambda s, topo: redis_py_writer(
            python, *sentinel_of(s), retry=retry, url=getattr(s, "redis_url", "")
        )

    def js() -> ClientFn:
        return lambda s, topo: ioredis_writer(node, *sentinel_of(s), url=getattr(s, "redis_url", ""))

    out = []
    for switch in ("kvmaint", "sentinel"):
        out += [
            Contender(f"{switch}: redis-py 8.1 Sentinel + Retry", switch, py(sys.executable, True)),
            Contender(f"{switch}: redis-py 8.1 Sentinel, no Retry", switch, py(sys.executable, False)),
            Contender(f"{switch}: redis-py 5.3 Sentinel + Retry", switch, py(old_python, True)),
            Contender(f"{switch}: ioredis Sentinel", switch, js()),
        ]

    def own(s: Any, topo: Topology) -> StockWriter:
        return kvmaint_client_writer(s.address, s.APP)

    def exec_(s: Any, topo: Topology) -> Any:
        return ExecWriter(s.address, s.APP)

    out.insert(4, Contender("kvmaint: kvmaint.client", "kvmaint", own))
    out.insert(5, Contender("kvmaint: plain program under apps:exec", "kvmaint", exec_))
    return out


@dataclass
class Run:
    contender: str
    run: int
    ok: bool
    failure: str = ""
    acked: int = 0
    errors: int = 0
    lost: int | None = None
    longest_pause_ms: float | None = None
    baseline_pause_ms: float | None = None
    on_new_primary: bool = False
    # What kvmaint reports about the same switchover (data:maintenances:info): the server's pause, and the
    # time until apps could reach the new primary; None for real Sentinel.
    write_pause_ms: float | None = None
    redirect_ms: float | None = None
    error_samples: list[str] = field(default_factory=list)


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.02)


async def run_once(c: Contender, switch: Switch, run: int, runs: int, rng: random.Random) -> Run:
    topo = await asyncio.wait_for(switch.prepare(run), 180)
    writer = c.client(switch, topo)
    await writer.start()
    try:
        await _until(lambda: writer.acked >= WARMUP_WRITES, 30, "writer warm-up")
        await asyncio.sleep((run + rng.random()) / runs)  # the trigger moves over a second across runs
        await writer.mark()
        await asyncio.wait_for(switch.trigger(topo), 30)
        done = await asyncio.wait_for(switch.wait_switched(topo), switch.run_timeout)
        mark = writer.acked
        await _until(lambda: writer.acked >= mark + TAIL_WRITES, 30, "writer going on after the switch")
        result = await writer.stop()
    finally:
        writer.kill()
    r = Run(c.name, run, ok=done.ok, failure=done.failure)
    r.acked, r.errors, r.error_samples = result["acked"], result["errors"], result["error_samples"][:3]
    r.longest_pause_ms, r.baseline_pause_ms = result["longest_pause_ms"], result["baseline_pause_ms"]
    new_primary = done.new_primary
    on_new = bool(new_primary) and result["port"] == split(new_primary)[1]
    r.on_new_primary = on_new and result["role"] == "master"
    if not new_primary:
        r.lost = None
    elif "keys" in result:
        r.lost = await lost_keys(new_primary, result["keys"])
    else:
        r.lost = len(await missing_writes(new_primary, r.acked))
    r.write_pause_ms = done.figures.get("write_pause_ms")
    r.redirect_ms = done.figures.get("redirect_ms")
    return r


def _num(v: float | None) -> str:
    return "-" if v is None else (str(int(v)) if v == int(v) else f"{v:.1f}")


def _triple(s: Stat | None) -> str:
    return "-" if s is None else f"{_num(s.min)} / {_num(s.median)} / {_num(s.max)}"


def table(results: dict[str, list[Run]]) -> str:
    header = ("contender", "longest write pause ms", "kvmaint redirect_ms", "kvmaint write_pause_ms",
              "errors surfaced", "acked writes lost", "on new primary",
              "pause before trigger ms")  # fmt: skip
    rows = [header]
    for name, runs in results.items():
        rows.append(
            (
                name,
                _triple(stat([r.longest_pause_ms for r in runs])),
                _triple(stat([r.redirect_ms for r in runs])),
                _triple(stat([r.write_pause_ms for r in runs])),
                _triple(stat([float(r.errors) for r in runs])),
                _triple(stat([None if r.lost is None else float(r.lost) for r in runs])),
                f"{sum(r.on_new_primary for r in runs)}/{len(runs)}",
                _triple(stat([r.baseline_pause_ms for r in runs])),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def bench(args: argparse.Namespace) -> dict[str, list[Run]]:
    rng = random.Random(args.seed)
    old_python = str(await asyncio.to_thread(old_redis_py_python))
    node = await asyncio.to_thread(node_ready)
    chosen = [c for c in contenders(old_python, node) if not args.only or any(o in c.name for o in args.only)]
    results: dict[str, list[Run]] = {}
    for kind in ("kvmaint", "sentinel"):
        group = [c for c in chosen if c.switch == kind]
        if not group:
            continue
        reaper = Reaper()
        switch: Switch = KvmaintSentinel() if kind == "kvmaint" else SentinelContender()
        try:
            await switch.setup(reaper, args.workdir)
            for c in group:
                results[c.name] = []
                for run in range(args.runs):
                    try:
                        r = await run_once(c, switch, run, args.runs, rng)
                    except Exception as exc:
                        r = Run(c.name, run, ok=False, failure=f"{type(exc).__name__}: {exc}")
                    results[c.name].append(r)
                    if args.verbose:
                        print(json.dumps(asdict(r)), file=sys.stderr, flush=True)
                print(f"done: {c.name}", file=sys.stderr, flush=True)
        finally:
            await switch.teardown()
            reaper.close()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.follow", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10, help="switchovers per contender (default 10)")
    p.add_argument("--only", type=lambda s: [x.strip() for x in s.split(",") if x.strip()], default=[],
                   help="contenders whose name contains any of these (comma-separated)")  # fmt: skip
    p.add_argument("--verbose", action="store_true", help="one JSON line per run on stderr")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--workdir", type=Path, help="where logs go (default: a temporary directory, removed)")
    p.add_argument("--seed", type=int)
    args = p.parse_args(argv)
    keep = args.workdir is not None
    args.workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kvmaint-follow-"))
    load_before = os.getloadavg()
    try:
        results = asyncio.run(bench(args))
    finally:
        if not keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    load_after = os.getloadavg()
    info = {**machine(), "load_before": " ".join(f"{x:.2f}" for x in load_before),
            "load_after": " ".join(f"{x:.2f}" for x in load_after)}  # fmt: skip
    if args.json:
        print(json.dumps({"machine": info, "runs": {k: [asdict(r) for r in v] for k, v in results.items()}}))
    else:
        print(table(results))
        print()
        failed = [f"{r.contender} run {r.run}: {r.failure}" for v in results.values() for r in v if not r.ok]
        for line in failed:
            print("failed:", line)
        print("machine:", ", ".join(f"{k} {v}" for k, v in info.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

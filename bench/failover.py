"""Failover benchmark: kvmaint's planned maintenance against Redis's FAILOVER and Sentinel, side by side.

Each contender gets a fresh set of real processes on free loopback ports, then `--runs` switchovers
under one writer that writes as fast as it can; see bench/README.md for what each figure means.

    .venv/bin/python -m bench.failover [--runs 5] [--only kvmaint,redis,sentinel] [--verbose] [--json]
    .venv/bin/python bench/failover.py ...   (the same)

Progress goes to stderr; the table (or JSON) to stdout. Everything started is stopped at the end, also on
Ctrl-C, SIGTERM or an error.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import FrameType

if not __package__:  # run as a file (python bench/failover.py) rather than with -m
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.contenders import CONTENDERS
from bench.procs import Reaper
from bench.report import Row, machine, run_line, summarize, table
from bench.runs import Contender, RunResult, run_once

# Whole-benchmark bound, on top of each run's own timeouts.
TOTAL_TIMEOUT = 3600.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.failover", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="switchovers per contender (default 5)")
    p.add_argument(
        "--only",
        default=",".join(CONTENDERS),
        help=f"comma-separated contenders (default {','.join(CONTENDERS)})",
    )
    p.add_argument(
        "--seconds-before", type=float, default=2.0, help="writer warm-up before the trigger (default 2)"
    )
    p.add_argument("--verbose", action="store_true", help="also print one line per run")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--workdir", type=Path, help="where logs and data go (default: a temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs) afterwards")
    p.add_argument("--seed", type=int, help="seed of the trigger jitter")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown or not names:
        p.error(f"unknown contender(s) {unknown}; choose from {', '.join(CONTENDERS)}")
    if args.runs < 1:
        p.error("--runs must be at least 1")
    args.names = names
    return args


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def bench_contender(
    contender: Contender, args: argparse.Namespace, workdir: Path, reaper: Reaper, rng: random.Random
) -> list[RunResult]:
    """Set-up, every run, tear-down; its processes are stopped before the next contender starts."""
    own = Reaper()
    reaper.add(f"{contender.name} processes", own.close)
    results: list[RunResult] = []
    try:
        progress(f"{contender.name}: starting its processes")
        await asyncio.wait_for(contender.setup(own, workdir), 120)
        for run in range(args.runs):
            progress(f"{contender.name}: run {run + 1}/{args.runs}")
            try:
                result = await run_once(contender, run, args.runs, args.seconds_before, workdir, own, rng)
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                result = RunResult(contender.name, run, ok=False, failure=f"{type(exc).__name__}: {exc}")
            results.append(result)
            progress("  " + run_line(result))
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        for run in range(len(results), args.runs):
            results.append(RunResult(contender.name, run, ok=False, failure=f"set-up failed: {exc!r}"))
    finally:
        try:
            await asyncio.wait_for(contender.teardown(), 10)
        except Exception as exc:
            progress(f"{contender.name}: tear-down: {exc!r}")
        for problem in await asyncio.to_thread(own.close):
            progress(f"{contender.name}: cleanup: {problem}")
    return results


async def bench(args: argparse.Namespace, workdir: Path, reaper: Reaper) -> dict[str, list[RunResult]]:
    rng = random.Random(args.seed)
    out: dict[str, list[RunResult]] = {}
    for name in args.names:
        contender: Contender = CONTENDERS[name]()
        out[name] = await bench_contender(contender, args, workdir, reaper, rng)
    return out


def surprising(results: dict[str, list[RunResult]]) -> bool:
    """kvmaint losing a write, showing two masters or failing is a bug: keep the logs for it."""
    return any(not r.ok or r.lost or r.max_masters >= 2 for r in results.get("kvmaint", []))


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kvmaint-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()
    reaper = Reaper()
    atexit.register(reaper.close)  # a last resort; normally the `finally` below has emptied it
    results: dict[str, list[RunResult]] = {}
    keep = args.keep
    try:
        results = asyncio.run(asyncio.wait_for(bench(args, workdir, reaper), TOTAL_TIMEOUT))
    except KeyboardInterrupt:
        progress("interrupted: stopping everything")
        keep = True
        return 130
    finally:
        # A second Ctrl-C must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for problem in reaper.close():
            progress(f"cleanup: {problem}")
        keep = keep or surprising(results)
        if keep:
            progress(f"logs kept in {workdir}")
        elif args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    rows: list[Row] = []
    for name, runs in results.items():
        rows += summarize(name, CONTENDERS[name].anchors, runs)
    if args.json:
        doc = {
            "machine": machine(),
            "settings": {"runs": args.runs, "seconds_before": args.seconds_before, "contenders": args.names},
            "summary": [r.to_json() for r in rows],
            "runs": {name: [r.to_json() for r in runs] for name, runs in results.items()},
        }
        print(json.dumps(doc, indent=2))
    else:
        facts = machine()
        print("  ".join(f"{k}: {v}" for k, v in facts.items()))
        print()
        print(table(rows))
        if args.verbose:
            print()
            for runs in results.values():
                for r in runs:
                    print(run_line(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())

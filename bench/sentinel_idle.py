"""What idle Sentinel connections cost the scheduler: RSS and CPU of a real scheduler process before and
after N idle client connections (default 1,000) to its --sentinel-listen endpoint, each of which has
sent one PING, held for a while.

    .venv/bin/python -m bench.sentinel_idle [--connections 1000] [--hold 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.scheduler import SchedulerProcess


def usage(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds user+system) of `pid`, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return rss, (int(fields[11]) + int(fields[12])) / tick


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--hold", type=float, default=10.0, help="seconds to hold them idle (default 10)")
    args = p.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        s = SchedulerProcess(Path(tmp) / "state.db", Path(tmp), ["--sentinel-listen", "127.0.0.1:0"]).start()
        try:
            assert s.proc is not None
            pid = s.proc.pid
            await asyncio.sleep(2)  # let start-up settle before the baseline
            rss0, cpu0 = usage(pid)
            t0 = time.monotonic()
            idle0 = usage(pid)[1]
            await asyncio.sleep(args.hold)
            idle_cpu = (usage(pid)[1] - idle0) / (time.monotonic() - t0)
            conns = []
            for _ in range(args.connections):
                r, w = await asyncio.open_connection("127.0.0.1", s.sentinel_port)
                w.write(b"*1\r\n$4\r\nPING\r\n")
                await w.drain()
                assert await r.readline() == b"+PONG\r\n"
                conns.append((r, w))
            cpu1 = usage(pid)[1]
            t1 = time.monotonic()
            await asyncio.sleep(args.hold)
            held_cpu = (usage(pid)[1] - cpu1) / (time.monotonic() - t1)
            rss2 = usage(pid)[0]
            each = (rss2 - rss0) * 1024 / args.connections
            print(
                f"scheduler RSS: {rss0:.1f} MiB before, {rss2:.1f} MiB with {args.connections} idle "
                f"Sentinel connections (+{each:.1f} KiB each)"
            )
            print(
                f"CPU: {idle_cpu * 100:.2f}% of a core idle before, {held_cpu * 100:.2f}% while they were "
                f"held {args.hold:g} s; accepting them took {cpu1 - cpu0:.2f} s of CPU"
            )
            print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores")
            for _, w in conns:
                w.close()
        finally:
            s.stop()


if __name__ == "__main__":
    asyncio.run(main())

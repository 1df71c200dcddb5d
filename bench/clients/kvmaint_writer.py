"""The same writer as tests/stock/sentinel_writer.py, on `kvmaint.client` (which follows WatchConfigVars
and READONLY) instead of Sentinel: `progress N` lines, then `result {json}` when stdin closes."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kvmaint.client import attach


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scheduler", required=True)
    p.add_argument("--app", required=True)
    p.add_argument("--var", default="REDIS_URL")
    args = p.parse_args()
    r = await attach(args.scheduler, args.app, args.var)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    marks: list[float] = []  # a line on stdin marks "the switchover starts now"; EOF stops

    def on_stdin() -> None:
        if sys.stdin.buffer.read1(4096):
            marks.append(time.monotonic())
        else:
            stop.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    acked, errors, samples = 0, 0, []
    longest, baseline, last_ack, next_report = 0.0, 0.0, time.monotonic(), 0.0
    while not stop.is_set():
        try:
            await r.set(f"k:{acked}", acked)
        except Exception as exc:
            errors += 1
            if len(samples) < 20:
                samples.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.001)
            continue
        now = time.monotonic()
        if marks and now >= marks[0]:
            longest = max(longest, now - last_ack)
        else:
            baseline = max(baseline, now - last_ack)
        last_ack = now
        acked += 1
        if now >= next_report:
            print(f"progress {acked}", flush=True)
            next_report = now + 0.05
    server = await r.info("server")
    role = (await r.execute_command("ROLE"))[0]
    print(
        "result "
        + json.dumps(
            {
                "client": "kvmaint.client",
                "retry": True,
                "acked": acked,
                "errors": errors,
                "error_samples": samples,
                "longest_pause_ms": round(longest * 1000, 1),
                "baseline_pause_ms": round(baseline * 1000, 1),
                "port": int(server["tcp_port"]),
                "role": role.decode() if isinstance(role, bytes) else role,
            }
        ),
        flush=True,
    )
    await r.aclose()


if __name__ == "__main__":
    asyncio.run(main())

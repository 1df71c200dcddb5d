"""The write loop every stock writer runs, whatever client it is handed: no kvmaint code, so it runs
under any redis-py version and in a venv without kvmaint.

Writes `SET k:i i` one after another; a write that raises is counted as an error surfaced to the
application and repeated (same key and value) 1 ms later, so an acknowledged write is never skipped.
A line on stdin marks "the switchover starts now"; EOF stops. Prints `progress N` lines, then one
`result {json}` line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any


async def write_until_eof(r: Any, label: dict[str, Any]) -> None:
    """Runs the loop on client `r`; `label` ({"client": ..., "retry": ...}) heads the result."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    marks: list[float] = []

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
        except Exception as exc:  # every error the application sees
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
    result = {
        **label,
        "acked": acked,
        "errors": errors,
        "error_samples": samples,
        "longest_pause_ms": round(longest * 1000, 1),
        "baseline_pause_ms": round(baseline * 1000, 1),
        "port": int(server["tcp_port"]),
        "role": role.decode() if isinstance(role, bytes) else role,
    }
    print("result " + json.dumps(result), flush=True)
    await r.aclose()

"""A stock redis-py application that finds its primary through Sentinel and writes in a loop.

No kvmaint code: only `redis.asyncio.sentinel.Sentinel`, configured the way its documentation shows,
so the same file runs under any redis-py version (the tests run it with the project's redis-py and with
5.3.x from a separate venv). Writes `SET k:i i` one after another; a write that raises is counted as an
error surfaced to the application and repeated (same key and value) 1 ms later, so an acknowledged write
is never skipped. Prints `progress N` lines, and when stdin closes, one `result {json}` line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError, TimeoutError


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sentinel", required=True, help="HOST:PORT")
    p.add_argument("--name", required=True, help="master name")
    p.add_argument("--retry", action="store_true", help="Retry on connection errors (redis-py's Retry)")
    p.add_argument("--password", default=None, help="Sentinel AUTH token")
    args = p.parse_args()
    host, port = args.sentinel.rsplit(":", 1)
    # redis-py's documented way to retry on connection errors: a Retry, and (needed before 6.0, where
    # the client re-raises errors not listed here) the same errors in retry_on_error.
    if args.retry:
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.01), 10, (ConnectionError, TimeoutError))
        retry_on_error = [ConnectionError, TimeoutError]
    else:
        retry, retry_on_error = Retry(NoBackoff(), 0), []
    sentinel = Sentinel(
        [(host, int(port))],
        sentinel_kwargs={"password": args.password, "socket_timeout": 5},
        socket_timeout=5,
    )
    r = sentinel.master_for(args.name, retry=retry, retry_on_error=retry_on_error)

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
    longest, baseline, last_ack = 0.0, 0.0, time.monotonic()
    next_report = 0.0
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
        "client": f"redis-py {redis.__version__}",
        "retry": args.retry,
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


if __name__ == "__main__":
    asyncio.run(main())

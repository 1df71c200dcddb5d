"""A plain Redis writer that knows nothing of kvmaint: it reads REDIS_URL once, as a Heroku dyno does.

Run it under `kvmaint apps:exec`, which restarts it with the new REDIS_URL after a maintenance:

    kvmaint apps:exec -a example-app -- python bench/plain_writer.py

It writes `SET PREFIX:PID:i i` (i = 0, 1, ...) one after the other, retrying a failed write 1 ms later
on the same URL (it has no other), and prints one line per fact on stdout, for a benchmark or a test:

    start PID URL T          once, when it starts
    ack KEY HOST:PORT T      a write acknowledged, and by which server
    error NAME T             a write failed (an error the app saw); it is retried
    stop PID T               SIGTERM or SIGINT: the write in flight finished, nothing more is sent

T is time.monotonic() (one clock for every process on the host). Environment: REDIS_URL (required),
PLAIN_WRITER_PREFIX (default "plain"), PLAIN_WRITER_INTERVAL seconds between writes (default 0).
No kvmaint import, on purpose: this is the program the issue says must follow a maintenance.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from types import FrameType

import redis


def main() -> int:
    url = os.environ["REDIS_URL"]
    prefix = os.environ.get("PLAIN_WRITER_PREFIX", "plain")
    interval = float(os.environ.get("PLAIN_WRITER_INTERVAL", "0"))
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    out = sys.stdout
    pid = os.getpid()
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    kwargs = client.connection_pool.connection_kwargs
    where = f"{kwargs.get('host')}:{kwargs.get('port')}"  # the URL's server: the only one it knows
    print(f"start {pid} {url} {time.monotonic():.6f}", file=out, flush=True)
    i = 0
    while not stopping:
        key = f"{prefix}:{pid}:{i}"
        try:
            client.set(key, i)
        except (redis.RedisError, OSError) as err:
            print(f"error {type(err).__name__} {time.monotonic():.6f}", file=out, flush=True)
            time.sleep(0.001)
            continue
        print(f"ack {key} {where} {time.monotonic():.6f}", file=out, flush=True)
        i += 1
        if interval:
            time.sleep(interval)
    print(f"stop {pid} {time.monotonic():.6f}", file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The example app `kvmaint-local` (scripts/dev.sh) runs under `kvmaint apps:exec`.

It knows nothing of kvmaint: like a Heroku dyno it reads `REDIS_URL` once, at start, and writes to it
continuously (`INCR example:counter`, about 20 a second); once a second it prints one line with the
server it writes to, the counter and how many writes succeeded or failed in that second. Through a
maintenance a person sees `apps:exec` restart it on the new primary and the counter carry on.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import redis

KEY = "example:counter"
WRITE_INTERVAL = 0.05


def _where(url: str) -> str:
    """host:port of a redis URL (never its password)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}"


def main() -> int:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        print("example app: REDIS_URL is not set (run it under kvmaint apps:exec)", file=sys.stderr)
        return 2
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    where = _where(url)
    # A rediss:// URL (a TLS fleet) is verified with the CA in REDIS_CA_FILE (kvmaint-local --tls sets it).
    tls = {"ssl_ca_certs": os.environ["REDIS_CA_FILE"]} if url.startswith("rediss://") else {}
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, **tls)
    print(f"app: started, writing INCR {KEY} to {where} (REDIS_URL)", flush=True)
    ok = errors = 0
    counter: int | None = None
    last_error = ""
    next_report = time.monotonic() + 1.0
    try:
        while not stopping:
            try:
                counter = int(client.incr(KEY))
                ok += 1
            except redis.RedisError as err:
                errors += 1
                last_error = f" (last: {type(err).__name__}: {str(err)[:60]})"
            time.sleep(WRITE_INTERVAL)
            if time.monotonic() >= next_report:
                now = datetime.now(UTC).strftime("%H:%M:%S")
                print(
                    f"app: {now} {where} counter={counter} writes ok={ok} errors={errors}"
                    f"{last_error if errors else ''}",
                    flush=True,
                )
                ok = errors = 0
                last_error = ""
                next_report += 1.0
    except OSError:
        return 1  # the terminal went away (EIO/EPIPE): nothing left to show
    finally:
        client.close()
    print(f"app: stopped (counter={counter})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

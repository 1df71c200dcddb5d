"""A writer process that records every acknowledged write, and the check of them on the final primary.

Run as `python -m tests.support.writer --scheduler ADDR --app APP --out FILE [--token T]`. It attaches
with `kvmaint.client` (the app's way of following the primary) and writes `SET fault:w:i i`
sequentially; write i+1 is sent only once write i was acknowledged, and `i t` (t: CLOCK_MONOTONIC
seconds, comparable across processes) is appended to FILE (flushed) only after its acknowledgement. A write that fails is retried (SET is idempotent) and counts only once
acknowledged. Prints `ready` after the first acknowledgement; stops on SIGTERM.

`lost_writes(FILE, url)` reads every acknowledged key back from the server at `url`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis
import redis.asyncio as aioredis

from kvmaint.client import attach

ROOT = Path(__file__).resolve().parents[2]
KEY = "fault:w:{}"


async def _run(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    client = await attach(args.scheduler, args.app, args.var, token=args.token, failover_wait=3600)
    out = open(args.out, "a", buffering=1)  # noqa: ASYNC230 - one tiny line per acknowledgement
    i = 0
    try:
        while not stop.is_set():
            try:
                await client.set(KEY.format(i), str(i))
            except (redis.exceptions.RedisError, OSError):
                await asyncio.sleep(0.001)
                continue
            out.write(f"{i} {time.monotonic():.6f}\n")
            if i == 0:
                print("ready", flush=True)
            i += 1
            if args.interval:
                await asyncio.sleep(args.interval)
    finally:
        out.close()
        await client.aclose()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scheduler", required=True)
    p.add_argument("--app", required=True)
    p.add_argument("--var", default="REDIS_URL")
    p.add_argument("--token", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--interval", type=float, default=0.0)
    asyncio.run(_run(p.parse_args()))


@dataclass
class WriterProcess:
    scheduler: str
    app: str
    out: Path
    token: str | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> WriterProcess:
        cmd = [sys.executable, "-m", "tests.support.writer", "--scheduler", self.scheduler]
        cmd += ["--app", self.app, "--out", str(self.out)]
        if self.token:
            cmd += ["--token", self.token]
        log = open(self.out.with_suffix(".log"), "ab")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until the first acknowledgement (or exit)
        if line.strip() != b"ready":
            raise RuntimeError(f"writer did not start: {self.out.with_suffix('.log').read_text()[-2000:]}")
        return self

    def acks(self) -> list[tuple[int, float]]:
        """(index, monotonic time) of every acknowledged write so far."""
        text = self.out.read_text() if self.out.exists() else ""
        rows = [line.split() for line in text.splitlines()]
        return [(int(r[0]), float(r[1])) for r in rows if len(r) == 2]

    def acknowledged(self) -> list[int]:
        return [i for i, _ in self.acks()]

    def max_gap(self, since: float, until: float) -> float:
        """The longest time (s) without an acknowledgement between monotonic times since and until."""
        times = [since] + [t for _, t in self.acks() if since < t < until] + [until]
        return max(b - a for a, b in itertools.pairwise(times))

    def stop(self) -> list[int]:
        """Stops the writer and returns every acknowledged write's index."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.acknowledged()


async def lost_writes(acknowledged: list[int], url: str) -> list[int]:
    """The acknowledged writes the server at `url` does not hold."""
    r = aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=10)
    lost: list[int] = []
    try:
        for start in range(0, len(acknowledged), 5000):
            chunk = acknowledged[start : start + 5000]
            values = await r.mget([KEY.format(i) for i in chunk])
            lost += [i for i, v in zip(chunk, values, strict=True) if v != str(i)]
    finally:
        await r.aclose()
    return lost


def wait_count(writer: WriterProcess, more_than: int, timeout: float = 20.0) -> None:
    """Polls until the writer acknowledged more than `more_than` writes (it is still writing)."""
    deadline = time.monotonic() + timeout
    while len(writer.acknowledged()) <= more_than:
        if time.monotonic() > deadline:
            raise AssertionError(f"the writer acknowledged no more than {more_than} writes in {timeout}s")
        time.sleep(0.02)


if __name__ == "__main__":
    main()

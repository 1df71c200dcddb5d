"""A ROLE sampler process over every server of an add-on, proving two-master moments with a write each.

Run as `python -m tests.support.sampler --out FILE HOST:PORT ...`. Every ~2 ms it asks each server
ROLE. A round where two or more answer `master` is only a suspicion (the reads are not simultaneous);
it becomes a **two-master moment** when a test write (`SET fault:probe:N`) to each of those masters is
acknowledged, i.e. both really accepted writes at once. Prints `ready` once every server was read;
on SIGTERM writes a JSON summary (`SamplerSummary`) to FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 0.002


@dataclass
class SamplerSummary:
    servers: list[str]
    rounds: int = 0
    suspected_rounds: int = 0
    two_master_moments: int = 0
    # (seconds since start, masters that both acknowledged a write), the first few.
    examples: list[tuple[float, list[str]]] = field(default_factory=list)


NO_RETRY = Retry(NoBackoff(), 0)  # a down server reads as down at once, not after backoffs


def _client(server: str) -> redis.Redis:
    """`server`: a URL with the add-on's credentials (managed servers require them), or HOST:PORT."""
    if "://" in server:
        return redis.Redis.from_url(server, socket_timeout=0.5, socket_connect_timeout=0.5, retry=NO_RETRY)
    host, port = server.rsplit(":", 1)
    return redis.Redis(
        host=host, port=int(port), socket_timeout=0.5, socket_connect_timeout=0.5, retry=NO_RETRY
    )


def _role(client: redis.Redis) -> str:
    try:
        return str(client.execute_command("ROLE")[0], "ascii", "replace")
    except (redis.exceptions.RedisError, OSError):
        return "down"


def _accepts_write(client: redis.Redis, key: str) -> bool:
    try:
        return bool(client.set(key, "probe"))
    except (redis.exceptions.RedisError, OSError):
        return False


def sample(servers: list[str], out: Path) -> None:
    stopping = False

    def stop(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    summary = SamplerSummary(servers)
    clients = {s: _client(s) for s in servers}
    started = time.monotonic()
    first = True
    while not stopping:
        roles = {s: _role(c) for s, c in clients.items()}
        summary.rounds += 1
        if first:
            print("ready", flush=True)
            first = False
        masters = [s for s, r in roles.items() if r == "master"]
        if len(masters) >= 2:
            summary.suspected_rounds += 1
            key = f"fault:probe:{summary.rounds}"
            if all(_accepts_write(clients[s], key) for s in masters):
                summary.two_master_moments += 1
                if len(summary.examples) < 10:
                    summary.examples.append((round(time.monotonic() - started, 3), masters))
        time.sleep(INTERVAL)
    out.write_text(json.dumps(asdict(summary)))


@dataclass
class SamplerProcess:
    servers: list[str]
    out: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SamplerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.sampler", "--out", str(self.out), *self.servers],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("the ROLE sampler did not start")
        return self

    def stop(self) -> SamplerSummary:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(15)
        data = json.loads(self.out.read_text())
        return SamplerSummary(**data)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("servers", nargs="+")
    args = p.parse_args()
    sample(args.servers, args.out)


if __name__ == "__main__":
    main()

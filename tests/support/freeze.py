"""Stops a process at an exact point, from outside: no hook inside the product.

`step_until(pid, reached)` freezes the process (SIGSTOP) and lets it run in short slices (SIGCONT, a
fraction of a millisecond, SIGSTOP), checking `reached()` between slices, so the process is left frozen
within one slice of the point: a step of the durable state (read from the scheduler's SQLite file), or a
Redis-visible point of a switchover (paused, demoted, promoted; see `points`). The caller then kills it
there, or resumes it (`resume`).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

SLICE_SECONDS = 0.0003


def freeze(pid: int) -> None:
    os.kill(pid, signal.SIGSTOP)


def resume(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


class PointMissed(AssertionError):
    """The process went through a passing point (a pause) within one slice: a loaded machine let the slice
    run long. The case must start over; the process is left running."""


def step_until(
    pid: int,
    reached: Callable[[], bool],
    timeout: float = 60.0,
    slice_seconds: float = SLICE_SECONDS,
    passed: Callable[[], bool] | None = None,
) -> float:
    """Runs `pid` in slices until `reached()`; leaves it frozen and returns how long that took.

    `passed()`, for a point that does not last: true once the process is beyond it (PointMissed). The
    stepping thread asks for real-time priority where it may (root), so that a slice ends when it should
    rather than when a busy machine next schedules the test.
    """
    started = time.monotonic()
    with _prompt_wakeups():
        freeze(pid)
        while not reached():
            if passed is not None and passed():
                resume(pid)
                raise PointMissed(f"process {pid} went past the point within one slice")
            if time.monotonic() - started > timeout:
                resume(pid)
                raise AssertionError(f"process {pid} did not reach the point within {timeout:.0f}s")
            os.kill(pid, signal.SIGCONT)
            time.sleep(slice_seconds)
            os.kill(pid, signal.SIGSTOP)
    return time.monotonic() - started


@contextmanager
def _prompt_wakeups() -> Iterator[None]:
    """SCHED_FIFO for the calling thread while it steps (Linux applies it per thread), back after."""
    try:
        before = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (OSError, AttributeError):
        yield  # not permitted here: slices may run long under load, and PointMissed says so
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, before[0], before[1])


def wait_for(reached: Callable[[], bool], timeout: float = 60.0, interval: float = 0.0005) -> None:
    """Polls (tightly) until `reached()`; for points reached by processes left running."""
    deadline = time.monotonic() + timeout
    while not reached():
        if time.monotonic() > deadline:
            raise AssertionError(f"point not reached within {timeout:.0f}s")
        time.sleep(interval)


# --- points ------------------------------------------------------------------------------------------

NO_RETRY = Retry(NoBackoff(), 0)


def _redis(server: str) -> redis.Redis:
    """`server`: a URL with the add-on's credentials (managed servers require them), or HOST:PORT."""
    if "://" in server:
        return redis.Redis.from_url(server, socket_timeout=0.5, socket_connect_timeout=0.5, retry=NO_RETRY)
    host, port = server.rsplit(":", 1)
    return redis.Redis(
        host=host, port=int(port), socket_timeout=0.5, socket_connect_timeout=0.5, retry=NO_RETRY
    )


def role_is(server: str, role: str) -> Callable[[], bool]:
    """ROLE of `server` answers `role` (master/slave): demoted (old primary `slave`), promoted (target
    `master`)."""
    client = _redis(server)

    def check() -> bool:
        try:
            return bool(str(client.execute_command("ROLE")[0], "ascii") == role)
        except (redis.exceptions.RedisError, OSError):
            return False

    return check


def paused(server: str) -> Callable[[], bool]:
    """The server holds writers blocked (redis 7.0 shows a CLIENT PAUSE only through the clients it
    blocks: run with the fault writer going, a pause shows within one write)."""
    client = _redis(server)

    def check() -> bool:
        try:
            return int(client.info("clients").get("blocked_clients", 0)) > 0
        except (redis.exceptions.RedisError, OSError):
            return False

    return check


def durable_step(db: Path, step: str, done: bool = False) -> Callable[[], bool]:
    """The scheduler's SQLite file records a maintenance at `step` (with done: `step` finished)."""

    def check() -> bool:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2) as conn:
                rows = conn.execute("SELECT current_step, state FROM maintenances").fetchall()
        except sqlite3.Error:
            return False
        for current, state in rows:
            finished = str(json.loads(state).get("done", "")).split(",")
            if (step in finished) if done else (current == step and step not in finished):
                return True
        return False

    return check

"""Delays between tries: exponential, capped; with full jitter for reconnects, so a fleet of agents does
not reconnect in step (a server restart needs no jitter: one host's keeper restarts its own servers)."""

from __future__ import annotations

import random
from collections.abc import Callable

BASE_SECONDS = 0.2
CAP_SECONDS = 10.0


def exponential(attempt: int, base: float = BASE_SECONDS, cap: float = CAP_SECONDS) -> float:
    """min(cap, base * 2**attempt); attempt counts from 0."""
    return min(cap, base * 2.0 ** min(max(attempt, 0), 32))


def full_jitter(
    attempt: int,
    base: float = BASE_SECONDS,
    cap: float = CAP_SECONDS,
    rand: Callable[[], float] = random.random,
) -> float:
    """A delay drawn uniformly from [0, min(cap, base * 2**attempt)); attempt counts from 0."""
    return rand() * exponential(attempt, base, cap)

"""Reconnect delays: exponential backoff with full jitter, so a fleet of agents does not reconnect in step."""

from __future__ import annotations

import random
from collections.abc import Callable

BASE_SECONDS = 0.2
CAP_SECONDS = 10.0


def full_jitter(
    attempt: int,
    base: float = BASE_SECONDS,
    cap: float = CAP_SECONDS,
    rand: Callable[[], float] = random.random,
) -> float:
    """A delay drawn uniformly from [0, min(cap, base * 2**attempt)); attempt counts from 0."""
    ceiling = min(cap, base * 2.0 ** min(max(attempt, 0), 32))
    return rand() * ceiling

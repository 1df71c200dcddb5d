"""Poll for an outcome instead of sleeping a fixed time: tests stay fast when things are fast."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

Predicate = Callable[[], Any] | Callable[[], Awaitable[Any]]


async def eventually(
    predicate: Predicate,
    timeout: float = 5.0,
    interval: float = 0.02,
    message: str = "",
) -> Any:
    """Calls `predicate` (sync or async) until it returns a truthy value and returns that value.

    An AssertionError or any other exception raised by the predicate counts as "not yet"; the last one
    is chained to the final AssertionError so a failing test says what it last saw.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    last_value: Any = None
    while True:
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            last_value = value
            last_exc = None
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", "condition")
            raise AssertionError(
                f"{what} not met within {timeout:.1f}s (last value {last_value!r}, last error {last_exc!r})"
            ) from last_exc
        await asyncio.sleep(interval)

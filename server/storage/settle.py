"""Awaiting work that must not be abandoned halfway: a statement in a thread, a commit, a release."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


async def settle(step: Awaitable[T]) -> T:
    """Awaits `step` to its end even if the caller is cancelled meanwhile (a thread cannot be stopped, a
    connection must not be reused or released mid-statement), then re-raises the cancellation."""
    task = asyncio.ensure_future(step)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
        except Exception:
            break
    if cancelled:
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s failed while its caller was cancelled: %s", step, task.exception())
        raise asyncio.CancelledError
    return task.result()

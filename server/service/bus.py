"""Wakes stream subscribers when events commit; the events themselves are read from the store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class EventBus:
    """Broadcast of "the last committed sequence is now N". Subscribers re-read the store from their
    own position, so a slow subscriber never loses an event and a fast publisher never blocks."""

    def __init__(self, last_sequence: int = 0) -> None:
        self.last_sequence = last_sequence
        self._changed = asyncio.Event()

    def publish(self, sequence: int) -> None:
        if sequence > self.last_sequence:
            self.last_sequence = sequence
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_beyond(self, sequence: int, timeout: float | None = None) -> bool:
        """Returns when something after `sequence` committed (True) or on timeout (False)."""
        while self.last_sequence <= sequence:
            waiter = self._changed
            try:
                # Real time on purpose: callers pass a live stream's re-poll interval, not a decision.
                await asyncio.wait_for(waiter.wait(), timeout)
            except TimeoutError:
                return False
        return True


async def follow(
    bus: EventBus,
    step: Callable[[], Awaitable[bool]],
    position: Callable[[], int],
    poll_seconds: float,
    what: str,
    after_error: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Runs a stream reader for ever: `step` reads one batch from the store (True when it read
    something); when it had nothing, waits until something commits past `position()`. A failing step
    is logged and retried (after `after_error`, when given), so one bad read never ends the reader."""
    while True:
        try:
            if await step():
                continue
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: reading the event stream failed; retrying", what)
            if after_error is not None:
                await after_error()
                continue
        await bus.wait_beyond(position(), poll_seconds)

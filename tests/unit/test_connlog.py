"""The hub's connect/disconnect lines stay bounded in a reconnect storm: the first 20 of each kind a
second are logged one by one, the rest summed up in one line at the end of that second."""

from __future__ import annotations

import asyncio
import logging

import pytest

from kvmaint.clock import FakeClock
from server.agents.connlog import ConnectionLog


async def test_a_storm_logs_twenty_of_each_then_one_summary(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    log = logging.getLogger("test.connlog")
    caplog.set_level(logging.INFO, logger="test.connlog")
    lines = ConnectionLog(log, clock)
    for i in range(1000):
        lines.disconnected(f"h-{i}")
        lines.connected(f"h-{i}", "10.0.0.1", 2)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 40 and messages[0] == "agent h-0 disconnected"
    assert messages[1] == "agent h-0 connected (10.0.0.1, 2 servers)"
    await asyncio.sleep(0)  # the summary's task starts and sleeps on the fake clock
    await clock.advance(1.0)
    await asyncio.sleep(0)
    assert [r.getMessage() for r in caplog.records][40:] == [
        "and 980 more agents connected, 980 more disconnected (not logged one by one)"
    ]
    lines.connected("late", "10.0.0.2", 1)  # a new second: logged again
    assert caplog.records[-1].getMessage() == "agent late connected (10.0.0.2, 1 servers)"
    assert len(caplog.records) == 42

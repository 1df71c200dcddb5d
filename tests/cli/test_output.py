"""Progress display of WaitMaintenance: plain lines off a terminal, a live rich line on one."""

from __future__ import annotations

import io
import re

from kvmaint.cli.output import Progress


def view(status: str, step: str = "", elapsed: float = 1.0, lag: int = -1) -> dict[str, object]:
    return {"status": status, "step": step, "elapsed_seconds": elapsed, "standby_lag_bytes": lag, "message": ""}


def test_plain_lines_only_when_something_changes() -> None:
    stream = io.StringIO()
    with Progress(stream) as progress:
        progress.update(view("preparing", elapsed=0.5))
        progress.update(view("preparing", elapsed=0.7))  # same status and step: no new line
        progress.update(view("running", "catch_up", 2.0, 4096))
        progress.update(view("running", "failover", 3.0, 0))
    assert stream.getvalue().splitlines() == [
        "[    0.5s]  preparing",
        "[    2.0s]  running  step catch_up  standby lag 4096 bytes",
        "[    3.0s]  running  step failover  standby lag 0 bytes",
    ]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_keeps_the_last_figures_after_the_live_line() -> None:
    stream = Terminal()
    with Progress(stream) as progress:
        progress.update(view("running", "catch_up", 2.0, 10))
        progress.update(view("completed", elapsed=5.0))
    last = stream.getvalue().splitlines()[-1]
    assert re.search(r"\[ +5\.\ds\]  completed$", last), repr(last)  # after rich's cursor codes

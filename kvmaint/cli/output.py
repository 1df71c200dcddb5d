"""Where CLI text goes: results on stdout, progress and errors on stderr, so stdout pipes cleanly."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TextIO

from kvmaint.cli.format import progress_line


class Output:
    """Writes to whatever sys.stdout/sys.stderr are at call time (so in-process tests can capture)."""

    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode

    @property
    def stdout(self) -> TextIO:
        return sys.stdout

    @property
    def stderr(self) -> TextIO:
        return sys.stderr

    def line(self, text: str = "") -> None:
        print(text, file=self.stdout, flush=True)

    def note(self, text: str) -> None:
        """Information for a person, never for a script: stderr."""
        print(text, file=self.stderr, flush=True)

    def done(self, action: str) -> None:
        """Heroku's "Doing something... done", written once the action succeeded, so a failure
        leaves only its error sentence on stderr."""
        self.note(f"{action}... done")

    def json(self, obj: Any) -> None:
        self.line(json.dumps(obj, indent=2, ensure_ascii=False))

    def json_line(self, obj: Any) -> None:
        self.line(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))

    def emit(self, obj: Any, human: Callable[[], str]) -> None:
        """The JSON form with --json, else the human rendering (skipped when it is empty)."""
        if self.json_mode:
            self.json(obj)
            return
        text = human()
        if text:
            self.line(text)

    def progress(self) -> Progress:
        return Progress(self.stderr)


class Progress:
    """Live WaitMaintenance progress on stderr: one rewritten rich line on a terminal, with the elapsed
    time ticking between messages; plain lines otherwise (a new line when the status, step or message
    changes, else at most every 5 seconds)."""

    PLAIN_INTERVAL = 5.0

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._status: Any = None
        self._view: dict[str, Any] = {}
        self._received = 0.0
        self._last_key: tuple[Any, ...] | None = None
        self._last_time = 0.0

    def __enter__(self) -> Progress:
        if self._tty:
            from rich.console import Console

            self._status = Console(file=self._stream).status(self)
            self._status.start()
        return self

    def text(self) -> str:
        """The current line; on a terminal the elapsed time runs on from the last message."""
        if not self._view:
            return "Waiting for the maintenance..."
        view = dict(self._view)
        if self._status is not None:
            since = time.monotonic() - self._received
            view["elapsed_seconds"] = float(view.get("elapsed_seconds") or 0) + since
        return progress_line(view)

    def __rich__(self) -> Any:
        """Re-rendered by rich on every refresh; a Text, so brackets in messages are not markup."""
        from rich.text import Text

        return Text(self.text())

    def update(self, view: Mapping[str, Any]) -> None:
        self._view, self._received = dict(view), time.monotonic()
        if self._status is not None:
            return
        key = (view.get("status"), view.get("step"), view.get("message"))
        if key != self._last_key or self._received - self._last_time >= self.PLAIN_INTERVAL:
            print(self.text(), file=self._stream, flush=True)
            self._last_key, self._last_time = key, self._received

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._status is not None:
            self._status.stop()
            if self._view:  # the spinner line vanishes on stop; keep the last figures visible
                print(self.text(), file=self._stream, flush=True)

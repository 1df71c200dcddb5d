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
    """Live WaitMaintenance progress on stderr: one rewritten rich line on a terminal, plain lines
    otherwise (a new line when the status, step or message changes, else at most every 5 seconds)."""

    PLAIN_INTERVAL = 5.0

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._status: Any = None
        self._last_key: tuple[Any, ...] | None = None
        self._last_time = 0.0
        self._last_text = ""

    def __enter__(self) -> Progress:
        if self._tty:
            from rich.console import Console

            self._status = Console(file=self._stream).status("Waiting for the maintenance...")
            self._status.start()
        return self

    def update(self, view: Mapping[str, Any]) -> None:
        text = progress_line(view)
        if self._status is not None:
            self._status.update(text)
            self._last_text = text
            return
        key = (view.get("status"), view.get("step"), view.get("message"))
        now = time.monotonic()
        if key != self._last_key or now - self._last_time >= self.PLAIN_INTERVAL:
            print(text, file=self._stream, flush=True)
            self._last_key, self._last_time = key, now

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._status is not None:
            self._status.stop()
            if self._last_text:  # the spinner line vanishes on stop; keep the last figures visible
                print(self._last_text, file=self._stream, flush=True)

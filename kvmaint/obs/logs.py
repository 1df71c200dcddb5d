"""`--log-format text|json` for both daemons, with the maintenance a line belongs to.

Context (maintenance_id, addon, step, host) lives in a contextvar, so every line logged inside a step,
including by code that knows nothing of maintenances, carries it; asyncio copies the context into each
task it creates, so a step's helpers inherit it.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from pythonjsonlogger.json import JsonFormatter

FIELDS = ("maintenance_id", "addon", "step", "host")
FORMATS = ("text", "json")

_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "kvmaint_log_context", default=MappingProxyType({})
)


@contextlib.contextmanager
def bound(**fields: str) -> Iterator[None]:
    """Adds fields (empty ones are skipped) to every line logged inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: str) -> None:
    """Adds fields for the rest of the current task (for a task that is one connection or command)."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v}})


def current() -> dict[str, str]:
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record; static fields (the agent's host) fill the gaps."""

    def __init__(self, static: dict[str, str] | None = None) -> None:
        super().__init__()
        self.static = dict(static or {})

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in {**self.static, **_context.get()}.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def json_formatter() -> logging.Formatter:
    """One object per line: time (ISO 8601, UTC), level, logger, message, then any context fields."""
    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
    )


def configure(level: str, fmt: str, text_format: str, static: dict[str, str] | None = None) -> None:
    """Sets up the root logger on stderr in the chosen format (replacing earlier handlers)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter(static))
    handler.setFormatter(json_formatter() if fmt == "json" else logging.Formatter(text_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python's warnings become records too, so every line is one format


def extra(**fields: Any) -> dict[str, Any]:
    """`log.info(..., extra=extra(host=h))` with the empty fields dropped."""
    return {k: v for k, v in fields.items() if v not in ("", None)}

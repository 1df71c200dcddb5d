"""Turning many rows into objects a piece at a time, yielding the event loop between pieces.

SQLite's statements run inline (sqlite/base.py `Inline`) and PostgreSQL's rows arrive all at once, so the
Python work on a large result (2,000 due maintenances at 100k add-ons: ~60 ms on a busy machine) would
otherwise be one piece of the loop, every API call waiting behind it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TypeVar

R = TypeVar("R")
T = TypeVar("T")

PIECE = 250  # rows made into objects between two yields (a few ms)


async def convert(rows: Sequence[R], make: Callable[[R], T], piece: int = PIECE) -> list[T]:
    out: list[T] = []
    for k in range(0, len(rows), piece):
        if k:
            await asyncio.sleep(0)
        out += [make(r) for r in rows[k : k + piece]]
    return out

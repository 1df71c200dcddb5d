"""Writes retried under one request id answer once (docs/architecture.md, "Retried writes").

A client (the CLI) sends `kvmaint-request-id` with each write and the same id when it resends the write to
the next replica after a transport failure. The server (server/rpc/requests.py) marks the request in the
same transaction as the write itself (the stores' `transaction()` records `current` when it is set, just
before COMMIT), and stores the answer right after; a retry is answered from the stored answer. When the
replica died between its commit and storing the answer, the retry finds the mark alone: it is run again
with `replaying()` set, and the services that create things answer with what the committed attempt
created (`note(key)` recorded it in the mark) instead of creating it twice or refusing it as existing.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime


@dataclass
class Mark:
    """The request being served, as its write transactions record it."""

    id: str
    method: str
    at: datetime  # when the request arrived (the mark's created_at; old marks are pruned)
    key: str = ""  # what the write created (an add-on's name), for a replay
    replay_key: str | None = None  # on a replay: the key the committed attempt recorded
    open: bool = True  # False once the handler returned: a task it started records nothing
    recorded: bool = False  # a transaction committed with this mark


@dataclass(frozen=True)
class StoredRequest:
    id: str
    method: str
    key: str
    response: bytes | None  # None: committed, not answered (the replica died in between)
    created_at: datetime


current: ContextVar[Mark | None] = ContextVar("kvmaint_request", default=None)


def recording() -> Mark | None:
    """The mark a write transaction committing now must record, if any."""
    mark = current.get()
    return mark if mark is not None and mark.open else None


def note(key: str) -> None:
    """Called by a service inside the write that creates `key`: a replay answers with it."""
    mark = current.get()
    if mark is not None:
        mark.key = key


def replaying() -> Mark | None:
    """The request, when this run is the retry of one whose write committed but whose answer was lost."""
    mark = current.get()
    return mark if mark is not None and mark.replay_key is not None else None

"""Fencing by leader term: the agent obeys only the newest scheduler leader it has heard of.

Scheduler replicas elect a leader under a term that only grows (server/replica/). Every command, roles
message, welcome and beat carries the sender's term; the agent keeps the highest it has seen in its
journal (results.sqlite3, fsync'd before it acts on a higher term), so a leader that lost its lease
while paused cannot act after waking, not even across an agent restart. Term 0 is a scheduler older
than replicas: obeyed as before only by an agent that has never seen a term.
"""

from __future__ import annotations

import logging

from agent.results import ResultStore

log = logging.getLogger(__name__)


class TermFence:
    def __init__(self, store: ResultStore) -> None:
        self.store = store
        self.highest = store.highest_term()

    def admits(self, term: int) -> bool:
        if term <= 0:
            return self.highest == 0
        return term >= self.highest

    async def see(self, term: int) -> None:
        """Remembers `term` when it is the highest yet (durably, before the caller acts on it)."""
        if term > self.highest:
            await self.store.save_term(term)
            log.info("scheduler leader term %d (was %d)", term, self.highest)
            self.highest = term

    def refusal(self, term: int) -> str:
        return (
            f"Refused: the command comes from scheduler leader term {term}, but this agent has already "
            f"seen term {self.highest}; a newer leader exists."
        )

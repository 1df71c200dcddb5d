"""The demoted primary lets go of its clients, so they reconnect and ask where the primary is now.

`CLIENT KILL TYPE normal` and `TYPE pubsub`, with `SKIPME yes`: replication links (types master and
replica) and the agent's own connection are spared. Done while the old primary's writes are still paused,
so a write that was blocked by the pause sees its connection close (it was never applied, and every
client retries a write whose connection dropped) rather than a READONLY error that most clients, ioredis
among them, hand to the application. The switchover closes pub/sub connections only once the pause has
ended and the `failed_over` notice went out on them (a RESP2 subscriber cannot write; a paused server
holds PUBLISH back, notice.py), so a subscriber of the old primary hears where the primary went before
it is let go.
"""

from __future__ import annotations

import logging

import redis.asyncio

from agent.redisnode.rcmd import IO_ERRORS, rcmd
from agent.redisnode.status import describe_error

log = logging.getLogger(__name__)

CLIENT_TYPES = ("normal", "pubsub")


async def release_clients(
    client: redis.asyncio.Redis, what: str, kinds: tuple[str, ...] = CLIENT_TYPES
) -> tuple[int, str]:
    """(connections closed, a note when a kill failed). A failure is reported, never fatal: the switch
    has happened, and clients still learn of it from READONLY and the Sentinel endpoint."""
    closed, notes = 0, []
    for kind in kinds:
        try:
            closed += int(await rcmd(client, "CLIENT", "KILL", "TYPE", kind, "SKIPME", "yes"))
        except IO_ERRORS as exc:
            log.warning("CLIENT KILL TYPE %s on %s failed: %s", kind, what, describe_error(exc))
            notes.append(f"CLIENT KILL TYPE {kind} failed: {describe_error(exc)}")
    return closed, "; ".join(notes)

"""PUBLISHes maintenance notices (kvmaint/notices.py) on a local server for applications to SUBSCRIBE to.

Best effort by design: a notice that cannot be published is logged and reported, never a reason to stop
a maintenance. It goes over the agent's own client for that server (rcmd.connect), so it is sent with
whatever credentials the agent's other commands use. PUBLISH on a primary also reaches its replicas'
subscribers (Redis replicates it); a replica accepts PUBLISH too, for its own subscribers. A write
pause (CLIENT PAUSE WRITE) holds PUBLISH back, so notices go out before a pause or after it ends.
"""

from __future__ import annotations

import logging

import redis.asyncio

from agent.redisnode.rcmd import IO_ERRORS, rcmd
from agent.redisnode.status import describe_error
from kvmaint.notices import CHANNEL

log = logging.getLogger(__name__)


async def publish(client: redis.asyncio.Redis, payload: str, what: str) -> tuple[int, str]:
    """(subscribers that got it directly, an error sentence or "")."""
    try:
        return int(await rcmd(client, "PUBLISH", CHANNEL, payload)), ""
    except IO_ERRORS as exc:
        log.warning("publishing a maintenance notice on %s failed: %s", what, describe_error(exc))
        return 0, f"publishing the notice on {what} failed: {describe_error(exc)}"

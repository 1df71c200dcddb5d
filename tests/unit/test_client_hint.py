"""The READONLY hint is best effort: a demoted primary that has closed its clients (the failover's
release step) must not turn the app's retried write into an error."""

from __future__ import annotations

from kvmaint.client import _Follower
from tests.support.redisproc import free_port


async def test_an_unreachable_demoted_primary_leaves_the_write_to_be_retried() -> None:
    follower = _Follower("127.0.0.1:1", "app", "REDIS_URL", None, None, 5.0, {"socket_connect_timeout": 1})
    follower._switch(f"redis://127.0.0.1:{free_port()}", "test")  # nothing listens there
    pool = follower.pool
    await follower.follow_replica_hint(pool)  # raised ConnectionError out of execute_command before
    assert follower.pool is pool and follower.url.endswith(str(pool.connection_kwargs["port"]))
    await pool.aclose()

"""Maintenance notices through a real switchover on real redis-servers: a plain redis-py subscriber of the
old primary hears `failing_over` and then `failed_over` (naming the new primary) before the old primary
lets go of it; one of the target hears both too; a notice waits for no pause."""

from __future__ import annotations

import asyncio
import json

import redis.asyncio

from agent.redisnode import RedisNode
from kvmaint.clock import SystemClock
from kvmaint.notices import CHANNEL, Notice, NoticeType
from tests.agent.test_redisnode import pair
from tests.support.eventually import eventually


class Subscriber:
    """SUBSCRIBE on one server with plain redis-py; collects messages until its connection drops."""

    def __init__(self, port: int) -> None:
        self.client = redis.asyncio.Redis(port=port)
        self.pubsub = self.client.pubsub()
        self.messages: list[dict[str, str]] = []
        self.raw: list[bytes] = []
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.pubsub.subscribe(CHANNEL)
        assert (await self.pubsub.get_message(timeout=5))["type"] == "subscribe"
        self.task = asyncio.create_task(self._read())

    async def connection_ids(self) -> set[int]:
        """The server's pub/sub connections (redis-py reconnects a dropped one by itself)."""
        return {int(c["id"]) for c in await self.client.client_list(_type="pubsub")}

    async def _read(self) -> None:
        try:
            while True:
                msg = await self.pubsub.get_message(timeout=1)
                if msg is not None and msg["type"] == "message":
                    self.raw.append(msg["data"])
                    self.messages.append(json.loads(msg["data"]))
        except redis.exceptions.ConnectionError:
            pass

    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.pubsub.aclose()
        await self.client.aclose()


def notice(kind: NoticeType, **fields: str) -> Notice:
    return Notice(kind, "m-1", "redis-test-1", fields)


async def test_failover_notices_reach_subscribers_of_both_servers(redis_factory):
    old, target = await pair(redis_factory)
    on_old, on_target = Subscriber(old.port), Subscriber(target.port)
    await on_old.start()
    await on_target.start()
    where = f"127.0.0.1:{target.port}"
    fields = {"old_primary": f"127.0.0.1:{old.port}", "new_primary": where}
    node = RedisNode(old.port, SystemClock())
    before = await on_old.connection_ids()
    assert len(before) == 1
    try:
        outcome = await node.failover(
            "127.0.0.1",
            target.port,
            5000,
            notices=(notice(NoticeType.FAILING_OVER, **fields), notice(NoticeType.FAILED_OVER, **fields)),
        )
        assert outcome.ok, outcome.error
        # The old primary's subscriber heard both, in order, and was let go of (only afterwards: a
        # connection closed earlier would have heard no failed_over).
        assert not before & await on_old.connection_ids(), "the subscriber's connection was closed"
        await eventually(lambda: len(on_old.messages) >= 2, message=on_old.types())
        assert on_old.types()[:2] == ["failing_over", "failed_over"], on_old.messages
        failed_over = on_old.messages[1]
        assert failed_over["new_primary"] == where and failed_over["maintenance_id"] == "m-1"
        assert failed_over["addon"] == "redis-test-1" and failed_over["time"].endswith("+00:00")
        # The target's subscriber: failing_over replicated from the old primary, failed_over directly.
        await eventually(
            lambda: on_target.types() == ["failing_over", "failed_over"], message=on_target.types()
        )
        assert on_target.raw[1] == on_old.raw[1]  # the same bytes on both servers
        assert int(outcome.fields["failed_over_notice_subscribers"]) == 2
        assert int(outcome.fields["released_ms"]) >= outcome.write_pause_ms
    finally:
        await on_old.close()
        await on_target.close()
        await node.close()


async def test_publish_notice_on_a_primary_reaches_its_replicas_subscribers(redis_factory):
    primary, replica = await pair(redis_factory)
    direct, replicated = Subscriber(primary.port), Subscriber(replica.port)
    await direct.start()
    await replicated.start()
    node = RedisNode(primary.port, SystemClock())
    try:
        outcome = await node.publish_notice(
            notice(NoticeType.SCHEDULED, scheduled_for="2026-12-06T14:30:00.000+00:00")
        )
        assert outcome.ok and outcome.fields["subscribers"] == "1", outcome
        for sub in (direct, replicated):
            await eventually(lambda sub=sub: sub.messages, message="notice received")
            assert sub.messages == [
                {
                    "type": "scheduled",
                    "maintenance_id": "m-1",
                    "addon": "redis-test-1",
                    "time": sub.messages[0]["time"],
                    "scheduled_for": "2026-12-06T14:30:00.000+00:00",
                }
            ]
    finally:
        await direct.close()
        await replicated.close()
        await node.close()


async def test_a_notice_to_a_dead_server_is_a_failed_outcome_not_an_exception(redis_factory):
    server = await redis_factory.astart()
    node = RedisNode(server.port, SystemClock(), io_timeout=0.5)
    try:
        server.kill()
        outcome = await node.publish_notice(notice(NoticeType.COMPLETED))
        assert not outcome.ok and "publishing the notice" in outcome.error.lower()
    finally:
        await node.close()

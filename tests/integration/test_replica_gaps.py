"""What replicas on PostgreSQL still got wrong after issue 9, each through real scheduler processes (three
replicas on one real PostgreSQL database, `tests/faults/test_replicas.py`'s fixture), real agents and
real redis-servers:

- a maintenance notice for an event written in a takeover's window is sent by the new leader, once;
- the web page of a replica that does not lead shows the agents the leader holds;
- `WaitMaintenance` through a non-leader outlives the leader's death and ends with the real outcome;
- a relayed call to a frozen (SIGSTOPped) leader ends within the lease, not at the caller's deadline;
- a write the CLI resends to the next replica after the first died is answered as the first would have.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC
from pathlib import Path

import pytest
import redis.asyncio

from kvmaint.clock import iso
from kvmaint.notices import CHANNEL
from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb
from tests.faults.test_replicas import Replicas
from tests.faults.test_replicas import replicas as replicas  # the three-replica fixture
from tests.integration.test_failover import APP, Api, connect
from tests.support.agentproc import AgentProcess
from tests.support.eventually import eventually

pytestmark = pytest.mark.timeout(300)


class NoticeSubscriber:
    """SUBSCRIBE on `__kvmaint__:maintenance` of one server, as an app would (redis-py, no kvmaint code)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.notices: list[dict[str, str]] = []
        self.subscribed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        client = redis.asyncio.Redis.from_url(self.url)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(CHANNEL)
            self.subscribed.set()
            while True:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if msg is not None:
                    self.notices.append(json.loads(msg["data"]))
        finally:
            await pubsub.aclose()
            await client.aclose()

    async def start(self) -> NoticeSubscriber:
        self.task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.subscribed.wait(), 10)
        return self

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


@asynccontextmanager
async def fleet_on_replicas(
    tmp_path: Path, reps: Replicas, agents: Callable[..., AgentProcess]
) -> AsyncIterator[tuple[str, int, str, Api, rpb.Addon]]:
    """Two agents given every replica's address, an add-on created through a replica that does not
    lead; yields (leader id, its term, the id of a non-leader, an API on that non-leader, the add-on)."""
    holder, term = await reps.leader()
    stable = next(name for name in reps.procs if name != holder)
    for host in ("db-1", "db-2"):
        agents(host, reps.addresses, [], tmp_path)
    async with connect(reps.procs[stable].address) as api:
        await api.wait_agents("db-1", "db-2")
        addon = await api.create("premium-0")
        yield holder, term, stable, api, addon


async def test_a_notice_of_an_event_written_during_a_takeover_is_sent_once_by_the_new_leader(
    tmp_path: Path,
    replicas: Replicas,
    agents: Callable[..., AgentProcess],
) -> None:
    async with fleet_on_replicas(tmp_path, replicas, agents) as (holder, term, _stable, api, addon):
        sub = await NoticeSubscriber(await api.server_url(addon, rpb.SERVER_ROLE_PRIMARY)).start()
        try:
            await api.require(addon.name)
            await eventually(lambda: len(sub.notices) >= 1, timeout=20, message="the first `scheduled`")
            first = sub.notices[0]
            assert first["type"] == "scheduled", sub.notices

            replicas.procs[holder].kill()  # SIGKILL: its lease runs on, nobody leads for a while
            moved = await api.maint.UpdateWindow(
                mpb.UpdateWindowRequest(app=APP, addon=addon.name, day="Sunday", time="03:00")
            )
            # Written in the takeover's window: the dead leader's lease still held, or nobody's yet.
            in_window = await asyncio.to_thread(replicas.poll.leader)
            assert in_window is None or in_window == (holder, term), in_window
            new_holder, new_term = await replicas.leader(other_than=holder)
            assert new_term > term

            def rescheduled() -> bool:
                return any(n.get("previously_scheduled_for") for n in sub.notices)

            await eventually(rescheduled, timeout=30, message="the takeover window's `scheduled` notice")
            again = next(n for n in sub.notices if n.get("previously_scheduled_for"))
            assert again["type"] == "scheduled" and again["maintenance_id"] == first["maintenance_id"]
            assert again["previously_scheduled_for"] == first["scheduled_for"]
            assert again["scheduled_for"] == iso(moved.state.scheduled_for.ToDatetime(tzinfo=UTC))
            # Once each: the new leader resumed after what the old one had sent, not before it. A later
            # event of the new leader's (another move) proves its follower went past them all.
            await api.maint.UpdateWindow(
                mpb.UpdateWindowRequest(app=APP, addon=addon.name, day="Monday", time="04:00")
            )
            await eventually(lambda: len(sub.notices) >= 3, timeout=20, message="the new leader's own notice")
            types = [(n["type"], n.get("scheduled_for")) for n in sub.notices]
            assert len(types) == len(set(types)) == 3, sub.notices
            print(f"\n{holder} (term {term}) killed; {new_holder} (term {new_term}) sent {types[1:]}")
        finally:
            await sub.stop()

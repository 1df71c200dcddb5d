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
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC
from pathlib import Path

import grpc
import pytest
import redis.asyncio

from kvmaint.channel import rich_error
from kvmaint.clock import iso
from kvmaint.errors import ErrorReason
from kvmaint.notices import CHANNEL
from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb
from tests.faults.test_replicas import LEASE, Replicas, started_replicas
from tests.faults.test_replicas import replicas as replicas  # the three-replica fixture
from tests.integration.test_failover import APP, Api, connect
from tests.support.agentproc import AgentProcess
from tests.support.eventually import eventually
from tests.support.freeze import freeze, resume, step_until
from tests.support.scheduler import ROOT, SchedulerProcess

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


def page(scheduler: SchedulerProcess, path: str) -> str:
    """GET a page of a replica's status page (no tokens configured: everyone is an operator)."""
    found = re.search(r"status page on (http://127\.0\.0\.1:\d+/)", scheduler.log_text())
    assert found, scheduler.log_text()[-2000:]
    with urllib.request.urlopen(found.group(1) + path, timeout=30) as resp:
        return str(resp.read().decode())


def table(html: str, id: str) -> str:
    found = re.search(rf'<table id="{id}">.*?</table>', html, re.S)
    assert found, html[-2000:]
    return found.group(0)


@pytest.fixture
def web_replicas(tmp_path: Path) -> Iterator[Replicas]:
    """The three replicas, each with its status page."""
    with started_replicas(tmp_path, ("--http-listen", "127.0.0.1:0")) as reps:
        yield reps


async def test_the_status_page_of_a_replica_that_does_not_lead_shows_the_leaders_agents(
    tmp_path: Path, web_replicas: Replicas, agents: Callable[..., AgentProcess]
) -> None:
    reps = web_replicas
    async with fleet_on_replicas(tmp_path, reps, agents) as (holder, _term, stable, _api, addon):
        here, there = reps.procs[stable], reps.procs[holder]

        # The agents page: both agents connected, their servers, as on the leader's own page.
        async def same_agents() -> bool:
            mine = table(await asyncio.to_thread(page, here, "agents"), "agents")
            leaders = table(await asyncio.to_thread(page, there, "agents"), "agents")
            return mine == leaders

        await eventually(same_agents, timeout=15, message="the agents page as the leader's")
        agents_html = await asyncio.to_thread(page, here, "agents")
        for host in ("db-1", "db-2"):
            row = re.search(rf'<tr data-host="{host}">.*?</tr>', agents_html, re.S)
            assert row is not None and "connected</span>" in row.group(0), agents_html[-3000:]
            assert "disconnected" not in row.group(0), row.group(0)
        # An add-on's servers: each one up, with its build, as the leader's agents report them.
        addon_html = await asyncio.to_thread(page, here, f"addons/{addon.name}")
        for server in addon.servers:
            row = re.search(rf"<tr><td>{re.escape(server.endpoint)} \(.*?</tr>", addon_html, re.S)
            assert row is not None, addon_html[-3000:]
            assert "<td>up</td>" in row.group(0) and server.version in row.group(0), row.group(0)


async def test_a_wait_through_a_non_leader_outlives_the_leader_and_ends_with_the_outcome(
    tmp_path: Path,
    replicas: Replicas,
    agents: Callable[..., AgentProcess],
) -> None:
    async with fleet_on_replicas(tmp_path, replicas, agents) as (holder, term, _stable, api, addon):
        await api.require(addon.name)
        await api.run(addon.name)
        seen: list[mpb.WaitMaintenanceResponse] = []

        async def wait() -> None:
            request = mpb.WaitMaintenanceRequest(app=APP, addon=addon.name)
            async for resp in api.maint.WaitMaintenance(request, timeout=120):
                seen.append(resp)

        waiting = asyncio.create_task(wait())
        try:
            await api.wait_step("maintain_standby")
            await eventually(lambda: bool(seen), timeout=10, message="the wait under way")
            assert not waiting.done()
            replicas.procs[holder].kill()  # the leader the wait is relayed to dies under it
            _, new_term = await replicas.leader(other_than=holder)
            assert new_term > term
            await asyncio.wait_for(waiting, 90)  # raises what the stream ended with
        finally:
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
        last = seen[-1].maintenance
        assert last.status == rpb.MAINTENANCE_STATUS_COMPLETED, seen[-3:]
        assert {r.maintenance.id for r in seen} == {last.id}
        assert (await api.info(addon.name)).status == "completed"
        print(f"\nwait through a non-leader: {len(seen)} answers across {holder}'s death, ended completed")


async def test_a_relayed_call_to_a_frozen_leader_ends_within_the_lease(
    tmp_path: Path,
    replicas: Replicas,
    agents: Callable[..., AgentProcess],
) -> None:
    async with fleet_on_replicas(tmp_path, replicas, agents) as (holder, term, _stable, api, _addon):
        proc = replicas.procs[holder].proc
        assert proc is not None
        freeze(proc.pid)  # SIGSTOP: its connections stay open, nothing answers, its lease runs out
        frozen = time.monotonic()
        try:
            # A read is relayed again to the next leader once the frozen one's lease lapsed.
            listed = await api.fleet.ListAgents(fpb.ListAgentsRequest(), timeout=60)
            read_took = time.monotonic() - frozen
            # Answered by the new leader (its agents may still be reconnecting to it, so not who is listed).
            assert isinstance(listed, fpb.ListAgentsResponse)
            new_holder, new_term = await replicas.leader(other_than=holder)
            assert new_term > term
            # A write is not (it may have committed there): UNAVAILABLE, saying which leader and why.
            # The new leader frozen in turn, the write goes through the one replica left.
            last = next(n for n in replicas.procs if n not in (holder, new_holder))
            frozen_too = replicas.procs[new_holder].proc
            assert frozen_too is not None
            freeze(frozen_too.pid)
            frozen = time.monotonic()
            async with connect(replicas.procs[last].address) as third:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    request = fpb.CreateAddonRequest(app=APP, plan="premium-0", attachments=["CACHE_URL"])
                    await third.fleet.CreateAddon(request, timeout=60)
            write_took = time.monotonic() - frozen
            err = rich_error(
                caught.value.code(), caught.value.details() or "", caught.value.trailing_metadata()
            )
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value
            assert err.reason in (ErrorReason.LEADER_UNREACHABLE, ErrorReason.NO_LEADER), err
            assert new_holder in str(err), err
        finally:
            for p in replicas.procs.values():
                if p.proc is not None:
                    resume(p.proc.pid)
        print(f"\nrelayed to a frozen leader: read answered after {read_took:.1f}s, write refused after "
              f"{write_took:.1f}s (lease {LEASE}s): {err}")  # fmt: skip
        # Bounded by the lease (plus a renewal interval, the watch and the takeover), not the deadline.
        assert read_took < LEASE + 3 and write_took < LEASE + 3, (read_took, write_took)


async def test_a_write_the_cli_resends_after_the_replica_died_past_its_commit_is_answered_once(
    tmp_path: Path, replicas: Replicas
) -> None:
    holder, _ = await replicas.leader()
    first, second = (n for n in replicas.procs if n != holder)  # CreateApp is served where it arrives
    dying, taking = replicas.procs[first], replicas.procs[second]
    assert dying.proc is not None
    name = "resent-app"

    def committed() -> bool:
        return bool(replicas.poll.rows("SELECT 1 FROM apps WHERE name = $1", name))

    # The first address commits the write and is SIGKILLed before it can answer; the CLI resends it.
    freeze(dying.proc.pid)
    cli = start_cli("--scheduler", f"{dying.address},{taking.address}", "apps:create", name,
                    "--owner-email", "o@example.com", "--json")  # fmt: skip
    try:
        await asyncio.to_thread(step_until, dying.proc.pid, committed, 60)
        dying.kill()
        out, err = await asyncio.to_thread(cli.communicate, timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, err
    assert json.loads(out)["name"] == name, out
    # It was a resend (the second replica knew the request id), and the app exists once.
    resent = re.search(
        r"request \w+ \(CreateApp\) (committed unanswered: replaying|answered again)", taking.log_text()
    )
    assert resent is not None, taking.log_text()[-3000:]
    print(f"\nthe CLI resent CreateApp to {second} after {first} died past its commit: {resent.group(1)}")
    count = await asyncio.to_thread(
        replicas.poll.rows, "SELECT COUNT(*) AS n FROM apps WHERE name = $1", name
    )
    assert count[0]["n"] == 1

    # A retry of an answered write: the same answer, byte for byte, from any replica, and nothing redone.
    metadata = (("kvmaint-request-id", "test-request-1"),)
    request = fpb.CreateAppRequest(name="answered-app", owner_email="o@example.com")
    async with connect(taking.address) as api, connect(replicas.procs[holder].address) as other:
        answered = await api.fleet.CreateApp(request, metadata=metadata)
        again = await other.fleet.CreateApp(request, metadata=metadata)
        assert again.SerializeToString() == answered.SerializeToString()
        with pytest.raises(grpc.aio.AioRpcError) as caught:  # the same write under a new id is refused
            await other.fleet.CreateApp(request, metadata=(("kvmaint-request-id", "test-request-2"),))
        assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
        with pytest.raises(grpc.aio.AioRpcError) as caught:  # an id reused for another call
            await other.fleet.DeleteApp(fpb.DeleteAppRequest(name="answered-app"), metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kvmaint.cli", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

"""Scheduler replicas on one PostgreSQL (issue 9 §3): three real scheduler processes, two agents, the
fault writer and the ROLE sampler; the leader is SIGKILLed at each step of a maintenance, or SIGSTOPped
past its lease and woken. Each case asserts the fault rig's verdict (tests/faults/rig.py: 0 acknowledged
writes lost, 0 two-master moments, every step finished once), that another replica finished the
maintenance within the lease plus a few seconds, and from the agents' journals that no command ran
twice and none of an older leader term was admitted after a newer one.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import resources_pb2 as rpb
from tests.faults.rig import APP, FAULT_ARGS, STEPS, Rig, _server
from tests.integration.test_failover import connect
from tests.support.agentproc import AgentProcess
from tests.support.eventually import eventually
from tests.support.freeze import PointMissed, resume, step_until
from tests.support.pg import temporary_database
from tests.support.sampler import SamplerProcess
from tests.support.scheduler import ROOT, SchedulerProcess
from tests.support.writer import WriterProcess

pytestmark = pytest.mark.timeout(300)

# Short, yet long enough that a loaded 2-core CI machine (load 20 seen) rarely stalls a leader past
# its acting deadline (lease - margin = 2.4 s without a renewal).
LEASE = 3.0
# Another replica completes the maintenance within the lease plus this (takeover, resume, the rest).
SLACK = 8.0
ARGS = [*FAULT_ARGS, "--lease-seconds", str(LEASE)]


class PgPoll:
    """One connection on a loop of its own, for tight polls from the stepping thread (a fresh
    connection per check would leave the stepped process frozen most of the time)."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.loop.run_until_complete(asyncpg.connect(url))

    def rows(self, sql: str, *params: object) -> list[asyncpg.Record]:
        return list(self.loop.run_until_complete(self.conn.fetch(sql, *params)))

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()

    def at_step(self, step: str, done: bool = False) -> Callable[[], bool]:
        """The maintenance is durably at `step` (with done: `step` finished); freeze.durable_step's
        PostgreSQL twin."""

        def check() -> bool:
            for r in self.rows("SELECT current_step, state FROM maintenances"):
                finished = str(json.loads(r["state"]).get("done", "")).split(",")
                if (step in finished) if done else (r["current_step"] == step and step not in finished):
                    return True
            return False

        return check

    def leader(self) -> tuple[str, int] | None:
        rows = self.rows("SELECT holder, term FROM leases WHERE expires_at > clock_timestamp()")
        return (rows[0]["holder"], int(rows[0]["term"])) if rows else None


@dataclass
class Replicas:
    procs: dict[str, SchedulerProcess]
    url: str
    poll: PgPoll

    @property
    def addresses(self) -> str:
        return ",".join(p.address for p in self.procs.values())

    async def leader(self, other_than: str = "") -> tuple[str, int]:
        async def elected() -> tuple[str, int] | None:
            got = await asyncio.to_thread(self.poll.leader)
            return got if got is not None and got[0] != other_than else None

        found: tuple[str, int] = await eventually(elected, timeout=30, interval=0.02, message="a leader")
        return found


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Replicas]:
    with started_replicas(tmp_path) as reps:
        yield reps


@contextmanager
def started_replicas(tmp_path: Path, extra: tuple[str, ...] = ()) -> Iterator[Replicas]:
    """Three replicas r0, r1, r2 on a database of their own (`extra`: more scheduler flags)."""
    with temporary_database() as url:
        procs = {}
        for i in range(3):
            work = tmp_path / f"r{i}"
            work.mkdir()
            args = [*ARGS, *extra, "--replica-id", f"r{i}"]
            procs[f"r{i}"] = SchedulerProcess(db=url, workdir=work, extra_args=args)
        poll = PgPoll(url)
        try:
            for p in procs.values():
                p.start()
            yield Replicas(procs, url, poll)
        finally:
            for p in procs.values():
                if p.proc is not None:
                    resume(p.proc.pid)
                p.stop()
            poll.close()


@asynccontextmanager
async def replica_rig(
    tmp_path: Path, reps: Replicas, agents: Callable[..., AgentProcess]
) -> AsyncIterator[tuple[Rig, str, int]]:
    """The fault rig on replicas: the API, the writer's attachment and the checks go to a replica that
    does not lead (and is never harmed); the add-on is created on the leader, which holds the agents."""
    holder, term = await reps.leader()
    stable = next(p for name, p in reps.procs.items() if name != holder)
    hosts = {h: agents(h, reps.addresses, [], tmp_path) for h in ("db-1", "db-2")}
    async with connect(reps.procs[holder].address) as lead, connect(stable.address) as api:
        await lead.wait_agents("db-1", "db-2")
        addon = await lead.create("premium-0")
        app_url = (await api.config())["REDIS_URL"]
        primary = _server(addon, rpb.SERVER_ROLE_PRIMARY, app_url)
        standby = _server(addon, rpb.SERVER_ROLE_STANDBY, app_url)
        writer = await asyncio.to_thread(WriterProcess(stable.address, APP, tmp_path / "writes.txt").start)
        sampler = await asyncio.to_thread(SamplerProcess([primary.url, standby.url], tmp_path / "roles.json").start)
        r = Rig(stable, hosts, api, addon, writer, sampler, primary, standby)
        try:
            yield r, holder, term
        finally:
            writer.stop()
            if sampler.proc and sampler.proc.poll() is None:
                sampler.proc.kill()


def _agent_term(agent: AgentProcess) -> int:
    """The highest leader term an agent's journal holds (agent/fence.py)."""
    with sqlite3.connect(agent.data_dir / "results.sqlite3") as conn:
        rows = conn.execute("SELECT term FROM leader_term").fetchall()
    return int(rows[0][0]) if rows else 0


def journal(agent: AgentProcess) -> list[str]:
    """The command ids an agent's journal kept a result for."""
    with sqlite3.connect(agent.data_dir / "results.sqlite3") as conn:
        return [r[0] for r in conn.execute("SELECT command_id FROM results")]


ADMITTED = re.compile(r"command (\S+) admitted under leader term (\d+)")


def check_journals(r: Rig) -> dict[str, list[tuple[str, int]]]:
    """Every command an agent admitted, in order: each id once, terms never going down."""
    seen: dict[str, list[tuple[str, int]]] = {}
    for host, agent in r.hosts.items():
        admitted = [(m[1], int(m[2])) for m in ADMITTED.finditer(agent.log_text())]
        ids = [cid for cid, _ in admitted]
        assert len(ids) == len(set(ids)), f"{host} ran a command twice: {ids}"
        terms = [t for _, t in admitted]
        assert terms == sorted(terms), f"{host} admitted an older term after a newer one: {admitted}"
        assert sorted(journal(agent)) == sorted(ids), f"{host}: journal and admissions differ"
        seen[host] = admitted
    ran = [cid for cmds in seen.values() for cid, _ in cmds]
    assert sum(1 for cid in ran if cid.endswith("/failover")) == 1, ran
    return seen


@pytest.mark.parametrize("step", STEPS)
async def test_the_leader_killed_at_each_step_another_replica_finishes(
    tmp_path: Path, replicas: Replicas, agents: Callable[..., AgentProcess], step: str
) -> None:
    async with replica_rig(tmp_path, replicas, agents) as (r, holder, term):
        leader = replicas.procs[holder]
        assert leader.proc is not None
        await r.start()
        try:
            await asyncio.to_thread(step_until, leader.proc.pid, replicas.poll.at_step(step), 60)
        except PointMissed:
            pytest.fail(f"step {step} was stepped over")
        leader.kill()  # SIGKILL, frozen at the step
        killed = time.monotonic()
        new_holder, new_term = await replicas.leader(other_than=holder)
        took_over = time.monotonic() - killed
        assert new_term > term
        info = await r.ended(timeout=LEASE + SLACK + 30)
        finished = time.monotonic() - killed
        v = await r.assert_safe(info, expect="completed")
        check_journals(r)
        print(
            f"\nkilled {holder} (term {term}) at {step}: {new_holder} leads (term {new_term}) after "
            f"{took_over:.2f}s, maintenance completed {finished:.2f}s after the kill; "
            f"{v.acknowledged} writes acknowledged, 0 lost"
        )
        assert finished <= LEASE + SLACK, f"completed {finished:.1f}s after the kill"


async def test_a_paused_leader_acts_on_nothing_after_waking(
    tmp_path: Path, replicas: Replicas, agents: Callable[..., AgentProcess]
) -> None:
    async with replica_rig(tmp_path, replicas, agents) as (r, holder, term):
        old = replicas.procs[holder]
        assert old.proc is not None
        await r.start()
        await asyncio.to_thread(step_until, old.proc.pid, replicas.poll.at_step("maintain_standby"), 60)
        paused = time.monotonic()
        # Frozen mid-maintenance, longer than its lease: another replica takes over and carries on.
        _, new_term = await replicas.leader(other_than=holder)
        assert new_term > term
        await eventually(
            lambda: asyncio.to_thread(replicas.poll.at_step("maintain_standby", done=True)),
            timeout=LEASE + SLACK + 20,
            message="the new leader finished the step",
        )
        assert time.monotonic() - paused > LEASE

        def fenced() -> bool:  # both agents have heard of the new term (from its welcome or a command)
            return all(_agent_term(a) >= new_term for a in r.hosts.values())

        await eventually(fenced, timeout=20, message="agents heard the new term")
        before = len(old.log_text())
        resume(old.proc.pid)
        info = await r.ended(timeout=60)
        await r.assert_safe(info, expect="completed")
        check_journals(r)  # an old-term command admitted after waking would break the order
        await eventually(
            lambda: "no longer the leader" in old.log_text()[before:], timeout=10, message="it stepped down"
        )
        woke = old.log_text()[before:]
        for acted in ("Starting step", "Resuming step", "resuming maintenance", "completed"):
            assert acted not in woke, f"the woken old leader acted: {acted!r} in\n{woke[-3000:]}"
        async with connect(r.scheduler.address) as api:
            resp = await api.fleet.ListSchedulers(fpb.ListSchedulersRequest())
        leaders = [s.id for s in resp.schedulers if s.leader]
        assert len(leaders) <= 1 and resp.term >= new_term, resp  # a loaded machine may move it again
        assert {s.id for s in resp.schedulers} == set(replicas.procs)
        # The operator's view: `kvmaint schedulers` (a table, and --json), from a replica that does not lead.
        table = _cli(r.scheduler.address, "schedulers")
        assert table.splitlines()[0].split() == ["ID", "ADDRESS", "LEADER", "TERM", "SEEN"], table
        lead_rows = [line.split() for line in table.splitlines()[1:] if " leader " in f" {line} "]
        assert [row[0] for row in lead_rows] == leaders and lead_rows[0][3] == str(resp.term), table
        listed = json.loads(_cli(r.scheduler.address, "schedulers", "--json"))
        assert listed["term"] == resp.term and sorted(x["id"] for x in listed["schedulers"]) == ["r0", "r1", "r2"]
        assert [x["id"] for x in listed["schedulers"] if x["leader"]] == leaders


def _cli(address: str, *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kvmaint.cli", "--scheduler", address, *argv],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout

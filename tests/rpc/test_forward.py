"""A non-leader replica relays the RPCs that need the agents' streams to the leader (server/replica/
forward.py): with the caller's metadata (the leader checks the token again), its answers and errors
unchanged; without a reachable leader, UNAVAILABLE naming the situation. Other RPCs are answered by the
replica itself.

Two in-process schedulers on separate SQLite files, so that which one answered is visible: the
"replica" is told by a fixed leadership that the "leader" leads. (Replicas on one PostgreSQL database,
as real processes: tests/integration/test_replicas.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from kvmaint.channel import rich_error
from kvmaint.errors import ErrorReason, RPCError
from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import fleet_pb2_grpc, maintenance_pb2_grpc
from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb
from server.app import Scheduler, SchedulerConfig, build_scheduler
from server.auth import Principal, TokenTable
from server.replica.forward import FORWARDED

OPERATOR = "operator-token-1"
ONLY_ON_REPLICA = "replica-only-token"


@dataclass
class Info:
    holder: str
    term: int
    address: str
    agent_address: str
    expires_at: datetime


class FixedLeadership:
    def __init__(self, info: Info | None) -> None:
        self.info = info
        self.is_leader = False
        self.term = 0

    async def leader(self) -> Info | None:
        return self.info


@dataclass
class Pair:
    leader: Scheduler
    replica: Scheduler
    leadership: FixedLeadership

    @property
    def leader_address(self) -> str:
        return f"127.0.0.1:{self.leader.port}"

    @property
    def replica_address(self) -> str:
        return f"127.0.0.1:{self.replica.port}"


def soon() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=30)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    operator = Principal("operator")
    leader = await build_scheduler(
        SchedulerConfig(
            listen="127.0.0.1:0", db=tmp_path / "leader.db", tokens=TokenTable({OPERATOR: operator})
        )
    )
    leadership = FixedLeadership(Info("leader-1", 3, f"127.0.0.1:{leader.port}", "", soon()))
    replica = await build_scheduler(
        SchedulerConfig(
            listen="127.0.0.1:0",
            db=tmp_path / "replica.db",
            tokens=TokenTable({OPERATOR: operator, ONLY_ON_REPLICA: operator}),
            forward_leadership=leadership,
        )
    )
    try:
        yield Pair(leader, replica, leadership)
    finally:
        await replica.stop(0.5)
        await leader.stop(0.5)


def status(err: grpc.aio.AioRpcError) -> tuple[object, ...]:
    """What a client sees of a failure: code, message, and the google.rpc details bytes."""
    return (err.code(), err.details(), dict(err.trailing_metadata() or ()).get("grpc-status-details-bin"))


def rich(err: grpc.aio.AioRpcError) -> RPCError:
    return rich_error(err.code(), err.details() or "", err.trailing_metadata())


def md(token: str = OPERATOR) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def seed(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as ch:
        fleet = fleet_pb2_grpc.FleetServiceStub(ch)
        await fleet.CreateApp(fpb.CreateAppRequest(name="example-app", owner_email="o@example.com"), metadata=md())
        await fleet.CreateAddon(
            fpb.CreateAddonRequest(
                app="example-app", plan="premium-0", name="redis-a",
                primary=rpb.ServerAddress(host="db-1", port=7001),
                standby=rpb.ServerAddress(host="db-2", port=7002),
            ),
            metadata=md(),
        )  # fmt: skip


async def test_relayed_rpcs_answer_as_the_leader_and_the_rest_from_the_replica(pair: Pair) -> None:
    await seed(pair.leader_address)
    async with (
        grpc.aio.insecure_channel(pair.leader_address) as lch,
        grpc.aio.insecure_channel(pair.replica_address) as rch,
    ):
        on_leader = fleet_pb2_grpc.FleetServiceStub(lch)
        on_replica = fleet_pb2_grpc.FleetServiceStub(rch)
        for call in ("ListAddons", "ListAgents"):
            request = fpb.ListAddonsRequest(app="example-app") if call == "ListAddons" else fpb.ListAgentsRequest()
            direct = await getattr(on_leader, call)(request, metadata=md())
            relayed = await getattr(on_replica, call)(request, metadata=md())
            assert relayed == direct, call
        assert [a.name for a in (await on_replica.ListAddons(fpb.ListAddonsRequest(app="example-app"),
                                                             metadata=md())).addons] == ["redis-a"]
        # Not relayed: read from the replica's own database (here a separate one, empty).
        assert not (await on_replica.ListApps(fpb.ListAppsRequest(), metadata=md())).apps
        assert (await on_leader.ListApps(fpb.ListAppsRequest(), metadata=md())).apps

        # A server stream is relayed too, item by item.
        m_leader = maintenance_pb2_grpc.MaintenanceServiceStub(lch)
        m_replica = maintenance_pb2_grpc.MaintenanceServiceStub(rch)
        info = await m_replica.GetAddonInfo(mpb.GetAddonInfoRequest(app="example-app", addon="redis-a"),
                                            metadata=md())
        assert info == await m_leader.GetAddonInfo(
            mpb.GetAddonInfoRequest(app="example-app", addon="redis-a"), metadata=md()
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in m_replica.WaitMaintenance(
                mpb.WaitMaintenanceRequest(app="example-app", addon="redis-a"), metadata=md()
            ):
                pass
        direct_err = None
        try:
            async for _ in m_leader.WaitMaintenance(
                mpb.WaitMaintenanceRequest(app="example-app", addon="redis-a"), metadata=md()
            ):
                pass
        except grpc.aio.AioRpcError as err:
            direct_err = err
        assert direct_err is not None
        assert status(caught.value) == status(direct_err)
        assert rich(caught.value).reason == ErrorReason.MAINTENANCE_NOT_REQUIRED


async def test_the_leaders_errors_come_back_unchanged_and_it_checks_the_token_again(pair: Pair) -> None:
    await seed(pair.leader_address)
    async with grpc.aio.insecure_channel(pair.replica_address) as rch:
        fleet = fleet_pb2_grpc.FleetServiceStub(rch)
        # The leader's own refusal, with its details (a registered server already taken).
        taken = fpb.CreateAddonRequest(
            app="example-app", plan="premium-0", name="redis-b", attachments=["CACHE_URL"],
            primary=rpb.ServerAddress(host="db-1", port=7001),
            standby=rpb.ServerAddress(host="db-2", port=7009),
        )  # fmt: skip
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await fleet.CreateAddon(taken, metadata=md())
        async with grpc.aio.insecure_channel(pair.leader_address) as lch:
            with pytest.raises(grpc.aio.AioRpcError) as direct:
                await fleet_pb2_grpc.FleetServiceStub(lch).CreateAddon(taken, metadata=md())
        assert status(caught.value) == status(direct.value)
        err = rich(caught.value)
        assert caught.value.code() != grpc.StatusCode.UNAVAILABLE, err
        assert "db-1:7001" in str(err) and err.domain == "kvmaint", err

        # A token only the replica knows passes the replica's check, and the leader refuses it.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await fleet.ListAgents(fpb.ListAgentsRequest(), metadata=md(ONLY_ON_REPLICA))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # No token at all never leaves the replica.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await fleet.ListAgents(fpb.ListAgentsRequest())
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_without_a_reachable_leader_a_relayed_call_is_unavailable_saying_why(pair: Pair) -> None:
    async with grpc.aio.insecure_channel(pair.replica_address) as rch:
        fleet = fleet_pb2_grpc.FleetServiceStub(rch)

        async def refusal() -> tuple[grpc.StatusCode, str, str]:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await fleet.ListAgents(fpb.ListAgentsRequest(), metadata=md())
            err = rich(caught.value)
            return caught.value.code(), err.reason, str(err)

        pair.leadership.info = Info("leader-1", 3, pair.leader_address, "", datetime.now(UTC) - timedelta(seconds=2))
        code, reason, text = await refusal()
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, ErrorReason.NO_LEADER)
        assert text.startswith("no leader: the lease of leader-1 (term 3) expired at"), text

        pair.leadership.info = None
        code, reason, text = await refusal()
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, ErrorReason.NO_LEADER)
        assert text.startswith("no leader: the lease expired (or was never taken)"), text

        pair.leadership.info = Info("leader-9", 5, "127.0.0.1:1", "", soon())
        code, reason, text = await refusal()
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, ErrorReason.LEADER_UNREACHABLE)
        assert text.startswith("the leader leader-9 (term 5) at 127.0.0.1:1 cannot be reached:"), text

        # Calls that need no agent are still answered by the replica.
        assert (await fleet.ListApps(fpb.ListAppsRequest(), metadata=md())) == fpb.ListAppsResponse()


async def test_a_call_relayed_to_a_replica_that_no_longer_leads_is_not_relayed_again(pair: Pair) -> None:
    # The "leader" the lease names is itself a non-leader now (the lease moved meanwhile).
    pair.leadership.info = Info("replica", 4, pair.replica_address, "", soon())
    async with grpc.aio.insecure_channel(pair.replica_address) as rch:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await fleet_pb2_grpc.FleetServiceStub(rch).ListAgents(fpb.ListAgentsRequest(), metadata=md())
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "no longer leads" in (caught.value.details() or "")


def test_every_relayed_rpc_exists_and_says_why() -> None:
    from kvmaint.v1 import campaigns_pb2, fleet_pb2, maintenance_pb2

    names = {
        f"/{s.full_name}/{m.name}"
        for pb in (fleet_pb2, maintenance_pb2, campaigns_pb2)
        for s in pb.DESCRIPTOR.services_by_name.values()
        for m in s.methods
    }
    assert set(FORWARDED) <= names
    assert all(FORWARDED.values())

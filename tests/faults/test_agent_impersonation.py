"""Fault 3: without TLS but with --tokens, only an agent token opens the agent stream.

A loopback process with no token, an app's or the operator's token, or an agent token bound to
another host, claims to be db-1 with `advertise_host="attacker.invalid"`: each is refused, and the
scheduler records nothing (no agent db-1, no such address). A real agent with its token is welcomed.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from kvmaint.v1 import agent_pb2, agent_pb2_grpc, fleet_pb2_grpc
from kvmaint.v1 import fleet_pb2 as fpb
from tests.conftest import AGENT_DB2_TOKEN, AGENT_TOKEN, APP_TOKENS, OPERATOR_TOKEN
from tests.support.agentproc import AgentProcess
from tests.support.eventually import eventually

REFUSED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


# grpc's client sets this status itself when a write meets a stream the server has already closed:
# the server's own answer is then lost to this call, so the probe asks again.
_LOCAL_WRITE_RACE = "Internal error from Core"


async def _connect_as(address: str, token: str | None, host_id: str = "db-1") -> grpc.StatusCode:
    """Opens the agent stream with a hello; the status the server ends it with (OK: it was welcomed)."""
    for _ in range(5):
        code = await _connect_once(address, token, host_id)
        if code is not None:
            return code
    raise AssertionError("every probe lost its hello to grpc's local write race")


async def _connect_once(address: str, token: str | None, host_id: str) -> grpc.StatusCode | None:
    md = [("authorization", f"Bearer {token}")] if token else []
    async with grpc.aio.insecure_channel(address) as channel:
        call = agent_pb2_grpc.AgentServiceStub(channel).Connect(metadata=md, timeout=5)
        hello = agent_pb2.AgentHello(host_id=host_id, agent_version="x", advertise_host="attacker.invalid")
        try:
            # The refusal may arrive before the hello is written: then the write raises.
            await call.write(agent_pb2.ConnectRequest(hello=hello))
            first = await call.read()
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.INTERNAL and err.details() == _LOCAL_WRITE_RACE:
                return None
            return err.code()
        call.cancel()
        return grpc.StatusCode.OK if first.HasField("welcome") else grpc.StatusCode.UNKNOWN


async def _agents(address: str) -> list[fpb.AgentInfo]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = fleet_pb2_grpc.FleetServiceStub(channel)
        md = [("authorization", f"Bearer {OPERATOR_TOKEN}")]
        return list((await stub.ListAgents(fpb.ListAgentsRequest(), metadata=md)).agents)


@pytest.mark.parametrize(
    "who,token,host",
    [
        ("no token", None, "db-1"),
        ("an app token", APP_TOKENS["example-app"], "db-1"),
        ("the operator token", OPERATOR_TOKEN, "db-1"),
        ("an unknown token", "not-a-known-token", "db-1"),
        ("an agent token bound to db-2", AGENT_DB2_TOKEN, "db-1"),
    ],
)
async def test_impersonation_is_refused(scheduler_factory, who: str, token: str | None, host: str) -> None:
    s = scheduler_factory(tokens=True)
    code = await _connect_as(s.address, token, host)
    assert code in REFUSED, f"{who}: the agent stream answered {code}"
    agents = await _agents(s.address)
    assert not any(a.host_id == host or a.advertise_host == "attacker.invalid" for a in agents), agents


async def test_agent_tokens_open_the_stream_and_nothing_else(scheduler_factory) -> None:
    s = scheduler_factory(tokens=True)
    assert await _connect_as(s.address, AGENT_TOKEN, "db-1") == grpc.StatusCode.OK
    assert await _connect_as(s.address, AGENT_DB2_TOKEN, "db-2") == grpc.StatusCode.OK
    async with grpc.aio.insecure_channel(s.address) as channel:
        stub = fleet_pb2_grpc.FleetServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ListApps(fpb.ListAppsRequest(), metadata=[("authorization", f"Bearer {AGENT_TOKEN}")])
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "agent token" in (err.value.details() or "")


async def test_a_real_agent_connects_with_its_token(scheduler_factory, tmp_path) -> None:
    s = scheduler_factory(tokens=True)
    agent = AgentProcess("db-2", s.address, tmp_path, ["--token", AGENT_DB2_TOKEN]).start()
    try:

        async def connected() -> bool:
            return any(a.host_id == "db-2" and a.connected for a in await _agents(s.address))

        await eventually(connected, timeout=20, message="agent db-2 connected")
    finally:
        await asyncio.to_thread(agent.stop)

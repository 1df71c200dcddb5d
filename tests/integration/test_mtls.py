"""Agents authenticate with certificates: the scheduler accepts a host only with that host's certificate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from kvmaint.devcerts import write_dev_pki
from kvmaint.v1 import agent_pb2, agent_pb2_grpc, fleet_pb2, fleet_pb2_grpc
from tests.support.eventually import eventually


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    out = tmp_path / "pki"
    write_dev_pki(out, ["db-1", "db-2"], "localhost")
    return out


def tls_args(pki: Path) -> list[str]:
    return [
        "--tls-cert",
        str(pki / "scheduler.pem"),
        "--tls-key",
        str(pki / "scheduler-key.pem"),
        "--tls-ca",
        str(pki / "ca.pem"),
        "--agent-listen",
        "127.0.0.1:0",
    ]


def channel(address: str, pki: Path, host: str | None) -> grpc.aio.Channel:
    creds = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(),
        private_key=(pki / f"{host}-key.pem").read_bytes() if host else None,
        certificate_chain=(pki / f"{host}.pem").read_bytes() if host else None,
    )
    return grpc.aio.secure_channel(address, creds, options=[("grpc.ssl_target_name_override", "localhost")])


async def hello_as(address: str, pki: Path, cert_host: str | None, host_id: str) -> grpc.StatusCode:
    """Opens the agent stream with `cert_host`'s certificate and says hello as `host_id`."""
    async with channel(address, pki, cert_host) as ch:
        stub = agent_pb2_grpc.AgentServiceStub(ch)
        call = stub.Connect(iter([agent_pb2.ConnectRequest(hello=agent_pb2.AgentHello(host_id=host_id))]))
        try:
            first = await asyncio.wait_for(call.read(), 10)
        except grpc.aio.AioRpcError as err:
            return err.code()
        call.cancel()
        assert first.WhichOneof("body") == "welcome"
        return grpc.StatusCode.OK


async def connected_agents(address: str, pki: Path) -> set[str]:
    async with channel(address, pki, None) as ch:
        resp = await fleet_pb2_grpc.FleetServiceStub(ch).ListAgents(fleet_pb2.ListAgentsRequest(), timeout=5)
        return {a.host_id for a in resp.agents if a.connected}


async def test_agent_needs_its_own_certificate(scheduler_factory, agents, pki: Path) -> None:
    s = scheduler_factory(extra_args=tls_args(pki))
    addr = f"localhost:{s.agent_port}"
    assert await hello_as(addr, pki, "db-1", "db-1") == grpc.StatusCode.OK
    assert await hello_as(addr, pki, "db-2", "db-1") == grpc.StatusCode.PERMISSION_DENIED
    # Without a certificate the agents' port refuses the TLS handshake itself.
    assert await hello_as(addr, pki, None, "db-1") == grpc.StatusCode.UNAVAILABLE
    # The clients' port asks for no certificate, so an agent stream there is unauthenticated.
    assert await hello_as(f"localhost:{s.port}", pki, None, "db-1") == grpc.StatusCode.UNAUTHENTICATED

    def agent_tls(host: str) -> list[str]:
        return [
            "--tls-ca",
            str(pki / "ca.pem"),
            "--tls-cert",
            str(pki / f"{host}.pem"),
            "--tls-key",
            str(pki / f"{host}-key.pem"),
            "--tls-server-name",
            "localhost",
        ]

    honest = agents("db-1", addr, agent_tls("db-1"))
    impostor = agents("db-2", addr, agent_tls("db-1"))  # claims db-2 with db-1's certificate
    clients = f"localhost:{s.port}"
    await eventually(lambda: connected_agents(clients, pki), timeout=30)  # agent processes starting on a busy machine
    # The impostor is told why, and stays out.
    await eventually(lambda: "cannot act as host db-2" in impostor.log_text(), timeout=15)
    assert await connected_agents(clients, pki) == {"db-1"}
    assert honest.proc is not None and honest.proc.poll() is None


async def test_tls_scheduler_refuses_plaintext_agents(scheduler_factory, pki: Path) -> None:
    s = scheduler_factory(extra_args=tls_args(pki))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{s.agent_port}") as ch:
        stub = agent_pb2_grpc.AgentServiceStub(ch)
        call = stub.Connect(iter([agent_pb2.ConnectRequest(hello=agent_pb2.AgentHello(host_id="db-1"))]))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await asyncio.wait_for(call.read(), 10)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE

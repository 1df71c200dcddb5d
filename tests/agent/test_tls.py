"""mTLS between agent and scheduler with the dev certificates: the right client cert is accepted and
its CN is the host id; no client cert, or one from another CA, gets no stream."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from agent.tls import TlsFiles
from kvmaint.devcerts import main as devcerts_main
from kvmaint.devcerts import peer_common_name, server_credentials, write_dev_pki
from kvmaint.v1 import agent_pb2, agent_pb2_grpc
from tests.agent.fakesched import FakeScheduler
from tests.support.eventually import eventually


@pytest.fixture
def pki(tmp_path):
    out = tmp_path / "pki"
    write_dev_pki(out, ["db-1", "db-2"])
    return out


@pytest.fixture
async def tls_scheduler(pki):
    creds = server_credentials(
        (pki / "ca.pem").read_bytes(),
        (pki / "scheduler.pem").read_bytes(),
        (pki / "scheduler-key.pem").read_bytes(),
    )
    scheduler = await FakeScheduler().start(creds)
    yield scheduler
    await scheduler.stop()


def files(pki, host) -> TlsFiles:
    return TlsFiles(pki / "ca.pem", pki / f"{host}.pem", pki / f"{host}-key.pem")


async def test_agent_with_its_certificate_connects(pki, tls_scheduler, agent_factory):
    await agent_factory("db-1", scheduler=tls_scheduler.address, tls=files(pki, "db-1"))
    await tls_scheduler.wait_connected("db-1")
    assert tls_scheduler.peer_cns == ["db-1"]


async def test_agent_without_a_client_certificate_is_refused(pki, tls_scheduler, agent_factory):
    plain = await agent_factory("db-1", scheduler=tls_scheduler.address)
    await eventually(lambda: plain.agent.stream.attempts >= 2)
    assert tls_scheduler.attempts == 0 and not tls_scheduler.hellos

    # Trusting the CA but presenting no certificate: the handshake fails.
    channel = grpc.aio.secure_channel(
        tls_scheduler.address, grpc.ssl_channel_credentials((pki / "ca.pem").read_bytes())
    )
    async with channel:
        call = agent_pb2_grpc.AgentServiceStub(channel).Connect()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.write(agent_pb2.ConnectRequest(hello=agent_pb2.AgentHello(host_id="db-1")))
            await call.read()
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert tls_scheduler.attempts == 0


async def test_certificate_from_another_ca_is_refused(tmp_path, pki, tls_scheduler, agent_factory):
    other = tmp_path / "other"
    write_dev_pki(other, ["db-1"])
    tls = TlsFiles(pki / "ca.pem", other / "db-1.pem", other / "db-1-key.pem")
    running = await agent_factory("db-1", scheduler=tls_scheduler.address, tls=tls)
    await eventually(lambda: running.agent.stream.attempts >= 2)
    assert tls_scheduler.attempts == 0


def test_devcerts_cli_writes_the_files(tmp_path, capsys):
    assert devcerts_main(["--out", str(tmp_path / "c"), "--hosts", "db-1", "db-2"]) == 0
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert names == sorted(
        ["ca.pem", "ca-key.pem", "scheduler.pem", "scheduler-key.pem",
         "db-1.pem", "db-1-key.pem", "db-2.pem", "db-2-key.pem",
         "db-1-redis.pem", "db-1-redis-key.pem", "db-2-redis.pem", "db-2-redis-key.pem"]
    )  # fmt: skip
    assert (tmp_path / "c" / "db-1-key.pem").stat().st_mode & 0o077 == 0
    assert (tmp_path / "c" / "db-1-redis-key.pem").stat().st_mode & 0o077 == 0


def test_peer_common_name():
    assert peer_common_name({"x509_common_name": [b"db-1"]}) == "db-1"
    assert peer_common_name({}) is None

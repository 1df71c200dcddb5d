"""The Sentinel endpoint of a real scheduler process: tokens confine an app to its add-ons, bad input
closes only the connection that sent it while the API keeps answering, and without tokens it refuses to
listen beyond loopback."""

from __future__ import annotations

import random
import subprocess
import sys

import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio.sentinel import Sentinel

from kvmaint.v1 import fleet_pb2 as fpb
from kvmaint.v1 import fleet_pb2_grpc
from tests.conftest import AGENT_TOKEN, APP_TOKENS, OPERATOR_TOKEN
from tests.integration.conftest import FAST
from tests.sentinel.support import Raw, pack
from tests.support.eventually import eventually
from tests.support.scheduler import ROOT

SENTINEL = ["--sentinel-listen", "127.0.0.1:0"]


async def api_answers(address: str, token: str | None = None) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        resp = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        meta = (("authorization", f"Bearer {token}"),) if token else None
        await fleet_pb2_grpc.FleetServiceStub(channel).ListApps(fpb.ListAppsRequest(), timeout=5, metadata=meta)
        return resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_app_tokens_see_only_their_own_add_ons(scheduler_factory, agents) -> None:
    s = scheduler_factory(tokens=True, extra_args=[*FAST, *SENTINEL])
    meta = (("authorization", f"Bearer {OPERATOR_TOKEN}"),)
    agents("db-1", s.address, ["--token", AGENT_TOKEN])  # without mTLS an agent shows its token
    async with grpc.aio.insecure_channel(s.address) as channel:
        fleet = fleet_pb2_grpc.FleetServiceStub(channel)
        names = {}
        for app in ("example-app", "other-app"):
            await fleet.CreateApp(fpb.CreateAppRequest(name=app, owner_email="o@example.com"), metadata=meta)
            req = fpb.CreateAddonRequest(app=app, plan="mini", attachments=["REDIS_URL"])

            async def created(req=req) -> str:  # the agent may still be connecting
                return (await fleet.CreateAddon(req, metadata=meta, timeout=30)).addon.name

            names[app] = await eventually(created, timeout=30, interval=0.1, message=f"{app} add-on")
    mine, theirs = names["example-app"], names["other-app"]

    anonymous = await Raw.open(s.sentinel_port)
    (refused,) = await anonymous.call("SENTINEL", "get-master-addr-by-name", mine)
    assert str(refused) == "NOAUTH Authentication required."
    await anonymous.close()

    app = Sentinel([("127.0.0.1", s.sentinel_port)], sentinel_kwargs={"password": APP_TOKENS["example-app"]})
    assert (await app.discover_master(mine))[1] > 0
    with pytest.raises(aioredis.sentinel.MasterNotFoundError):
        await app.discover_master(theirs)
    assert set(await app.sentinels[0].sentinel_masters()) == {mine}
    await app.aclose()

    op = Sentinel([("127.0.0.1", s.sentinel_port)], sentinel_kwargs={"username": "default", "password": OPERATOR_TOKEN})
    assert set(await op.sentinels[0].sentinel_masters()) == {mine, theirs}
    await op.aclose()

    wrong = aioredis.Redis(port=s.sentinel_port, password="not-a-token")
    with pytest.raises(aioredis.AuthenticationError):
        await wrong.ping()
    await wrong.aclose()


async def test_bad_input_never_stalls_the_scheduler(scheduler_factory) -> None:
    s = scheduler_factory(extra_args=SENTINEL)
    rng = random.Random(11)
    bystander = await Raw.open(s.sentinel_port)

    # Random bytes on many connections, each ended by EOF: every one is finished with, none hangs.
    for _ in range(50):
        r = await Raw.open(s.sentinel_port)
        r.writer.write(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096))))
        r.writer.write_eof()
        assert await r.closed(timeout=10)
    # A 10 MB bulk string: refused and closed before it is whole.
    big = await Raw.open(s.sentinel_port)
    big.writer.write(b"*2\r\n$4\r\nPING\r\n$10485760\r\n")
    try:
        for _ in range(160):
            big.writer.write(b"x" * 65536)
            await big.writer.drain()
    except (ConnectionError, OSError):
        pass
    assert await big.closed(timeout=10)
    # Unknown commands and 10,000 random command lines on one connection: each answered, in order.
    words = ["SENTINEL", "masters", "get-master-addr-by-name", "PING", "CLIENT", "x", "", "\xff", "AUTH", "ROLE"]
    lines = [[rng.choice(words) for _ in range(rng.randint(1, 6))] for _ in range(10_000)]
    noisy = await Raw.open(s.sentinel_port)
    noisy.writer.write(b"".join(pack(*line) for line in lines) + pack("PING", "end"))
    got = await noisy.read(10_001, timeout=60)
    assert got[-1] == b"end"
    assert sum(isinstance(g, Exception) for g in got) > 1000  # mostly errors, as they should be

    assert await bystander.call("PING") == [b"PONG"]
    assert await api_answers(s.address)
    assert s.proc is not None and s.proc.poll() is None


def test_without_tokens_only_loopback(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "server", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "s.db"),
         "--sentinel-listen", "0.0.0.0:0"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 2
    assert "refusing to serve Sentinel on 0.0.0.0:0 without tokens" in out.stderr

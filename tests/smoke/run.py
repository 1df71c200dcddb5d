"""A smoke test that needs nothing but kvmaint's runtime dependencies (no pytest): CI runs it in a venv
installed with the lowest versions pyproject.toml allows (`scripts/lowest.sh`), so a floor is one that
was installed and ran. It imports every module, makes dev certificates, starts a real scheduler, calls
it over gRPC, runs one CLI command and writes through `kvmaint.client` to a real redis-server.

    python -m tests.smoke.run      # prints one line per check; exit 0 when all pass
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.redisproc import RedisFactory
from tests.support.scheduler import ROOT, SchedulerProcess

PACKAGES = ("kvmaint", "server", "agent")
DISTRIBUTIONS = (
    "grpcio",
    "grpcio-status",
    "grpcio-health-checking",
    "grpcio-reflection",
    "protobuf",
    "googleapis-common-protos",
    "redis",
    "aiosmtplib",
    "aiohttp",
    "rich",
    "cryptography",
)


def say(line: str) -> None:
    print(f"smoke: {line}", flush=True)


def import_everything() -> int:
    count = 0
    for name in PACKAGES:
        package = importlib.import_module(name)
        for mod in pkgutil.walk_packages(package.__path__, f"{name}."):
            if mod.name.endswith("__main__"):
                continue
            importlib.import_module(mod.name)
            count += 1
    return count


def make_certs(out: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "kvmaint.devcerts", "--out", str(out), "--hosts", "db-1"],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )


def rpc_calls(address: str, redis_port: int) -> None:
    from kvmaint.v1 import fleet_pb2, fleet_pb2_grpc, resources_pb2

    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING, health
        fleet = fleet_pb2_grpc.FleetServiceStub(channel)
        fleet.CreateApp(fleet_pb2.CreateAppRequest(name="smoke-app", owner_email="o@example.com"), timeout=10)
        fleet.CreateAddon(
            fleet_pb2.CreateAddonRequest(
                app="smoke-app",
                plan="mini",
                primary=resources_pb2.ServerAddress(host="127.0.0.1", port=redis_port),
            ),
            timeout=10,
        )


def cli(address: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kvmaint.cli", "redis:info", "-a", "smoke-app", "--scheduler", address],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def through_client(address: str) -> str:
    from kvmaint.client import attach

    async with await attach(address, "smoke-app", decode_responses=True) as r:
        await r.set("smoke", "ok")
        value = await r.get("smoke")
        assert value == "ok", value
        return str(value)


def main() -> int:
    versions = ", ".join(f"{d} {metadata.version(d)}" for d in DISTRIBUTIONS)
    say(f"python {sys.version.split()[0]}; {versions}")
    say(f"imported {import_everything()} modules")
    with tempfile.TemporaryDirectory(prefix="kvmaint-smoke-") as tmp:
        work = Path(tmp)
        make_certs(work / "certs")
        say("dev certificates made")
        with RedisFactory(work / "redis") as redis_factory:
            server = redis_factory.start()
            scheduler = SchedulerProcess(db=work / "state.db", workdir=work).start()
            try:
                rpc_calls(scheduler.address, server.port)
                say(f"scheduler on {scheduler.address}: Health SERVING, app and add-on created")
                say("CLI redis:info: " + cli(scheduler.address).splitlines()[0])
                say(f"kvmaint.client wrote and read back {asyncio.run(through_client(scheduler.address))!r}")
            finally:
                scheduler.stop()
    say("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

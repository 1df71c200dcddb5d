"""grpc.health.v1.Health/Watch, as gRPC's client-side health checking and grpcurl use it, against the
real scheduler process: the first answer is the current status, a change is sent as it happens."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or "grpcurl"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_aio_watch_sends_serving_then_not_serving_on_shutdown(scheduler) -> None:
    async with grpc.aio.insecure_channel(scheduler.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        whole = stub.Watch(health_pb2.HealthCheckRequest(service=""))
        service = stub.Watch(health_pb2.HealthCheckRequest(service="kvmaint.v1.MaintenanceService"))
        unknown = stub.Watch(health_pb2.HealthCheckRequest(service="no.such.Service"))
        assert (await whole.read()).status == SERVING
        assert (await service.read()).status == SERVING
        assert (await unknown.read()).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN

        scheduler.proc.send_signal(signal.SIGTERM)  # a graceful stop marks every service NOT_SERVING
        assert (await whole.read()).status == NOT_SERVING
        assert (await service.read()).status == NOT_SERVING
        for call in (whole, service, unknown):
            call.cancel()
    assert scheduler.proc.wait(15) == 0


def test_grpcurl_check_and_watch(scheduler) -> None:
    version = subprocess.run([GRPCURL, "-version"], capture_output=True, text=True, check=True)
    assert "1.8.6" in version.stdout + version.stderr
    check = subprocess.run(
        [GRPCURL, "-plaintext", scheduler.address, "grpc.health.v1.Health/Check"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout) == {"status": "SERVING"}

    watch = subprocess.Popen(
        [
            GRPCURL,
            "-plaintext",
            "-d",
            '{"service": "kvmaint.v1.FleetService"}',
            scheduler.address,
            "grpc.health.v1.Health/Watch",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watch.stdout is not None
        statuses = []
        buffer = ""
        for line in watch.stdout:  # grpcurl prints each message as an indented JSON object
            buffer += line
            if line.startswith("}"):
                statuses.append(json.loads(buffer)["status"])
                buffer = ""
                if statuses == ["SERVING"]:
                    scheduler.proc.send_signal(signal.SIGTERM)
                if "NOT_SERVING" in statuses:
                    break
        assert statuses == ["SERVING", "NOT_SERVING"], (statuses, watch.stderr)
    finally:
        watch.kill()
        watch.wait(10)
    assert scheduler.proc.wait(15) == 0


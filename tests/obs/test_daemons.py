"""Metrics, traces and JSON logs of a real maintenance: a scheduler and two agents as OS processes, real
redis-servers, Prometheus scrapes over HTTP, spans exported by OTLP to a receiver, stderr parsed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kvmaint.v1 import resources_pb2 as rpb
from tests.integration.test_failover import connect
from tests.obs.otlp import OtlpReceiver
from tests.support.eventually import eventually

FAST = ["--catch-up-timeout", "30", "--command-timeout", "20", "--tick-seconds", "0.5"]
OBS = ["--metrics-listen", "127.0.0.1:0", "--log-format", "json"]
STEPS = ["prepare", "catch_up", "maintain_standby", "failover", "repoint", "finish"]


def metrics_port(log: str) -> int:
    found = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", log)
    assert found, log[-2000:]
    return int(found.group(1))


async def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def json_lines(path: Path) -> list[dict]:
    """Every line must be one JSON object: that is the contract of --log-format json."""
    out = []
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        assert isinstance(obj, dict), line
        assert {"time", "level", "message"} <= obj.keys(), line
        out.append(obj)
    return out


async def test_a_maintenance_shows_in_metrics_traces_and_json_logs(
    scheduler_factory, agents, tmp_path, monkeypatch
) -> None:
    otlp = await OtlpReceiver().start()
    for key, val in otlp.env.items():
        monkeypatch.setenv(key, val)  # inherited by the scheduler and agent processes
    try:
        scheduler = scheduler_factory(extra_args=FAST + OBS)
        a1 = agents("db-1", scheduler.address, OBS)
        a2 = agents("db-2", scheduler.address, OBS)
        s_port = metrics_port(scheduler.log_text())
        async with connect(scheduler.address) as api:
            await api.wait_agents("db-1", "db-2")
            ports = {a.host_id: metrics_port(a.log_text()) for a in (a1, a2)}
            before = await scrape(s_port)
            assert value(before, "kvmaint_agents_connected") == 2
            addon = await api.create("premium-0")
            standby_port = int(next(s.endpoint for s in addon.servers if s.role == rpb.SERVER_ROLE_STANDBY).rsplit(":", 1)[1])
            standby = next(a for a in (a1, a2) if a.server_pid(standby_port))
            # A standby that stops answering holds the maintenance at catch_up: scrape while it runs.
            os.kill(standby.server_pid(standby_port), signal.SIGSTOP)
            try:
                await api.require_and_run(addon.name)

                async def running() -> bool:
                    s = await scrape(s_port)
                    return value(s, "kvmaint_maintenances", status="preparing") == 1 and value(
                        s, "kvmaint_step_duration_seconds_count", step="prepare", outcome="ok"
                    ) == 1

                await eventually(running, timeout=30, message="a maintenance at catch_up in the metrics")
                during = await scrape(ports[standby.host_id])
                assert value(during, "kvmaint_agent_server_up", port=str(standby_port)) == 0
            finally:
                os.kill(standby.server_pid(standby_port), signal.SIGCONT)
            await api.wait_status("completed")
            info = await api.info()
            after = await scrape(s_port)

        # The scheduler: the maintenance, its steps, its write pause, the agents' round trips, gRPC.
        assert value(after, "kvmaint_maintenances", status="completed") == 1
        for step in STEPS:
            assert value(after, "kvmaint_step_duration_seconds_count", step=step, outcome="ok") == 1, step
        assert value(after, "kvmaint_write_pause_seconds_count") == 1
        assert value(after, "kvmaint_write_pause_seconds_sum") == pytest.approx(info.write_pause_ms / 1000)
        assert value(after, "kvmaint_agent_command_duration_seconds_count", action="failover", outcome="ok") == 1
        assert value(after, "kvmaint_grpc_requests_total", method="/kvmaint.v1.MaintenanceService/RunMaintenance", code="OK") == 1
        assert value(after, "kvmaint_planner_pass_duration_seconds_count") >= 1
        assert ("kvmaint_notification_backlog", (("kind", "email"),)) in after

        # The agents: each server up with its role and version; the old primary was restarted.
        async def settled() -> dict:
            """Once the restarted old primary is back and replicating (it was restarted last)."""
            by_host = {h: await scrape(p) for h, p in ports.items()}
            up = [value(s, "kvmaint_agent_server_up") for s in by_host.values()]
            primaries = sum(value(s, "kvmaint_agent_server_role", role="primary") for s in by_host.values())
            replicas = sum(value(s, "kvmaint_agent_server_role", role="replica") for s in by_host.values())
            lag = [v for s in by_host.values() for (n, _), v in s.items() if n == "kvmaint_agent_server_replication_lag_bytes"]
            assert (up, primaries, replicas, len(lag)) == ([1, 1], 1, 1, 1) and lag[0] >= 0
            return by_host

        by_host = await eventually(settled, timeout=20, message="both servers up, one replicating from the other")
        versions = {ls for s in by_host.values() for (n, ls) in s if n == "kvmaint_agent_server_build_info"}
        assert len(versions) == 2
        assert all(dict(ls)["server"] == "redis" and re.match(r"\d+\.\d+", dict(ls)["version"]) for ls in versions)
        assert sum(value(s, "kvmaint_agent_server_restarts_total") for s in by_host.values()) == 2
        assert sum(value(s, "kvmaint_agent_commands_total", action="Failover", outcome="ok") for s in by_host.values()) == 1
    finally:
        # Their last spans are flushed on the way out, to the receiver on this loop: stop off the loop.
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in (scheduler, a1, a2)))
        await otlp.stop()

    # One trace: the maintenance's root span, a span per step under it, the agents' work under the steps.
    spans = otlp.spans
    root = next(s for s in spans if s.name.startswith("maintenance "))
    assert root.service == "kvmaint-scheduler" and root.parent_id == ""
    assert root.attributes["kvmaint.maintenance_id"] == info.id
    steps = {s.name.removeprefix("step "): s for s in spans if s.name.startswith("step ")}
    assert sorted(steps) == sorted(STEPS)
    assert all(s.trace_id == root.trace_id and s.parent_id == root.span_id for s in steps.values())
    agent_spans = [s for s in spans if s.service == "kvmaint-agent"]
    assert {s.name for s in agent_spans} >= {"agent Failover", "agent CatchUpCheck", "agent RestartServer"}
    step_ids = {s.span_id: name for name, s in steps.items()}
    failover = next(s for s in agent_spans if s.name == "agent Failover")
    assert failover.trace_id == root.trace_id and step_ids[failover.parent_id] == "failover"
    ours = [s for s in agent_spans if s.attributes["kvmaint.command_id"].startswith(info.id + "/")]
    assert ours and all(s.trace_id == root.trace_id and s.parent_id in step_ids for s in ours)

    # JSON logs: every line of every daemon parses; lines inside a step name it.
    sched_lines = json_lines(tmp_path / "scheduler.log")
    in_failover = [ln for ln in sched_lines if ln.get("step") == "failover"]
    assert in_failover and all(ln["maintenance_id"] == info.id and ln["addon"] == addon.name for ln in in_failover)
    assert any(ln["message"].endswith("completed") and ln.get("maintenance_id") == info.id for ln in sched_lines)
    assert any(ln.get("host") == "db-1" and "connected" in ln["message"] for ln in sched_lines)
    for a in (a1, a2):
        lines = json_lines(a.log)
        assert all(line["host"] == a.host_id for line in lines)
    agent_lines = json_lines(a1.log) + json_lines(a2.log)
    failover_lines = [ln for ln in agent_lines if ln.get("step") == "failover"]
    assert failover_lines and all(ln["maintenance_id"] == info.id and ln["addon"] == addon.name for ln in failover_lines)

"""How much of a reconnect storm is grpc.aio's own: server CPU per (re)connected agent stream, kvmaint's
agent hub side by side with servers that do next to nothing, in one run on the same machine.

Each variant gets a fresh server process and the same client process (at nice 10, as the agent workers of
bench/agents_hub.py): N channels of their own (one TCP connection each), each opening
`AgentService.Connect`, writing a hello and reading the first reply; then a storm: every channel closed and
re-opened at once. The server's CPU time (all its threads, from /proc) is read before and after each
phase. Variants:

- `bare`: a `grpc.aio.server()` with no options and no interceptor; the handler reads the hello, writes a
  welcome, reads until the stream ends. The floor of grpc.aio itself.
- `bare+options`: the same handler on a server built with the scheduler's SERVER_OPTIONS, its collector
  settings and its ServiceInterceptor (server/app.py, server/__main__.py).
- `hub`: server.agents.hub.AgentHub, the scheduler's servicer (no roles source, no database), on that
  server.

Prints, per variant, the server's and the client's CPU time per agent, and what they imply for 10,000
agents: the seconds of one core the server needs, and the least wall time on this machine when client
and server share its cores. See bench/README_agents.md.

    .venv/bin/python -m bench.grpc_floor [--agents 3000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc
import grpc.aio

from bench.agents_ctl import proc_sample, raise_nofile
from bench.agents_sim import CHANNEL_OPTIONS
from kvmaint.v1 import agent_pb2, agent_pb2_grpc

VARIANTS = ("bare", "bare+options", "hub")
FLEET = 10_000


class Bare(agent_pb2_grpc.AgentServiceServicer):
    """Reads the hello, writes a welcome, reads until the stream ends: nothing of kvmaint's."""

    async def Connect(
        self, request_iterator: AsyncIterator[agent_pb2.ConnectRequest], context: grpc.aio.ServicerContext
    ) -> None:
        await context.read()
        await context.write(
            agent_pb2.ConnectResponse(welcome=agent_pb2.SchedulerWelcome(scheduler_version="floor"))
        )
        while await context.read() is not grpc.aio.EOF:
            pass


async def serve(variant: str) -> None:
    if variant == "bare":
        server = grpc.aio.server()
        servicer: agent_pb2_grpc.AgentServiceServicer = Bare()
    else:
        from kvmaint.clock import SystemClock
        from server.__main__ import tune_process
        from server.agents.hub import AgentHub
        from server.app import SERVER_OPTIONS
        from server.auth import TokenTable
        from server.rpc.interceptors import ServiceInterceptor

        tune_process()  # the scheduler's collector thresholds
        server = grpc.aio.server(interceptors=[ServiceInterceptor(TokenTable({}))], options=SERVER_OPTIONS)
        servicer = (
            Bare() if variant == "bare+options" else AgentHub(SystemClock(), require_certificates=False)
        )
    agent_pb2_grpc.add_AgentServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


async def clients(port: int, count: int) -> None:
    """Connects `count` agents, then reconnects them all at once; prints each phase's figures as JSON."""
    target = f"127.0.0.1:{port}"
    channels: list[grpc.aio.Channel] = []

    async def one(index: int) -> None:
        channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        call = agent_pb2_grpc.AgentServiceStub(channel).Connect()
        await call.write(agent_pb2.ConnectRequest(hello=agent_pb2.AgentHello(host_id=f"floor-{index}")))
        reply = await call.read()
        if reply is grpc.aio.EOF or reply.WhichOneof("body") != "welcome":
            raise RuntimeError(f"agent {index}: no welcome ({reply!r})")
        channels.append(channel)

    for phase in ("connect", "storm"):
        if phase == "storm":
            await asyncio.gather(*(channel.close() for channel in channels))
            channels.clear()
        await asyncio.to_thread(input)  # the parent has read the server's CPU
        began, cpu = time.monotonic(), _own_cpu()
        await asyncio.gather(*(one(k) for k in range(count)))
        print(json.dumps({"wall": time.monotonic() - began, "cpu": _own_cpu() - cpu}), flush=True)
    await asyncio.to_thread(input)
    await asyncio.gather(*(channel.close() for channel in channels))


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(variant: str, count: int) -> dict[str, Any]:
    here = [sys.executable, "-m", "bench.grpc_floor"]
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen([*here, "--serve", variant], stdout=subprocess.PIPE, text=True, cwd=root)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        client = subprocess.Popen(
            ["nice", "-n", "10", *here, "--client", str(port), "--agents", str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
        )
        assert client.stdin is not None and client.stdout is not None
        out: dict[str, Any] = {"variant": variant}
        for phase in ("connect", "storm"):
            before = proc_sample(server.pid).cpu
            client.stdin.write("\n")
            client.stdin.flush()
            line = client.stdout.readline()
            if not line:
                raise RuntimeError(f"{variant}: the client died during {phase}")
            got = json.loads(line)
            server_cpu = proc_sample(server.pid).cpu - before
            out[phase] = {
                "wall_s": round(got["wall"], 2),
                "server_ms_per_agent": round(1000 * server_cpu / count, 3),
                "client_ms_per_agent": round(1000 * got["cpu"] / count, 3),
            }
        client.stdin.write("\n")
        client.stdin.flush()
        client.wait(timeout=60)
        return out
    finally:
        server.kill()
        server.wait()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="bench.grpc_floor", description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=3000, help="agent streams per variant (default 3000)")
    p.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"which to run (default {','.join(VARIANTS)})"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--client", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    raise_nofile(2 * args.agents + 1024)
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    if args.client:
        asyncio.run(clients(args.client, args.agents))
        return
    load, started = os.getloadavg(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
    cores = os.cpu_count() or 1
    rows = [measure(v, args.agents) for v in args.variants.split(",")]
    if args.json:
        print(json.dumps({"agents": args.agents, "cores": cores, "load": load, "rows": rows}, indent=2))
        return
    print(
        f"grpc.aio floor of an agent (re)connect: {args.agents} agents per variant, one TCP connection each; "
        f"client at nice 10"
    )
    print(
        f"{started}  nproc {cores}  Python {platform.python_version()}  "
        f"grpcio {grpc.__version__}  load {' '.join(f'{x:.2f}' for x in load)}"
    )
    head = (
        f"{'variant':<14}{'phase':<9}{'wall (s)':>9}{'server ms/agent':>17}{'client ms/agent':>17}"
        f"{'10k: server core-s':>20}{'10k: least wall (s)':>21}"
    )
    print(head)
    for row in rows:
        for phase in ("connect", "storm"):
            r = row[phase]
            server_s = FLEET * r["server_ms_per_agent"] / 1000
            least = max(
                server_s, FLEET * (r["server_ms_per_agent"] + r["client_ms_per_agent"]) / 1000 / cores
            )
            print(
                f"{row['variant']:<14}{phase:<9}{r['wall_s']:>9.2f}{r['server_ms_per_agent']:>17.2f}"
                f"{r['client_ms_per_agent']:>17.2f}{server_s:>20.1f}{least:>21.1f}"
            )


if __name__ == "__main__":
    main()

"""The scheduler's agent hub alone, in a process of its own, with a driver that sends it commands.

`server.agents.hub.AgentHub` on a `grpc.aio.server` built as server/app.py builds the scheduler's (same
SERVER_OPTIONS, same ServiceInterceptor), in a process tuned by the scheduler's own `tune_process()` and
logging as it does. A driver task calls `hub.call(host, id, "catch_up_check", ..., timeout)` at a steady
rate on uniformly random hosts among all simulated ones, open loop (a late tick fires the calls it
missed), each call its own task, and records (start, seconds, error) per call. The benchmark
(bench/agents_hub.py) speaks to it over stdin/stdout (bench/agents_ctl.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.agents_ctl import Json, die_with_parent, proc_sample, serve_control, summary_ms
from kvmaint.clock import SystemClock
from kvmaint.v1 import agent_pb2, agent_pb2_grpc
from server.__main__ import tune_process
from server.agents.hub import AgentHub
from server.app import SERVER_OPTIONS
from server.auth import TokenTable
from server.rpc.interceptors import ServiceInterceptor

log = logging.getLogger("bench.hubhost")

LAG_TICK = 0.05


class PendingByHost(dict[str, Any]):
    """For `--hub-variant indexed` only: a prototype of a proposed hub change, not the scheduler.

    AgentHub.Connect sends a reconnecting agent its commands still awaiting results by scanning every
    pending command (`for pending in self._pending.values()`), O(pending) per hello. This dict keeps
    the same entries plus an index by host, and answers the one `values()` call a hello makes (the
    host is noted by `_check_identity`, which Connect calls just before, with no await in between)
    with that host's commands only. Everything else about the hub is unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.by_host: dict[str, dict[str, Any]] = {}
        self.host: str | None = None

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.by_host.setdefault(value.host, {})[key] = value

    def pop(self, key: str, default: Any = None) -> Any:
        value = super().pop(key, default)
        if value is not None:
            commands = self.by_host.get(value.host, {})
            commands.pop(key, None)
            if not commands:
                self.by_host.pop(value.host, None)
        return value

    def values(self) -> Any:
        host, self.host = self.host, None
        if host is None:
            return super().values()
        return list(self.by_host.get(host, {}).values())


class IndexedHub(AgentHub):
    def __init__(self) -> None:
        super().__init__(SystemClock(), require_certificates=False)
        self._pending = PendingByHost()

    def _check_identity(self, host_id: str, context: grpc.aio.ServicerContext) -> None:
        super()._check_identity(host_id, context)
        assert isinstance(self._pending, PendingByHost)
        self._pending.host = host_id


class HubHost:
    def __init__(self, seed: int, variant: str = "scheduler") -> None:
        self.hub = (
            IndexedHub() if variant == "indexed" else AgentHub(SystemClock(), require_certificates=False)
        )
        self.servers: list[grpc.aio.Server] = []
        self.port = 0
        self.rng = random.Random(seed)
        # (start, seconds, error or "", whether the host had a session when the call began)
        self.calls: list[tuple[float, float, str, bool]] = []
        self.in_flight: set[asyncio.Task[None]] = set()
        self.driver: asyncio.Task[None] | None = None
        self.ids = itertools.count()
        self.lags: list[tuple[float, float]] = []  # (at, how late a LAG_TICK sleep woke)
        self.lag_task: asyncio.Task[None] | None = None
        self.gcs: list[tuple[float, int, float]] = []  # (at, generation, seconds) of each collection
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gcs.append((time.monotonic(), info["generation"], time.perf_counter() - self._gc_started))

    async def start(self, listen: str, count: int, options: list[tuple[str, int]]) -> None:
        """`count` servers on one port (gRPC sets SO_REUSEPORT on Linux), all serving the one hub: a
        grpc.aio server accepts one new RPC per trip through the event loop, so more servers accept
        more at once. The scheduler has one (count 1)."""
        host = listen.rsplit(":", 1)[0]
        for _ in range(count):
            server = grpc.aio.server(
                interceptors=[ServiceInterceptor(TokenTable({}))], options=[*SERVER_OPTIONS, *options]
            )
            agent_pb2_grpc.add_AgentServiceServicer_to_server(self.hub, server)
            port = server.add_insecure_port(f"{host}:{self.port}" if self.port else listen)
            if port == 0 or (self.port and port != self.port):
                raise OSError(f"cannot listen on {listen} (got port {port})")
            self.port = port
            await server.start()
            self.servers.append(server)
        self.lag_task = asyncio.create_task(self._watch_lag())

    async def _watch_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_TICK)
            self.lags.append((time.monotonic(), loop.time() - before - LAG_TICK))

    # --- the driver -----------------------------------------------------------------------------------
    async def _drive(self, rate: float, hosts: int, timeout: float) -> None:
        period = 1.0 / rate
        next_at = time.monotonic()
        while True:
            now = time.monotonic()
            while next_at <= now:  # open loop: a late wake-up fires every call it missed
                host = f"sim-{self.rng.randrange(hosts)}"
                task = asyncio.create_task(self._one(host, timeout))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
                next_at += period
            await asyncio.sleep(next_at - now)

    async def _one(self, host: str, timeout: float) -> None:
        command_id = f"bench-{next(self.ids)}"
        start = time.monotonic()
        connected = self.hub.is_connected(host)
        error = ""
        try:
            result = await self.hub.call(
                host, command_id, "catch_up_check", agent_pb2.CatchUpCheckCommand(port=1), timeout=timeout
            )
            if result.command_id != command_id or not result.ok:
                error = "wrong result"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        self.calls.append((start, time.monotonic() - start, error, connected))

    # --- control --------------------------------------------------------------------------------------
    async def handle(self, req: Json) -> Json:
        op = req["op"]
        if op == "port":
            return {"port": self.port, "pid": os.getpid()}
        if op == "status":
            s = proc_sample(os.getpid())
            return {
                "sessions": len(self.hub.sessions),
                "pending": len(self.hub._pending),
                "in_flight": len(self.in_flight),
                "calls": len(self.calls),
                "cpu": s.cpu,
                "rss": s.rss,
            }
        if op == "drive":
            if self.driver is None:
                self.driver = asyncio.create_task(
                    self._drive(float(req["rate"]), int(req["hosts"]), float(req["call_timeout"]))
                )
            return {"at": time.monotonic()}
        if op == "halt":
            # Stops issuing calls, waits for those in flight (each is bounded by its timeout).
            if self.driver is not None:
                self.driver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.driver
                self.driver = None
            if self.in_flight:
                await asyncio.wait(set(self.in_flight), timeout=float(req.get("wait", 35)))
            return {"unfinished": len(self.in_flight)}
        if op == "calls":
            return {"calls": self.calls}
        if op == "lag":
            since, until = float(req["since"]), float(req["until"])
            window = [lag for at, lag in self.lags if since <= at <= until]
            full = [sec for at, gen, sec in self.gcs if gen == 2 and since <= at <= until]
            return {"lag": summary_ms(window), "gc2": [len(full), round(1000 * max(full, default=0.0), 1)]}
        if op == "stop":
            await self.stop()
            return {}
        raise ValueError(f"unknown op {op!r}")

    async def stop(self) -> None:
        if self.driver is not None:
            self.driver.cancel()
        for task in list(self.in_flight):
            task.cancel()
        if self.lag_task is not None:
            self.lag_task.cancel()
        servers, self.servers = self.servers, []
        await asyncio.gather(*(server.stop(1.0) for server in servers))


async def amain(args: argparse.Namespace) -> None:
    host = HubHost(args.seed, args.variant)
    options = [(k, int(v)) for k, _, v in (o.partition("=") for o in args.option)]
    await host.start(args.listen, args.servers, options)
    log.info("agent hub serving on port %d", host.port)
    try:
        await serve_control(host.handle)
    finally:
        await host.stop()


def main(argv: list[str] | None = None) -> None:
    die_with_parent()
    p = argparse.ArgumentParser(prog="bench.agents_hubhost", description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--servers", type=int, default=1, help="grpc.aio servers sharing the port (default 1)")
    p.add_argument(
        "--variant",
        choices=("scheduler", "indexed"),
        default="scheduler",
        help="scheduler: server.agents.hub.AgentHub as it is; indexed: with pending commands indexed by host",
    )
    p.add_argument("--option", action="append", default=[], help="KEY=INT: one more server option")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    tune_process()  # as the scheduler's main() does before anything else
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()

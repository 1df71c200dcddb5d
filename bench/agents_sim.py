"""A worker process of simulated kvmaint agents: `--count` agents on one event loop, one connection each.

Each agent does what agent/stream.py does on the wire, minus Redis: one `AgentService.Connect` stream
on its own channel (a local subchannel pool, so no two agents share a TCP connection), a hello with two
fake servers, a heartbeat every `--heartbeat` seconds (the first one at a random point of the first
interval), and a CommandResult (same id, ok) for every command, at once. A stream that breaks
unasked is an error (counted by gRPC status code) and is re-opened with the real agent's backoff (full
jitter, 0.2 s doubling to 10 s); a "storm" request closes every channel on purpose and re-opens each after
a uniform delay in [0, jitter).

Run by bench/agents_hub.py, which speaks to it over stdin/stdout (bench/agents_ctl.py).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

import grpc
import grpc.aio

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.backoff import full_jitter
from bench.agents_ctl import Json, die_with_parent, proc_sample, serve_control
from kvmaint.v1 import agent_pb2, agent_pb2_grpc

LAG_TICK = 0.05

CHANNEL_OPTIONS: list[tuple[str, object]] = [
    # What the real agent sets (agent/app.py).
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # Without it, channels with equal target and arguments share one subchannel, i.e. one TCP
    # connection: 10,000 agents would be a handful of connections carrying 10,000 streams.
    ("grpc.use_local_subchannel_pool", 1),
]


class Worker:
    def __init__(self, target: str, first: int, count: int, heartbeat: float, rng: random.Random) -> None:
        self.target = target
        self.heartbeat = heartbeat
        self.rng = rng
        self.agents = [SimAgent(self, first + k) for k in range(count)]
        self.errors: Counter[str] = Counter()
        self.samples: dict[str, str] = {}
        self.commands = 0
        self.heartbeats = 0
        self.sessions = 0
        self.last_closed = 0.0
        self.running = False
        self.lags: list[tuple[float, float]] = []  # (at, how late a LAG_TICK sleep woke)

    async def watch_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_TICK)
            self.lags.append((time.monotonic(), loop.time() - before - LAG_TICK))

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        self.samples.setdefault(kind, detail[:600])

    # --- control ------------------------------------------------------------------------------------
    async def handle(self, req: Json) -> Json:
        op = req["op"]
        if op == "status":
            return self.status(float(req.get("since", 0.0)))
        if op == "start":
            jitter = float(req.get("jitter", 0.0))
            for agent in self.agents:
                agent.task = asyncio.create_task(agent.run(self.rng.random() * jitter))
            self.running = True
            gc.collect()
            gc.freeze()
            return {"at": time.monotonic()}
        if op == "storm":
            jitter = float(req.get("jitter", 0.0))
            at = time.monotonic()
            for agent in self.agents:
                agent.kick(self.rng.random() * jitter)
            return {"at": at}
        if op == "lag":
            since, until = float(req["since"]), float(req["until"])
            return {"lag": [lag for at, lag in self.lags if since <= at <= until]}
        if op == "connect_times":
            since = float(req["since"])
            return {
                "seconds": [a.connect_seconds for a in self.agents if a.welcomed_at >= since],
            }
        if op == "stop":
            await self.stop()
            return {}
        raise ValueError(f"unknown op {op!r}")

    def status(self, since: float) -> Json:
        welcomed = [a.welcomed_at for a in self.agents if a.connected and a.welcomed_at >= since]
        me = proc_sample_self()
        return {
            "agents": len(self.agents),
            "connected": sum(1 for a in self.agents if a.connected),
            "welcomed_since": len(welcomed),
            "last_welcome": max(welcomed, default=0.0),
            "last_closed": self.last_closed,
            "errors": dict(self.errors),
            "samples": self.samples,
            "commands": self.commands,
            "heartbeats": self.heartbeats,
            "sessions": self.sessions,
            "cpu": me[0],
            "rss": me[1],
        }

    async def stop(self) -> None:
        for agent in self.agents:
            agent.stopping = True
            agent.kick(0.0)
        tasks = [a.task for a in self.agents if a.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:  # asleep in a backoff
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def proc_sample_self() -> tuple[float, int]:
    s = proc_sample(os.getpid())
    return s.cpu, s.rss


class SimAgent:
    def __init__(self, worker: Worker, index: int) -> None:
        self.w = worker
        self.host_id = f"sim-{index}"
        servers = [
            agent_pb2.RedisServerStatus(
                port=7000 + n,
                reachable=True,
                role="master" if n == 0 else "slave",
                run_id=f"{index:08x}{n:032x}",
                redis_version="7.2.4",
                repl_offset=1_000_000 + index,
                primary_host="" if n == 0 else "127.0.0.1",
                primary_port=0 if n == 0 else 7000,
                link_up=n != 0,
                managed=True,
            )
            for n in range(2)
        ]
        self.hello = agent_pb2.ConnectRequest(
            hello=agent_pb2.AgentHello(
                host_id=self.host_id, agent_version="bench-sim", advertise_host="127.0.0.1", servers=servers
            )
        )
        self.beat = agent_pb2.ConnectRequest(heartbeat=agent_pb2.AgentHeartbeat(servers=servers))
        self.task: asyncio.Task[None] | None = None
        self.session_tasks: list[asyncio.Task[None]] = []
        self.connected = False
        self.welcomed = False
        self.began = 0.0
        self.welcomed_at = 0.0
        self.connect_seconds = 0.0
        self.stopping = False
        self.deliberate = False
        self.next_delay = 0.0

    def kick(self, reconnect_after: float) -> None:
        """Closes the stream and its channel on purpose; the agent re-opens it `reconnect_after` later."""
        self.deliberate = True
        self.next_delay = reconnect_after
        self.connected = False
        for task in self.session_tasks:
            task.cancel()

    async def run(self, first_delay: float) -> None:
        attempt = 0
        await asyncio.sleep(first_delay)
        while not self.stopping:
            began = time.monotonic()
            self.deliberate = False
            welcomed = await self.session(began)
            if self.stopping:
                return
            if self.deliberate:
                self.w.last_closed = max(self.w.last_closed, time.monotonic())
                attempt = 0
                delay = self.next_delay
            else:
                attempt = 0 if welcomed and time.monotonic() - began > 30 else attempt
                delay = full_jitter(attempt, rand=self.w.rng.random)
                attempt += 1
            await asyncio.sleep(delay)

    async def session(self, began: float) -> bool:
        """One stream until it breaks or is kicked; True if it was welcomed."""
        self.w.sessions += 1
        self.welcomed = False
        self.began = began
        async with grpc.aio.insecure_channel(self.w.target, options=CHANNEL_OPTIONS) as channel:
            call = agent_pb2_grpc.AgentServiceStub(channel).Connect()
            outbox: asyncio.Queue[agent_pb2.ConnectRequest] = asyncio.Queue()
            outbox.put_nowait(self.hello)
            self.session_tasks = [
                asyncio.create_task(self._read(call, outbox, began)),
                asyncio.create_task(self._write(call, outbox)),
                asyncio.create_task(self._beat(outbox)),
            ]
            if self.deliberate:  # kicked while the channel was being made
                for task in self.session_tasks:
                    task.cancel()
            done, _ = await asyncio.wait(self.session_tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in self.session_tasks:
                task.cancel()
            await asyncio.gather(*self.session_tasks, return_exceptions=True)
            self.session_tasks = []
            self.connected = False
            if not (self.deliberate or self.stopping):
                await self._classify(call, done)
            call.cancel()
        return self.welcomed

    async def _classify(self, call: grpc.aio.StreamStreamCall, done: set[asyncio.Task[None]]) -> None:
        exc: BaseException | None = None
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                exc = task.exception()
        age = f"{time.monotonic() - self.began:.1f} s after opening"
        if isinstance(exc, grpc.aio.AioRpcError):
            self.w.error(
                f"rpc {exc.code().name}",
                f"{self.host_id}, {age}, welcomed={self.welcomed}: {exc.debug_error_string()}",
            )
        elif call.done():
            code = await call.code()
            kind = "stream ended by the scheduler" if code == grpc.StatusCode.OK else f"rpc {code.name}"
            self.w.error(
                kind, f"{self.host_id}, {age}, welcomed={self.welcomed}: {code.name} {await call.details()}"
            )
        else:
            self.w.error(type(exc).__name__ if exc else "stream ended", f"{self.host_id}: {exc!r}")

    async def _read(
        self, call: grpc.aio.StreamStreamCall, outbox: asyncio.Queue[agent_pb2.ConnectRequest], began: float
    ) -> None:
        while True:
            msg = await call.read()
            if msg is grpc.aio.EOF:
                return
            body = msg.WhichOneof("body")
            if body == "command":
                outbox.put_nowait(
                    agent_pb2.ConnectRequest(
                        result=agent_pb2.CommandResult(command_id=msg.command.command_id, ok=True)
                    )
                )
                self.w.commands += 1
            elif body == "welcome":
                now = time.monotonic()
                self.welcomed = True
                self.connected = True
                self.welcomed_at = now
                self.connect_seconds = now - began

    async def _write(
        self, call: grpc.aio.StreamStreamCall, outbox: asyncio.Queue[agent_pb2.ConnectRequest]
    ) -> None:
        while True:
            await call.write(await outbox.get())

    async def _beat(self, outbox: asyncio.Queue[agent_pb2.ConnectRequest]) -> None:
        await asyncio.sleep(self.w.rng.random() * self.w.heartbeat)
        while True:
            outbox.put_nowait(self.beat)
            self.w.heartbeats += 1
            await asyncio.sleep(self.w.heartbeat)


async def amain(args: argparse.Namespace) -> None:
    worker = Worker(args.target, args.first, args.count, args.heartbeat, random.Random(args.seed))
    lag = asyncio.create_task(worker.watch_lag())
    try:
        await serve_control(worker.handle)
    finally:
        lag.cancel()
        if worker.running:
            await worker.stop()


def main(argv: list[str] | None = None) -> None:
    die_with_parent()
    p = argparse.ArgumentParser(prog="bench.agents_sim", description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, help="HOST:PORT of the agent service")
    p.add_argument("--first", type=int, default=0, help="index of the first agent (host id sim-INDEX)")
    p.add_argument("--count", type=int, required=True, help="agents in this worker")
    p.add_argument("--heartbeat", type=float, default=5.0, help="seconds between heartbeats (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nice", type=int, default=0, help="add this to the process's niceness")
    args = p.parse_args(argv)
    if args.nice:
        os.nice(args.nice)
    # The simulated agents stand for thousands of hosts: collect garbage rarely, as the hub does.
    gc.set_threshold(50_000, 50, 100)
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()

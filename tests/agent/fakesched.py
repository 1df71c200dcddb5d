"""A small but real scheduler peer for agent tests: a grpc.aio AgentService on a loopback port.

It records hellos, heartbeats, progress and results, pushes commands to a connected agent, and can
misbehave on purpose (break a stream, refuse connections, lose a result) to exercise reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import grpc.aio
from google.protobuf import timestamp_pb2

from kvmaint.v1 import agent_pb2, agent_pb2_grpc
from tests.support.eventually import eventually

_BREAK = object()


@dataclass
class _Stream:
    host_id: str
    outbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    peer_cn: str | None = None


class FakeScheduler(agent_pb2_grpc.AgentServiceServicer):
    def __init__(self) -> None:
        self.hellos: list[agent_pb2.AgentHello] = []
        self.heartbeats: list[tuple[str, agent_pb2.AgentHeartbeat]] = []
        self.progress: list[agent_pb2.CommandProgress] = []
        self.results: list[agent_pb2.CommandResult] = []
        self.streams: dict[str, _Stream] = {}
        self.connects = 0
        self.attempts = 0
        self.peer_cns: list[str | None] = []
        # Misbehaviour switches.
        self.reject_connections = False
        self.break_on_next_result = False
        self.server: grpc.aio.Server | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, credentials: grpc.ServerCredentials | None = None) -> FakeScheduler:
        self.server = grpc.aio.server()
        agent_pb2_grpc.add_AgentServiceServicer_to_server(self, self.server)
        if credentials is None:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
        else:
            self.port = self.server.add_secure_port("127.0.0.1:0", credentials)
        await self.server.start()
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=0.2)

    # --- the service -------------------------------------------------------------------------------

    async def Connect(self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:
        self.attempts += 1
        if self.reject_connections:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "scheduler refuses connections (test)")
        first = await context.read()
        if first is grpc.aio.EOF or first.WhichOneof("body") != "hello":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "hello must come first")
        hello = first.hello
        auth = context.auth_context()
        cn = auth.get("x509_common_name", [b""])[0].decode() or None
        self.peer_cns.append(cn)
        self.connects += 1
        self.hellos.append(hello)
        stream = _Stream(hello.host_id, peer_cn=cn)
        self.streams[hello.host_id] = stream
        await context.write(
            agent_pb2.ConnectResponse(welcome=agent_pb2.SchedulerWelcome(scheduler_version="fake-1"))
        )
        reader = asyncio.create_task(self._read(context, hello.host_id, stream))
        try:
            while True:
                getter = asyncio.create_task(stream.outbox.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    return  # the agent closed its side (or the read failed)
                item = getter.result()
                if item is _BREAK:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "stream broken on purpose (test)")
                await context.write(item)
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            if self.streams.get(hello.host_id) is stream:
                del self.streams[hello.host_id]

    async def _read(self, context: grpc.aio.ServicerContext, host_id: str, stream: _Stream) -> None:
        while True:
            msg = await context.read()
            if msg is grpc.aio.EOF:
                return
            body = msg.WhichOneof("body")
            if body == "heartbeat":
                self.heartbeats.append((host_id, msg.heartbeat))
            elif body == "progress":
                self.progress.append(msg.progress)
            elif body == "result":
                if self.break_on_next_result:
                    # The result is lost on the way: the stream dies before the scheduler records it.
                    self.break_on_next_result = False
                    stream.outbox.put_nowait(_BREAK)
                    return
                self.results.append(msg.result)

    # --- test controls -----------------------------------------------------------------------------

    async def wait_connected(self, host_id: str, timeout: float = 10.0) -> _Stream:
        return await eventually(
            lambda: self.streams.get(host_id), timeout=timeout, message=f"agent {host_id} connected"
        )

    async def send(self, host_id: str, command: agent_pb2.AgentCommand, timeout: float = 10.0) -> None:
        stream = await self.wait_connected(host_id, timeout)
        stream.outbox.put_nowait(agent_pb2.ConnectResponse(command=command))

    def break_stream(self, host_id: str) -> None:
        stream = self.streams.get(host_id)
        if stream is not None:
            stream.outbox.put_nowait(_BREAK)

    def results_for(self, command_id: str) -> list[agent_pb2.CommandResult]:
        return [r for r in self.results if r.command_id == command_id]

    async def result(self, command_id: str, timeout: float = 15.0) -> agent_pb2.CommandResult:
        found = await eventually(
            lambda: self.results_for(command_id), timeout=timeout, message=f"result of {command_id}"
        )
        return found[0]

    def progress_for(self, command_id: str) -> list[str]:
        return [p.message for p in self.progress if p.command_id == command_id]

    def last_heartbeat(self, host_id: str) -> agent_pb2.AgentHeartbeat | None:
        for host, beat in reversed(self.heartbeats):
            if host == host_id:
                return beat
        return None


def command(command_id: str, deadline_in: float | None = 60.0, **action: Any) -> agent_pb2.AgentCommand:
    """AgentCommand(command_id=..., <one action>=...) with a deadline `deadline_in` seconds from now."""
    msg = agent_pb2.AgentCommand(command_id=command_id, **action)
    if deadline_in is not None:
        ts = timestamp_pb2.Timestamp()
        ts.FromDatetime(datetime.now(UTC) + timedelta(seconds=deadline_in))
        msg.deadline.CopyFrom(ts)
    return msg

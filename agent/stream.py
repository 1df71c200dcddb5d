"""The one bidirectional stream to the scheduler: hello, heartbeats, progress and results out; commands in.

The stream breaks; the agent does not. Commands keep running across a reconnect, their results wait in
the result store, and every result not known to have reached the scheduler is sent again on the next
stream. gRPC gives no per-message acknowledgement, so a result written shortly before the stream broke
(within `resend_window`) is treated as maybe lost and sent again too: the scheduler keys results by
command id, so a duplicate is harmless while a loss is not.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import grpc.aio

from agent.backoff import full_jitter
from agent.commands import CommandRunner
from agent.results import ResultStore
from kvmaint.clock import Clock
from kvmaint.v1 import agent_pb2, agent_pb2_grpc

log = logging.getLogger(__name__)

RESEND_WINDOW_SECONDS = 10.0
# A stream that lived this long counts as healthy: the next failure starts the backoff from scratch.
HEALTHY_SECONDS = 30.0


@dataclass(frozen=True)
class _Result:
    command_id: str
    payload: bytes


_Outgoing = agent_pb2.ConnectRequest | _Result


class StreamClient:
    """Keeps one AgentService.Connect stream open, reconnecting with jittered exponential backoff."""

    def __init__(
        self,
        target: str,
        runner: CommandRunner,
        store: ResultStore,
        clock: Clock,
        hello: Callable[[], Awaitable[agent_pb2.AgentHello]],
        heartbeat: Callable[[], Awaitable[agent_pb2.AgentHeartbeat]],
        heartbeat_seconds: float,
        credentials: grpc.ChannelCredentials | None = None,
        channel_options: list[tuple[str, object]] | None = None,
        token: str = "",
        rand: Callable[[], float] = random.random,
        backoff_cap: float = 10.0,
        resend_window: float = RESEND_WINDOW_SECONDS,
        on_roles: Callable[[agent_pb2.ServerRoles], None] | None = None,
    ) -> None:
        self.target = target
        self.runner = runner
        self.store = store
        self.clock = clock
        self._hello = hello
        self._heartbeat = heartbeat
        self.heartbeat_seconds = heartbeat_seconds
        self.credentials = credentials
        self.channel_options = channel_options or []
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.rand = rand
        self.backoff_cap = backoff_cap
        self.resend_window = resend_window
        self._on_roles = on_roles
        # StatusRequest ids, answered by the heartbeat task in order with the periodic beats, so a
        # heartbeat read later is always sent later (the scheduler keeps the last one it got).
        self._status_requests: asyncio.Queue[int] | None = None
        self._outbox: asyncio.Queue[_Outgoing] | None = None
        self._queued: set[str] = set()
        self._sent: list[tuple[str, float]] = []
        self.connected = asyncio.Event()
        self.sessions = 0
        self.attempts = 0
        self.scheduler_version = ""

    # --- Sink for the command runner (never blocks) ------------------------------------------------

    def send_progress(self, message: agent_pb2.ConnectRequest) -> None:
        if self._outbox is not None:
            self._outbox.put_nowait(message)

    def send_result(self, command_id: str, result: bytes) -> None:
        """Queues a stored result on the open stream; without one it waits in the store for the next."""
        if self._outbox is not None:
            self._queued.add(command_id)
            self._outbox.put_nowait(_Result(command_id, result))

    def beat_now(self) -> None:
        """A heartbeat at once (say after the keeper started a server), not at the next interval."""
        if self._status_requests is not None:
            self._status_requests.put_nowait(0)

    # --- the loop ----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            began = self.clock.monotonic()
            healthy = False
            self.attempts += 1
            try:
                healthy = await self._session(stop)
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as err:
                log.warning(
                    "stream to the scheduler at %s broke: %s %s",
                    self.target,
                    err.code().name,
                    (err.details() or "").strip(),
                )
            except Exception:
                log.exception("stream to the scheduler at %s failed", self.target)
            finally:
                await self._end_session()
            if stop.is_set():
                break
            if healthy or self.clock.monotonic() - began >= HEALTHY_SECONDS:
                attempt = 0
            delay = full_jitter(attempt, cap=self.backoff_cap, rand=self.rand)
            attempt += 1
            log.info("reconnecting to the scheduler in %.2fs (attempt %d)", delay, attempt)
            await _sleep_or_stop(self.clock, delay, stop)

    def _channel(self) -> grpc.aio.Channel:
        if self.credentials is not None:
            return grpc.aio.secure_channel(self.target, self.credentials, options=self.channel_options)
        return grpc.aio.insecure_channel(self.target, options=self.channel_options)

    async def _session(self, stop: asyncio.Event) -> bool:
        """One stream, until it breaks or `stop`; True if the scheduler welcomed us."""
        async with self._channel() as channel:
            call = agent_pb2_grpc.AgentServiceStub(channel).Connect(metadata=self.metadata)
            hello = await self._hello()
            await call.write(agent_pb2.ConnectRequest(hello=hello))
            self.sessions += 1
            outbox: asyncio.Queue[_Outgoing] = asyncio.Queue()
            self._outbox, self._queued, self._sent = outbox, set(), []
            for command_id, payload in await self.store.undelivered():
                if command_id not in self._queued:  # not already queued by a command finishing just now
                    self.send_result(command_id, payload)
            welcomed = asyncio.Event()
            self._status_requests = asyncio.Queue()
            tasks = [
                asyncio.create_task(self._read(call, welcomed), name="stream-read"),
                asyncio.create_task(self._write(call, outbox), name="stream-write"),
                asyncio.create_task(self._beat(outbox, self._status_requests), name="stream-heartbeat"),
                asyncio.create_task(stop.wait(), name="stream-stop"),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            if stop.is_set():
                await self._flush(call, outbox)
                await self._close_call(call)
                return welcomed.is_set()
            for task in done:
                exc = task.exception()
                if exc is not None:
                    raise exc
            log.warning("the scheduler at %s ended the stream", self.target)
            return welcomed.is_set()

    async def _close_call(self, call: grpc.aio.StreamStreamCall) -> None:
        """Half-closes and waits for the scheduler to end the call: a cancel sent at once can overtake
        the last messages written (a result), and the scheduler would drop them unread."""
        try:
            # Real time: gRPC stream I/O timeouts while closing.
            await asyncio.wait_for(call.done_writing(), 1.0)
            await asyncio.wait_for(call.code(), 2.0)
        except (grpc.aio.AioRpcError, TimeoutError, asyncio.InvalidStateError):
            pass
        call.cancel()

    async def _end_session(self) -> None:
        """Forgets the dead stream; results it may have swallowed go back to 'undelivered'."""
        self._outbox = None
        self.connected.clear()
        now = self.clock.monotonic()
        maybe_lost = [cid for cid, at in self._sent if now - at <= self.resend_window]
        self._sent, self._queued = [], set()
        if maybe_lost:
            await self.store.set_delivered(maybe_lost, False)

    async def _read(self, call: grpc.aio.StreamStreamCall, welcomed: asyncio.Event) -> None:
        while True:
            msg = await call.read()
            if msg is grpc.aio.EOF:
                return
            assert isinstance(msg, agent_pb2.ConnectResponse)
            body = msg.WhichOneof("body")
            if body == "welcome":
                self.scheduler_version = msg.welcome.scheduler_version
                if msg.welcome.heartbeat_interval_seconds > 0:
                    self.heartbeat_seconds = float(msg.welcome.heartbeat_interval_seconds)
                log.info(
                    "connected to the scheduler at %s (version %s, heartbeat every %gs)",
                    self.target,
                    self.scheduler_version or "?",
                    self.heartbeat_seconds,
                )
                welcomed.set()
                self.connected.set()
            elif body == "roles":
                if self._on_roles is not None:
                    self._on_roles(msg.roles)
            elif body == "status_request":
                if self._status_requests is not None:
                    self._status_requests.put_nowait(msg.status_request.id)
            elif body == "command":
                log.info("received command %s (%s)", msg.command.command_id, msg.command.WhichOneof("action"))
                self.runner.submit(msg.command)
            else:
                log.warning("ignoring an unknown message from the scheduler (%s)", body)

    async def _write(self, call: grpc.aio.StreamStreamCall, outbox: asyncio.Queue[_Outgoing]) -> None:
        while True:
            await self._write_one(call, await outbox.get())

    async def _write_one(self, call: grpc.aio.StreamStreamCall, item: _Outgoing) -> None:
        if not isinstance(item, _Result):
            await call.write(item)
            return
        await call.write(agent_pb2.ConnectRequest(result=agent_pb2.CommandResult.FromString(item.payload)))
        now = self.clock.monotonic()
        self._sent = [(cid, at) for cid, at in self._sent if now - at <= self.resend_window]
        self._sent.append((item.command_id, now))
        await self.store.set_delivered([item.command_id], True)

    async def _flush(self, call: grpc.aio.StreamStreamCall, outbox: asyncio.Queue[_Outgoing]) -> None:
        """On a graceful stop, writes what is still queued (results of commands that just finished), and
        every stored result not yet written: a write cancelled by the stop took its result off the queue."""
        items: list[_Outgoing] = []
        while not outbox.empty():
            items.append(outbox.get_nowait())
        queued = {i.command_id for i in items if isinstance(i, _Result)}
        items += [
            _Result(cid, payload) for cid, payload in await self.store.undelivered() if cid not in queued
        ]
        try:
            for item in items:
                await asyncio.wait_for(self._write_one(call, item), 2.0)  # real time: gRPC write timeout
        except (grpc.aio.AioRpcError, TimeoutError, asyncio.InvalidStateError) as exc:
            log.info("could not flush the last messages before stopping: %s", exc)

    async def _beat(self, outbox: asyncio.Queue[_Outgoing], requests: asyncio.Queue[int]) -> None:
        """A heartbeat every interval, and one at once for each StatusRequest (carrying its id)."""
        while True:
            answers = await _next_request(self.clock, self.heartbeat_seconds, requests)
            beat = await self._heartbeat()
            beat.answers = answers
            outbox.put_nowait(agent_pb2.ConnectRequest(heartbeat=beat))


async def _next_request(clock: Clock, seconds: float, requests: asyncio.Queue[int]) -> int:
    """The next StatusRequest id (0 for the agent's own `beat_now`), or 0 once `seconds` passed."""
    if not requests.empty():
        return requests.get_nowait()
    getter = asyncio.ensure_future(requests.get())
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait([getter, sleeper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        if not getter.done():
            getter.cancel()
        await asyncio.gather(sleeper, return_exceptions=True)
    if getter.done() and not getter.cancelled():
        return getter.result()
    return 0


async def _sleep_or_stop(clock: Clock, seconds: float, stop: asyncio.Event) -> None:
    sleeper = asyncio.create_task(clock.sleep(seconds))
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([sleeper, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, stopper):
            task.cancel()
        await asyncio.gather(sleeper, stopper, return_exceptions=True)

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
from agent.fence import TermFence
from agent.results import ResultStore
from kvmaint.channel import rich_error
from kvmaint.clock import Clock
from kvmaint.errors import ErrorReason
from kvmaint.v1 import agent_pb2, agent_pb2_grpc

log = logging.getLogger(__name__)

RESEND_WINDOW_SECONDS = 10.0
# A stream that lived this long counts as healthy: the next failure starts the backoff from scratch.
HEALTHY_SECONDS = 30.0
# A scheduler that has not welcomed us this long after dialling is skipped (say a paused process,
# whose kernel still accepts the connection).
WELCOME_SECONDS = 5.0
# Silent for this many leader beat intervals: the leader is gone (paused, cut off); look elsewhere.
BEATS_MISSED = 2.5
# Between two replicas of one round (not leading, or down): short, the round's end backs off.
NEXT_REPLICA_SECONDS = 0.2


def scheduler_targets(target: str) -> list[str]:
    """`a:1,b:2,c:3` -> the replicas to try, in order."""
    return [t.strip() for t in target.split(",") if t.strip()]


class _NotLeader(Exception):
    def __init__(self, target: str, hint: str) -> None:
        super().__init__(
            f"the scheduler at {target} does not lead" + (f"; the leader is {hint}" if hint else "")
        )
        self.hint = hint


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
        fence: TermFence | None = None,
    ) -> None:
        # Scheduler replicas (a comma list): the agent follows the leader, moving on when a stream dies
        # or a replica answers NOT_LEADER (to the leader it names, when it does).
        self.targets = scheduler_targets(target) or [target]
        self.target = self.targets[0]
        self.fence = fence or TermFence(store)
        self.welcome_seconds = WELCOME_SECONDS
        self._last_heard = 0.0
        self._beat_interval = 0.0
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
        # True while waiting to reconnect (its sleep is on the clock): tests step the backoff by it.
        self.backing_off = False
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
        tried = 0  # replicas tried in this round without a welcome
        while not stop.is_set():
            began = self.clock.monotonic()
            healthy = False
            hint = ""
            self.attempts += 1
            try:
                healthy = await self._session(stop)
            except asyncio.CancelledError:
                raise
            except _NotLeader as err:
                log.info("%s", err)
                hint = err.hint
            except TimeoutError:
                log.warning(
                    "the scheduler at %s did not welcome us within %.0fs", self.target, self.welcome_seconds
                )
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
                tried = 0
            if hint:
                # A live replica named the leader: go there next, soon.
                self.target = hint
                delay = NEXT_REPLICA_SECONDS * (0.5 + self.rand())
                tried = min(tried + 1, len(self.targets))
            elif len(self.targets) > 1 and tried + 1 < len(self.targets):
                self.target = self._next_target()
                tried += 1
                delay = NEXT_REPLICA_SECONDS * (0.5 + self.rand())
            else:
                if len(self.targets) > 1:
                    self.target = self._next_target()
                tried = 0
                delay = full_jitter(attempt, cap=self.backoff_cap, rand=self.rand)
                attempt += 1
            log.info("reconnecting to the scheduler at %s in %.2fs (attempt %d)", self.target, delay, attempt)
            self.backing_off = True
            try:
                await _sleep_or_stop(self.clock, delay, stop)
            finally:
                self.backing_off = False

    def _next_target(self) -> str:
        """The replica after the current one in the list (a hinted leader not in it: the first)."""
        try:
            i = self.targets.index(self.target)
        except ValueError:
            return self.targets[0]
        return self.targets[(i + 1) % len(self.targets)]

    def _channel(self) -> grpc.aio.Channel:
        if self.credentials is not None:
            return grpc.aio.secure_channel(self.target, self.credentials, options=self.channel_options)
        return grpc.aio.insecure_channel(self.target, options=self.channel_options)

    async def _session(self, stop: asyncio.Event) -> bool:
        """One stream, until it breaks or `stop`; True if the scheduler welcomed us."""
        async with self._channel() as channel:
            call = agent_pb2_grpc.AgentServiceStub(channel).Connect(metadata=self.metadata)
            hello = await self._hello()
            try:
                await self.clock.wait_for(
                    call.write(agent_pb2.ConnectRequest(hello=hello)), self.welcome_seconds
                )
            except grpc.aio.AioRpcError as err:
                raise _not_leader(self.target, err) from None
            except (asyncio.InvalidStateError, grpc.aio.UsageError):
                raise _not_leader(self.target, await _call_error(call)) from None
            self.sessions += 1
            outbox: asyncio.Queue[_Outgoing] = asyncio.Queue()
            self._outbox, self._queued, self._sent = outbox, set(), []
            for command_id, payload in await self.store.undelivered():
                if command_id not in self._queued:  # not already queued by a command finishing just now
                    self.send_result(command_id, payload)
            welcomed = asyncio.Event()
            self._status_requests = asyncio.Queue()
            self._last_heard, self._beat_interval = self.clock.monotonic(), 0.0
            tasks = [
                asyncio.create_task(self._read(call, welcomed), name="stream-read"),
                asyncio.create_task(self._write(call, outbox), name="stream-write"),
                asyncio.create_task(self._beat(outbox, self._status_requests), name="stream-heartbeat"),
                asyncio.create_task(self._watch(welcomed), name="stream-watchdog"),
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
                if isinstance(exc, grpc.aio.AioRpcError):
                    raise _not_leader(self.target, exc)
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

    async def _watch(self, welcomed: asyncio.Event) -> None:
        """Ends the session when the scheduler does not welcome us in time, or when a leader that
        promised beats falls silent for a few of them (a paused or cut-off leader keeps the TCP
        connection open; the agent must find the new one)."""
        try:
            await self.clock.wait_for(welcomed.wait(), self.welcome_seconds)
        except TimeoutError:
            raise TimeoutError(f"no welcome from {self.target}") from None
        while True:
            if self._beat_interval <= 0:
                await self.clock.sleep(1.0)
                continue
            limit = self._beat_interval * BEATS_MISSED
            silent = self.clock.monotonic() - self._last_heard
            if silent >= limit:
                log.warning(
                    "the scheduler leader at %s has been silent for %.1fs; looking for another",
                    self.target,
                    silent,
                )
                return
            await self.clock.sleep(limit - silent)

    async def _read(self, call: grpc.aio.StreamStreamCall, welcomed: asyncio.Event) -> None:
        while True:
            msg = await call.read()
            if msg is grpc.aio.EOF:
                return
            assert isinstance(msg, agent_pb2.ConnectResponse)
            self._last_heard = self.clock.monotonic()
            body = msg.WhichOneof("body")
            if body == "beat":
                await self.fence.see(msg.beat.term)
            elif body == "welcome":
                await self.fence.see(msg.welcome.term)
                self._beat_interval = msg.welcome.beat_interval_ms / 1000
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
                if not self.fence.admits(msg.roles.term):
                    log.warning(
                        "ignoring roles of leader term %d (seen %d)", msg.roles.term, self.fence.highest
                    )
                elif self._on_roles is not None:
                    await self.fence.see(msg.roles.term)
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


def _not_leader(target: str, err: grpc.aio.AioRpcError | None) -> Exception:
    """A NOT_LEADER refusal as _NotLeader (with the leader it names); any other error as it is."""
    if err is None:
        return ConnectionError(f"the stream to {target} ended before the hello was sent")
    if err.code() == grpc.StatusCode.FAILED_PRECONDITION:
        info = rich_error(err.code(), err.details() or "", err.trailing_metadata())
        if info.reason == ErrorReason.NOT_LEADER:
            return _NotLeader(target, info.metadata.get("leader", ""))
    out: Exception = err
    return out


async def _call_error(call: grpc.aio.StreamStreamCall) -> grpc.aio.AioRpcError | None:
    """The status a call ended with, as the error grpc would raise, when it ended in one."""
    try:
        code = await call.code()
    except grpc.aio.AioRpcError as err:
        return err
    if code == grpc.StatusCode.OK:
        return None
    return grpc.aio.AioRpcError(
        code, await call.initial_metadata(), await call.trailing_metadata(), await call.details()
    )


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

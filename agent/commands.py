"""Runs the scheduler's commands: once per command id, one at a time per server, servers in parallel.

Each command ends in exactly one CommandResult, stored durably before it is handed to the stream. A
command id seen again is not run again: while it runs the repeat is noted, afterwards the kept result
is sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Protocol

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from agent.convert import (
    CatchUpCheck,
    Command,
    Failover,
    ForcePromote,
    Invalid,
    PublishNotice,
    ReplicateFrom,
    RestartServer,
    StartServer,
    StopServer,
    command_from_proto,
    outcome_to_result,
    progress_message,
)
from agent.fence import TermFence
from agent.inventory import Inventory
from agent.metrics import AgentMetrics
from agent.outcome import Outcome, Progress
from agent.redisnode import RedisNode
from agent.results import ResultStore
from kvmaint.clock import Clock, iso
from kvmaint.errors import ErrorReason, KvmaintError
from kvmaint.obs import logs, tracing
from kvmaint.v1 import agent_pb2

log = logging.getLogger(__name__)

START_ATTEMPTS = 3


class Sink(Protocol):
    """Where progress and results go (the stream client); must not block."""

    def send_progress(self, message: agent_pb2.ConnectRequest) -> None: ...

    def send_result(self, command_id: str, result: bytes) -> None: ...


class _NullSink:
    def send_progress(self, message: agent_pb2.ConnectRequest) -> None:
        pass

    def send_result(self, command_id: str, result: bytes) -> None:
        pass


class CommandRunner:
    def __init__(
        self,
        inventory: Inventory,
        store: ResultStore,
        clock: Clock,
        sink: Sink | None = None,
        metrics: AgentMetrics | None = None,
        tracer: trace.Tracer | None = None,
        fence: TermFence | None = None,
    ) -> None:
        self.metrics = metrics or AgentMetrics("")
        self.fence = fence or TermFence(store)
        self.tracer = tracer or trace.NoOpTracer()
        self.inventory = inventory
        self.store = store
        self.clock = clock
        self.sink: Sink = sink or _NullSink()
        self._running: dict[str, asyncio.Task[None]] = {}
        self.accepting = True
        # How many times each action really ran in this life of the agent (for logs and tests).
        self.executions: dict[str, int] = {}

    def submit(self, msg: agent_pb2.AgentCommand) -> asyncio.Task[None] | None:
        """Accepts a command without waiting for it; returns the task that answers it, if any."""
        command_id = msg.command_id
        if not command_id:
            log.warning("ignoring a command without command_id: %s", msg.WhichOneof("action"))
            return None
        if not self.accepting:
            # No result is stored: the scheduler sends it again after the restart and it runs then.
            log.warning("agent is stopping; not starting command %s", command_id)
            return None
        if command_id in self._running:
            log.info("command %s is already running; it will answer once", command_id)
            self.sink.send_progress(progress_message(command_id, "already running"))
            return self._running[command_id]
        task = asyncio.create_task(self._handle(msg), name=f"command-{command_id}")
        self._running[command_id] = task
        task.add_done_callback(lambda _t: self._running.pop(command_id, None))
        return task

    @property
    def running(self) -> list[str]:
        return list(self._running)

    async def drain(self, timeout: float) -> bool:
        """Stops taking commands and lets running ones finish (a failover cut short leaves work for a
        re-run); True if all finished within `timeout` seconds."""
        self.accepting = False
        tasks = list(self._running.values())
        if not tasks:
            return True
        log.info("waiting up to %.0fs for %d running command(s) to finish", timeout, len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=timeout)  # real time: shutdown drain of the process
        return not pending

    async def close(self) -> None:
        self.accepting = False
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, msg: agent_pb2.AgentCommand) -> None:
        try:
            await self._answer(msg)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Most likely the result store failed (disk full): no result is kept or sent, so the
            # scheduler's resend runs the command again, which every command is safe for.
            log.exception("command %s could not be answered", msg.command_id)

    async def _answer(self, msg: agent_pb2.AgentCommand) -> None:
        command = command_from_proto(msg)
        parent = tracing.extract(command.trace_context)
        logs.bind(**tracing.baggage_of(parent))  # this task is this command's: its lines name the maintenance
        kept = await self.store.get(command.command_id)
        if kept is not None:
            log.info("command %s ran before; sending its kept result again", command.command_id)
            self.sink.send_result(command.command_id, kept)
            return
        if not self.fence.admits(msg.term):
            # Not kept: the same command id from the current leader must still run.
            log.warning("command %s refused: term %d < %d", command.command_id, msg.term, self.fence.highest)
            refused = agent_pb2.CommandResult(
                command_id=command.command_id,
                ok=False,
                error=self.fence.refusal(msg.term),
                message=self.fence.refusal(msg.term),
                reason=ErrorReason.STALE_TERM,
            )
            self.sink.send_result(command.command_id, refused.SerializeToString())
            return
        await self.fence.see(msg.term)
        log.info("command %s admitted under leader term %d", command.command_id, msg.term)
        first_time = await self.store.mark_started(command.command_id, iso(self.clock.now()))
        if not first_time:
            log.warning(
                "command %s was interrupted before it finished (agent restart); running it again",
                command.command_id,
            )
        with self.tracer.start_as_current_span(
            f"agent {command.kind}", context=parent, attributes={"kvmaint.command_id": command.command_id}
        ) as span:
            outcome = await self._execute(command)
            span.set_attribute("kvmaint.ok", outcome.ok)
            if not outcome.ok:
                span.set_status(Status(StatusCode.ERROR, outcome.error))
        self.metrics.commands.labels(command.kind, "ok" if outcome.ok else "failed").inc()
        log.info(
            "command %s (%s) %s: %s",
            command.command_id,
            command.kind,
            "succeeded" if outcome.ok else "failed",
            outcome.message or outcome.error,
        )
        result = outcome_to_result(command.command_id, outcome).SerializeToString()
        kept = await self.store.put(command.command_id, result, iso(self.clock.now()))
        self.sink.send_result(command.command_id, kept)

    def _expired(self, command: Command) -> bool:
        return command.deadline is not None and self.clock.now() > command.deadline

    def _progress(self, command_id: str) -> Progress:
        def report(message: str, *, lag_bytes: int = 0, fields: Mapping[str, str] | None = None) -> None:
            log.debug("command %s: %s", command_id, message)
            self.sink.send_progress(progress_message(command_id, message, lag_bytes, dict(fields or {})))

        return report

    async def _execute(self, command: Command) -> Outcome:
        if self._expired(command):
            return Outcome.failed("deadline passed")
        action = command.action
        if action is None:
            return Outcome.failed(
                "Unknown or empty command action; this agent may be older than the scheduler."
            )
        if isinstance(action, Invalid):
            return Outcome.failed(action.reason)
        self.executions[command.command_id] = self.executions.get(command.command_id, 0) + 1
        progress = self._progress(command.command_id)
        log.info("command %s: %s", command.command_id, action)
        try:
            if isinstance(action, StartServer):
                return await self._start_server(command, action, progress)
            if isinstance(action, StopServer) and self.inventory.get(action.port) is None:
                if self.inventory.was_retired(action.port):
                    return Outcome.done(f"Port {action.port} was already stopped.", port=action.port)
                return Outcome.failed(f"No server on port {action.port} is known to this agent.")
            node = self.inventory.get(action.port)
            if node is None:
                return Outcome.failed(f"No server on port {action.port} is known to this agent.")
            async with node.lock:
                if self._expired(command):
                    return Outcome.failed("deadline passed")
                await node.drop_idle_connections()
                return await self._on_node(node, action, progress)
        except KvmaintError as exc:
            return Outcome.failed(str(exc))
        except Exception as exc:
            log.exception("command %s failed unexpectedly", command.command_id)
            return Outcome.failed(f"Internal error: {type(exc).__name__}: {exc}")

    async def _on_node(self, node: RedisNode, action: object, progress: Progress) -> Outcome:
        if isinstance(action, CatchUpCheck):
            verdict = await node.catch_up_check(
                action.primary_host, action.primary_port, action.max_lag_bytes, action.max_last_io_seconds
            )
            return Outcome(
                ok=verdict.ok,
                message=verdict.reason,
                error="" if verdict.ok else verdict.reason,
                server=await node.status(),
                lag_bytes=verdict.lag_bytes,
                last_io_seconds_ago=verdict.last_io_seconds_ago,
                link_up=verdict.link_up,
            )
        if isinstance(action, Failover):
            return await node.failover(
                action.target_host,
                action.target_port,
                action.timeout_ms,
                progress,
                (action.failing_over, action.failed_over),
            )
        if isinstance(action, PublishNotice):
            return await node.publish_notice(action.notice)
        if isinstance(action, ForcePromote):
            return await node.force_promote(action.last_lag_bytes, action.max_lag_bytes)
        if isinstance(action, ReplicateFrom):
            return await node.replicate_from(action.primary_host, action.primary_port, progress)
        if isinstance(action, RestartServer):
            build = self.inventory.builds.resolve(action.build) if action.build else None
            outcome = await node.restart(progress, action.role, build)
            if outcome.ok:
                self.metrics.restarted(node.port)
            return outcome
        if isinstance(action, StopServer):
            outcome = await node.stop(progress)
            if outcome.ok:
                moved = await self.inventory.forget(node.port)
                if moved is not None:
                    outcome.message = f"Stopped port {node.port}; its files were moved to {moved}."
            return outcome
        return Outcome.failed(f"Unsupported action {type(action).__name__}.")

    async def _start_server(self, command: Command, action: StartServer, progress: Progress) -> Outcome:
        replicaof = None
        if action.replicate_from_host:
            replicaof = (action.replicate_from_host, action.replicate_from_port)
        build = self.inventory.builds.resolve(action.build)
        outcome = Outcome.failed("not started")
        for _ in range(START_ATTEMPTS if action.port == 0 else 1):
            node, created = await self.inventory.create(action.port, replicaof, build, action.auth)
            async with node.lock:
                if self._expired(command):
                    return Outcome.failed("deadline passed")
                progress(f"starting redis-server on port {node.port}")
                outcome = await node.start()
                if outcome.ok:
                    if replicaof is not None:
                        status = await node.wait_linked(5.0)
                        outcome.server, outcome.link_up = status, status.link_up
                    return outcome
            if created:
                # A fresh server that never ran holds no data: drop it, try another port if ours.
                await self.inventory.forget(node.port, keep=False)
        return outcome

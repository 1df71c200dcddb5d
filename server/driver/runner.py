"""Walks each started maintenance through durable steps.

Each step is persisted before it runs (current_step, history, event) and after it finished (added to
`DriverState.done` with its outputs), so a restarted scheduler resumes at the step it was in and never
repeats a finished one. Command ids derive from the maintenance id and step, so a command re-sent after
a restart is answered from the agent's kept result instead of running twice.

Invariant (one writable primary): the only step that moves the primary role is `failover`, done by the
agent as pause -> demote old -> promote new. Before it completes, any failure leaves the old primary as
the primary; after it, nothing rolls back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from kvmaint.clock import iso
from kvmaint.errors import ErrorReason, KvmaintError, NotFound, NotLeader, Resource
from kvmaint.obs import logs
from kvmaint.redact import redact_url
from kvmaint.v1 import agent_pb2
from server.agents.hub import AgentHub
from server.domain import lifecycle
from server.domain import steps as S
from server.domain.credentials import redis_url
from server.domain.driverstate import StepOutputs
from server.domain.models import Addon, EventType, HistoryEntry, Maintenance, Role, ServerRef, Status
from server.driver.notices import failover_notices
from server.driver.roles import desired_role, restart_mismatch
from server.service.core import Context, Write

log = logging.getLogger(__name__)


class StepFailed(KvmaintError):
    pass


@dataclass
class DriverConfig:
    catch_up_timeout: float = 60.0
    command_timeout: float = 60.0
    failover_timeout_ms: int = 5000
    max_lag_bytes: int = 1 << 20
    max_last_io_seconds: int = 20
    poll_seconds: float = 0.2
    post_failover_retries: int = 3


@dataclass(frozen=True)
class StepResult:
    message: str
    outputs: StepOutputs | None = None
    # Extra attributes of the step's completion event (the repoint's old and new client addresses,
    # which the Sentinel endpoint publishes as +switch-master).
    event: dict[str, str] = field(default_factory=dict)


def _cid(m: Maintenance) -> str:
    """Prefix of the command ids of this attempt: agents answer a known id from their kept result, so
    an attempt after a failed one must not reuse the first one's ids."""
    return m.id if m.attempts == 0 else f"{m.id}/try{m.attempts}"


def _hosts(m: Maintenance, addon: Addon) -> set[str]:
    """Every host the maintenance touches: the add-on's servers, and the old primary and target (one of
    which may have left the record at the repoint)."""
    keys = {s.key for s in addon.servers} | set(m.state.servers())
    return {_split(key)[0] for key in keys}


def _split(key: str) -> tuple[str, int]:
    host, _, port = key.rpartition(":")
    return host, int(port)


class MaintenanceRunner:
    def __init__(self, ctx: Context, hub: AgentHub, config: DriverConfig | None = None) -> None:
        self.ctx = ctx
        self.hub = hub
        self.config = config or DriverConfig()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._releases: set[asyncio.Task[None]] = set()

    # --- lifecycle -------------------------------------------------------------------------
    def kick(self, maintenance_id: str) -> None:
        if not self.hub.acting():
            # A replica that does not lead runs nothing; the leader picks the maintenance up (it
            # resumes every running one each tick).
            log.info("not running maintenance %s here: this replica does not lead", maintenance_id)
            return
        task = self._tasks.get(maintenance_id)
        if task is None or task.done():
            self._tasks[maintenance_id] = asyncio.create_task(
                self._run_guarded(maintenance_id), name=f"maintenance-{maintenance_id}"
            )

    async def resume(self) -> int:
        """Kicks every maintenance in progress that has no task here; returns how many."""
        async with self.ctx.store.read() as tx:
            running = await tx.in_progress_maintenances()
        fresh = [m for m in running if m.id not in self._tasks or self._tasks[m.id].done()]
        for m in fresh:
            log.info("resuming maintenance %s of %s at step %r", m.id, m.addon, m.current_step)
            self.kick(m.id)
        return len(fresh)

    def cancel(self) -> list[asyncio.Task[None]]:
        """Cancels every maintenance's task now, without waiting (a replica losing its lease must not
        take one more step while other work winds down); returns them to await."""
        tasks = [*self._tasks.values(), *self._releases]
        for task in tasks:
            task.cancel()
        return tasks

    async def close(self) -> None:
        """Cancels every maintenance's task (at shutdown, or on losing leadership): each stays at its
        durable step for the next leader's `resume`."""
        await asyncio.gather(*self.cancel(), return_exceptions=True)
        self._tasks = {mid: t for mid, t in self._tasks.items() if not t.done()}

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Write]:
        """The context's write, fenced on replicas: it commits only while the lease in the database is
        still this replica's at its term, so a leader that woke from a pause records nothing."""
        async with self.ctx.write() as w:
            fence = self.hub.leadership
            if fence is not None:
                leader = await w.tx.get_leader()
                if leader is None or leader.holder != fence.replica_id or leader.term != fence.term:
                    fence.step_down("the lease in the database is not ours at our term")
                    raise NotLeader(f"Not recording: this replica no longer leads (term {fence.term}).")
            yield w

    def _release(self, hosts: set[str]) -> None:
        """The ended maintenance's servers go back to the keepers, in the roles the record now gives
        them. Sent off the maintenance's task, so that a `run` right after a failed attempt starts a new
        task instead of finding this one still busy."""
        task = asyncio.create_task(self.hub.push_roles(hosts), name="release-roles")
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def wait(self, maintenance_id: str) -> None:
        task = self._tasks.get(maintenance_id)
        if task is not None:
            await asyncio.shield(task)

    # --- the loop --------------------------------------------------------------------------
    async def _load(self, mid: str) -> tuple[Maintenance, Addon] | None:
        async with self.ctx.store.read() as tx:
            m = await tx.get_maintenance(mid)
            addon = await tx.get_addon(m.addon) if m else None
        return (m, addon) if m and addon else None

    async def _run_guarded(self, mid: str) -> None:
        """A crash of the loop itself (say the database is gone) is logged; the maintenance stays at its
        durable step and resumes on the next kick or scheduler start."""
        try:
            with logs.bound(maintenance_id=mid):
                await self._run(mid)
        except asyncio.CancelledError:
            raise
        except NotLeader as err:
            log.warning("maintenance %s: left at its durable step for the leader: %s", mid, err)
        except Exception:
            log.exception("maintenance %s: the step loop stopped", mid)

    async def _run(self, mid: str) -> None:
        retries = 0
        held = False
        while True:
            loaded = await self._load(mid)
            if loaded is None:
                return
            m, addon = loaded
            if m.status.ended or m.status is Status.PENDING:
                return
            if not held:
                # The keepers of the add-on's hosts hold its servers before the first command reaches
                # them (same stream, sent first): the steps own them until the maintenance ends.
                await self.hub.push_roles(_hosts(m, addon))
                held = True
            plan = S.steps_for(m.method, m.state.outage)
            step = S.next_step(plan, m.state)
            if step is None:
                # Fresh reports before `completed` is visible: the last heartbeat may predate the failover
                # (the new primary still a replica in it), and status is read right after.
                await self.hub.refresh(_hosts(m, addon))
                await self._complete(m)
                self._release(_hosts(m, addon))
                return
            m = await self._begin(m, step)
            try:
                with self.ctx.obs.step(m, step):
                    result = await getattr(self, f"_step_{step}")(m, addon)
            except asyncio.CancelledError:
                raise
            except NotLeader as err:
                # Not a failure of the maintenance: it stays at its durable step for the new leader.
                log.warning("maintenance %s: stopped at step %s: %s", mid, step, err)
                return
            except Exception as err:
                reason = str(err) if isinstance(err, KvmaintError) else f"internal error: {err!r}"
                if not isinstance(err, KvmaintError):
                    log.exception("maintenance %s step %s crashed", mid, step)
                if m.state.past_point_of_no_return and retries < self.config.post_failover_retries:
                    retries += 1
                    await self._note(m, step, f"{step} failed ({reason}); retrying")
                    await self.ctx.clock.sleep(1.0)
                    continue
                await self.hub.refresh(_hosts(m, addon))
                await self._fail(m, step, reason)
                self._release(_hosts(m, addon))
                return
            await self._end(m, step, result)

    # --- persistence of progress -----------------------------------------------------------
    async def _refresh(self, mid: str) -> Maintenance:
        async with self.ctx.store.read() as tx:
            m = await tx.get_maintenance(mid)
        if m is None:
            raise NotFound(
                f"maintenance {mid} vanished",
                reason=ErrorReason.MAINTENANCE_NOT_FOUND,
                resource=Resource("Maintenance", mid),
            )
        return m

    async def _record(
        self, w: Write, m: Maintenance, now: datetime, status: Status, step: str, text: str, **extra: str
    ) -> None:
        """One history line and its maintenance_step event, in the caller's transaction."""
        await w.tx.add_history(m.id, HistoryEntry(now, status, step, text))
        await w.emit(
            EventType.MAINTENANCE_STEP,
            self.ctx,
            m.app,
            m.addon,
            m.id,
            text,
            step=step,
            status=status.value,
            **extra,
        )

    def _clear_note(self, mid: str) -> None:
        """Live notes belong to the command that wrote them; a new history line supersedes them."""
        lag = self.ctx.progress.get(mid, (-1, ""))[0]
        self.ctx.progress[mid] = (lag, "")

    async def _begin(self, m: Maintenance, step: str) -> Maintenance:
        self._clear_note(m.id)
        now = self.ctx.clock.now()
        async with self._write() as w:
            cur = await w.tx.get_maintenance(m.id)
            assert cur is not None
            resumed = cur.current_step == step
            cur = lifecycle.begin_step(cur, step, self.ctx.obs.with_trace(cur.state))
            await w.tx.update_maintenance(cur)
            text = f"{'Resuming' if resumed else 'Starting'} step {step}"
            await self._record(w, m, now, cur.status, step, text)
        return cur

    async def _end(self, m: Maintenance, step: str, result: StepResult) -> None:
        self._clear_note(m.id)
        now = self.ctx.clock.now()
        async with self._write() as w:
            cur = await w.tx.get_maintenance(m.id)
            assert cur is not None
            cur = lifecycle.step_done(cur, step, result.outputs)
            await w.tx.update_maintenance(cur)
            await self._record(w, m, now, cur.status, step, result.message, done="true", **result.event)

    async def _note(self, m: Maintenance, step: str, text: str) -> None:
        now = self.ctx.clock.now()
        async with self._write() as w:
            cur = await w.tx.get_maintenance(m.id)
            assert cur is not None
            await self._record(w, m, now, cur.status, step, text)

    async def _complete(self, m: Maintenance) -> None:
        now = self.ctx.clock.now()
        self.ctx.progress.pop(m.id, None)
        async with self._write() as w:
            cur = await w.tx.get_maintenance(m.id)
            assert cur is not None
            cur = lifecycle.complete(cur, now)
            await w.tx.update_maintenance(cur)
            outage = " (restarted in place: an outage)" if cur.state.outage else ""
            pause = f", writes paused {cur.write_pause_ms} ms" if cur.write_pause_ms >= 0 else ""
            text = f"Completed in {cur.duration_seconds} s{pause}{outage}"
            await w.tx.add_history(m.id, HistoryEntry(now, Status.COMPLETED, "", text))
            await w.emit(
                EventType.MAINTENANCE_COMPLETED,
                self.ctx,
                m.app,
                m.addon,
                m.id,
                text,
                duration_seconds=str(cur.duration_seconds),
                write_pause_ms=str(cur.write_pause_ms),
                redirect_ms=str(cur.redirect_ms),
            )
        self.ctx.obs.ended(cur)
        log.info("maintenance %s of %s completed", m.id, m.addon)

    async def _fail(self, m: Maintenance, step: str, reason: str) -> None:
        """Before the point of no return the attempt is counted and the maintenance goes back to pending
        (domain/lifecycle.on_failure); after it, it ends failed."""
        await self._discard_hidden(await self._refresh(m.id))
        now = self.ctx.clock.now()
        self.ctx.progress.pop(m.id, None)
        async with self._write() as w:
            cur = await w.tx.get_maintenance(m.id)
            assert cur is not None
            out = lifecycle.on_failure(
                cur, lifecycle.Failure(step, reason, cur.state.past_point_of_no_return), now
            )
            await w.tx.update_maintenance(out.maintenance)
            await w.tx.add_history(m.id, out.history)
            await w.emit(
                EventType.MAINTENANCE_FAILED, self.ctx, m.app, m.addon, m.id, out.message, **out.attributes
            )
        self.ctx.obs.ended(cur)
        log.warning("maintenance %s of %s failed at %s: %s", m.id, m.addon, step, reason)

    async def _discard_hidden(self, m: Maintenance) -> None:
        """A hidden standby started for a maintenance that then failed is stopped and forgotten."""
        if not m.state.hidden or not m.state.target or m.state.past_point_of_no_return:
            return
        host, port = _split(m.state.target)
        try:
            await self.hub.call(
                host,
                f"{_cid(m)}/discard",
                "stop_server",
                agent_pb2.StopServerCommand(port=port),
                self.config.command_timeout / 4,
            )
        except KvmaintError as err:
            log.warning("could not stop hidden standby %s: %s", m.state.target, err)
        async with self._write() as w:
            addon = await w.tx.get_addon(m.addon)
            if addon is not None:
                servers = tuple(s for s in addon.servers if s.key != m.state.target)
                await w.tx.update_addon(addon.with_servers(servers))

    # --- helpers ---------------------------------------------------------------------------
    async def _command(
        self,
        host: str,
        command_id: str,
        action: str,
        message: object,
        timeout: float | None = None,
        on_fields: Callable[[dict[str, str]], None] | None = None,
    ) -> agent_pb2.CommandResult:
        def on_progress(p: agent_pb2.CommandProgress) -> None:
            self.ctx.progress[command_id.split("/")[0]] = (p.lag_bytes, p.message)
            if on_fields is not None and p.fields:
                on_fields(dict(p.fields))

        result = await self.hub.call(
            host, command_id, action, message, timeout or self.config.command_timeout, on_progress
        )
        return result

    async def _restart(
        self, m: Maintenance, addon: Addon, key: str, command_id: str
    ) -> agent_pb2.CommandResult:
        """Restarts `key` in the role the add-on's record gives it, onto the maintenance's target build
        (if any); raises when it came back in another role."""
        host, port = _split(key)
        role = desired_role(addon, key, self._endpoint)
        r = await self._command(
            host,
            command_id,
            "restart_server",
            agent_pb2.RestartServerCommand(port=port, role=role, build=m.target_build),
        )
        wrong = restart_mismatch(r, role) if r.ok else ""
        if wrong:
            raise StepFailed(f"{key} was restarted but {wrong}: {r.message}")
        return r

    def _require_build(self, m: Maintenance, host: str, what: str) -> None:
        """Fails (before the failover) when a connected host lacks the target build."""
        if not m.target_build:
            return
        have = self.hub.builds_of(host)
        if have is None or any(b.name == m.target_build for b in have):
            return
        names = ", ".join(f"{b.name} {b.version}" for b in have) or "none"
        raise StepFailed(
            f"host {host} ({what}) has no build {m.target_build} ({m.target_version}); it has: {names}"
        )

    @staticmethod
    def _check_version(m: Maintenance, key: str, r: agent_pb2.CommandResult, what: str) -> str:
        """What a restart moved the server onto, for the step's sentence. With a target build, the version
        the server reports afterwards must be the build's: else the step fails, naming host and versions."""
        if not m.target_build:
            return "the new build"
        got = r.server.version if r.HasField("server") else ""
        if got != m.target_version:
            host, _ = _split(key)
            raise StepFailed(
                f"{what} {key} on host {host} came back on version {got or 'unknown'}, not "
                f"{m.target_version} of build {m.target_build}"
            )
        return f"build {m.target_build} (version {got})"

    def _endpoint(self, key: str) -> tuple[str, int]:
        host, port = _split(key)
        return self.hub.endpoint_host(host), port

    async def _wait_caught_up(self, m: Maintenance, target: str, primary: str, prefix: str) -> str:
        host, port = _split(target)
        clock = self.ctx.clock
        deadline = clock.monotonic() + self.config.catch_up_timeout
        attempt = 0
        last = "no answer yet"
        while clock.monotonic() < deadline:
            attempt += 1
            # Re-resolved each time: after a scheduler restart a host's address may be learnt late.
            p_host, p_port = self._endpoint(primary)
            check = agent_pb2.CatchUpCheckCommand(
                port=port,
                primary_host=p_host,
                primary_port=p_port,
                max_lag_bytes=self.config.max_lag_bytes,
                max_last_io_seconds=self.config.max_last_io_seconds,
            )
            try:
                r = await self._command(
                    host,
                    f"{_cid(m)}/{prefix}/{attempt}",
                    "catch_up_check",
                    check,
                    max(1.0, deadline - clock.monotonic()),
                )
            except NotLeader:
                raise
            except KvmaintError as err:
                last = str(err)
                break
            link = "up" if r.link_up else "down"
            self.ctx.progress[m.id] = (
                r.lag_bytes,
                f"standby {target}: link {link}, {r.lag_bytes} bytes behind",
            )
            if r.ok:
                return (
                    f"standby {target} caught up: link up, {r.lag_bytes} bytes behind, "
                    f"last I/O {r.last_io_seconds_ago} s ago"
                )
            last = (
                r.error or f"link {link}, {r.lag_bytes} bytes behind, last I/O {r.last_io_seconds_ago} s ago"
            )
            await clock.sleep(self.config.poll_seconds)
        raise StepFailed(
            f"the standby {target} did not catch up within {self.config.catch_up_timeout:g} s ({last})"
        )

    # --- the steps -------------------------------------------------------------------------
    async def _step_prepare(self, m: Maintenance, addon: Addon) -> StepResult:
        primary = addon.primary
        if primary is None:
            raise StepFailed(f"add-on {addon.name} has no primary server")
        if m.state.target:
            return StepResult(f"standby {m.state.target} ready")
        self._require_build(m, primary.host, f"primary {primary.key}")
        if addon.standby is not None:
            self._require_build(m, addon.standby.host, f"standby {addon.standby.key}")
            return StepResult(
                f"HA standby {addon.standby.key} will take over",
                StepOutputs(target=addon.standby.key, old_primary=primary.key),
            )
        hidden = next((s for s in addon.servers if s.role is Role.HIDDEN_STANDBY), None)
        if hidden is not None:  # started before a crash, recorded on the add-on
            return StepResult(
                f"hidden standby {hidden.key} will take over",
                StepOutputs(target=hidden.key, old_primary=primary.key, hidden=True),
            )
        others = [h for h in self.hub.hosts() if h != primary.host]
        candidates = [
            h
            for h in others
            if not m.target_build or any(b.name == m.target_build for b in self.hub.builds_of(h) or ())
        ]
        if others and not candidates:
            raise StepFailed(
                f"no host for a hidden standby has build {m.target_build} ({m.target_version}): "
                f"{', '.join(others)} lack it"
            )
        if not candidates:
            return StepResult(
                "no other host can hold a hidden standby: the server will be restarted in place (an outage)",
                StepOutputs(old_primary=primary.key, outage=True),
            )
        host = candidates[0]
        p_host, p_port = self._endpoint(primary.key)
        async with self.ctx.store.read() as tx:
            creds = await tx.get_credentials(addon.name)
        r = await self._command(
            host,
            f"{_cid(m)}/prepare/start",
            "start_server",
            agent_pb2.StartServerCommand(
                port=0,
                replicate_from_host=p_host,
                replicate_from_port=p_port,
                build=m.target_build,
                auth=creds.to_proto() if creds is not None else None,
            ),
        )
        if not r.ok:
            raise StepFailed(f"could not start a hidden standby on {host}: {r.error}")
        target = ServerRef(host, r.port, Role.HIDDEN_STANDBY)
        onto = self._check_version(m, target.key, r, "hidden standby")
        async with self._write() as w:
            current = await w.tx.get_addon(addon.name)
            assert current is not None
            await w.tx.update_addon(current.with_servers((*current.servers, target)))
        return StepResult(
            f"hidden standby {target.key} started on {onto}, replicating from {primary.key}",
            StepOutputs(target=target.key, old_primary=primary.key, hidden=True),
        )

    async def _step_catch_up(self, m: Maintenance, addon: Addon) -> StepResult:
        return StepResult(await self._wait_caught_up(m, m.state.target, m.state.old_primary, "catch_up"))

    async def _step_maintain_standby(self, m: Maintenance, addon: Addon) -> StepResult:
        target = m.state.target
        if m.state.hidden:
            return StepResult(f"hidden standby {target} already runs the new build")
        r = await self._restart(m, addon, target, f"{_cid(m)}/maintain_standby/restart")
        if r.ok:
            onto = self._check_version(m, target, r, "standby")
            note = f"standby {target} restarted onto {onto}"
        else:
            if "adopted" not in r.error or m.target_build:
                raise StepFailed(f"could not restart the standby {target}: {r.error}")
            note = f"standby {target} is adopted, not managed by its agent: left running ({r.error})"
        caught = await self._wait_caught_up(m, target, m.state.old_primary, "maintain_standby/catch_up")
        return StepResult(f"{note}; {caught}")

    async def _step_failover(self, m: Maintenance, addon: Addon) -> StepResult:
        host, port = _split(m.state.old_primary)
        t_host, t_port = self._endpoint(m.state.target)
        timeout_s = self.config.failover_timeout_ms / 1000 + self.config.command_timeout
        sent = self.ctx.clock.monotonic()
        announced: list[asyncio.Task[int]] = []

        def on_fields(fields: dict[str, str]) -> None:
            if fields.get("promoted") == "true" and not announced:
                released = int(fields.get("released_ms", "-1"))
                announced.append(asyncio.create_task(self._announce_promotion(m, released)))

        addresses = self._switch_addresses(m)
        failing_over, failed_over = failover_notices(m, addresses["old_address"], addresses["new_address"])
        r = await self._command(
            host,
            f"{_cid(m)}/failover",
            "failover",
            agent_pb2.FailoverCommand(
                port=port,
                target_host=t_host,
                target_port=t_port,
                timeout_ms=self.config.failover_timeout_ms,
                failing_over=failing_over,
                failed_over=failed_over,
            ),
            timeout_s,
            on_fields,
        )
        redirects = await asyncio.gather(*announced, return_exceptions=True)
        if not r.ok:
            raise StepFailed(f"failover to {m.state.target} did not happen: {r.error}")
        closed = r.fields.get("clients_closed")
        released = f"; the old primary closed {closed} client connection(s)" if closed is not None else ""
        # write_pause_ms is the server's pause (CLIENT PAUSE to promotion). redirect_ms runs on to the
        # moment apps could reach the new primary: the old primary's clients let go (agent) and the
        # promotion recorded, which the Sentinel endpoint answers from (here). Their own reconnect comes on
        # top (bench/follow.py measures what apps see).
        redirect = next((x for x in redirects if isinstance(x, int) and x >= 0), -1)
        took = round((self.ctx.clock.monotonic() - sent) * 1000)
        seen = f", apps redirected after {redirect} ms" if redirect >= 0 else ""
        return StepResult(
            f"{m.state.target} is the primary; writes paused {r.write_pause_ms} ms on the server{seen}, "
            f"failover command {took} ms{released}",
            StepOutputs(write_pause_ms=r.write_pause_ms, redirect_ms=redirect),
            addresses,
        )

    async def _announce_promotion(self, m: Maintenance, released_ms: int) -> int:
        """The agent says the target accepts writes and the old primary let go of its clients (the rest
        of its command, config rewrites and the old primary's relink, takes longer): one event now, from
        which the Sentinel endpoint sends clients to the new primary. Best effort: the step's completion
        carries the same addresses. Returns redirect_ms: the agent's `released_ms` (pause to clients let
        go) plus the time from its report to this commit (-1 when unknown); the report's own transit
        (sub-millisecond on loopback) is not counted."""
        received = self.ctx.clock.monotonic()
        try:
            async with self._write() as w:
                cur = await w.tx.get_maintenance(m.id)
                if cur is None:
                    return -1
                text = f"{m.state.target} accepts writes; Sentinel clients are sent there"
                await self._record(
                    w, m, self.ctx.clock.now(), cur.status, S.FAILOVER, text, promoted="true",
                    **self._switch_addresses(m),
                )  # fmt: skip
        except Exception:
            log.exception("maintenance %s: could not record the promotion early", m.id)
            return -1
        if released_ms < 0:
            return -1
        return released_ms + round((self.ctx.clock.monotonic() - received) * 1000)

    def _switch_addresses(self, m: Maintenance) -> dict[str, str]:
        """The old and new primaries' client addresses, for the Sentinel endpoint (event attributes)."""
        return {
            "old_address": "{}:{}".format(*self._endpoint(m.state.old_primary)),
            "new_address": "{}:{}".format(*self._endpoint(m.state.target)),
        }

    async def _step_repoint(self, m: Maintenance, addon: Addon) -> StepResult:
        target, old = m.state.target, m.state.old_primary
        hidden = m.state.hidden
        async with self._write() as w:
            url = redis_url("{}:{}".format(*self._endpoint(target)), await w.tx.get_credentials(addon.name))
            current = await w.tx.get_addon(addon.name)
            assert current is not None
            servers: list[ServerRef] = []
            for s in current.servers:
                if s.key == target:
                    servers.insert(0, ServerRef(s.host, s.port, Role.PRIMARY))
                elif s.key == old:
                    if not hidden:
                        servers.append(ServerRef(s.host, s.port, Role.STANDBY))
                else:
                    servers.append(s)
            await w.tx.update_addon(current.with_servers(tuple(servers)))
            config = await w.tx.get_config(current.app)
            for var in current.attachments:
                if config.get(var) != url:
                    await w.tx.set_config(current.app, var, url)
                    await w.emit(
                        EventType.CONFIG_VAR_CHANGED,
                        self.ctx,
                        current.app,
                        current.name,
                        m.id,
                        f"{var} now points at the new primary {target}: restart or reconnect",
                        key=var,
                        value=redact_url(url),
                    )
        verb = "points" if len(addon.attachments) == 1 else "point"
        message = f"{', '.join(addon.attachments)} now {verb} at {redact_url(url)}"
        return StepResult(message, event=self._switch_addresses(m))

    async def _step_finish(self, m: Maintenance, addon: Addon) -> StepResult:
        host, port = _split(m.state.old_primary)
        if m.state.hidden:
            r = await self._command(
                host, f"{_cid(m)}/finish/stop", "stop_server", agent_pb2.StopServerCommand(port=port)
            )
            if not r.ok:
                raise StepFailed(f"could not stop the old primary {m.state.old_primary}: {r.error}")
            return StepResult(f"old server {m.state.old_primary} stopped")
        r = await self._restart(m, addon, m.state.old_primary, f"{_cid(m)}/finish/restart")
        if not r.ok and ("adopted" not in r.error or m.target_build):
            raise StepFailed(f"could not restart the old primary {m.state.old_primary}: {r.error}")
        onto = self._check_version(m, m.state.old_primary, r, "old primary") if r.ok else ""
        what = f"restarted onto {onto}" if r.ok else "adopted: left running"
        return StepResult(f"old primary {m.state.old_primary} {what}; it is now the standby")

    async def _step_restart(self, m: Maintenance, addon: Addon) -> StepResult:
        primary = addon.primary
        if primary is None:
            raise StepFailed(f"add-on {addon.name} has no primary server")
        self._require_build(m, primary.host, f"primary {primary.key}")
        r = await self._restart(m, addon, primary.key, f"{_cid(m)}/restart")
        if not r.ok:
            raise StepFailed(f"could not restart {primary.key}: {r.error}")
        onto = self._check_version(m, primary.key, r, "server")
        return StepResult(
            f"{primary.key} restarted in place onto {onto} at {iso(self.ctx.clock.now())} (an outage)",
            StepOutputs(outage=True),
        )

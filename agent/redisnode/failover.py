"""Coordinated switchover from a local primary to one of its replicas, losing no acknowledged write.

The order, checked against redis-server 7.0:

1. `CLIENT PAUSE <slice> WRITE` on the old primary, renewed every 50 ms while the switchover goes on,
   up to timeout+grace in all (`pause.WritePause`). Writers block (they are not refused); an agent that
   dies or freezes here leaves them blocked for at most one slice (250 ms). A slice that lapses while
   the agent lives lets writes through on the old primary, which is still the primary: step 3 sees
   their bytes and makes the target apply them too before any promotion.
2. Poll both servers' INFO replication (every ~1 ms) until the target has applied everything the old
   primary has (its processed offset reaches the old primary's master_repl_offset). This reads the
   target directly rather than waiting for its once-a-second REPLCONF ACK. Past `timeout_ms`: unpause,
   and the old primary simply stays primary.
3. Demote first, atomically with a last offset read: `MULTI / INFO replication / REPLICAOF target / EXEC`.
   The old primary is now read-only; writers blocked by the pause get READONLY when it ends, never a
   silent loss. If the offset read in that transaction shows bytes the target has not applied (the old
   primary PINGs its replicas even while write-paused), wait for the target to apply them too; if it
   cannot, revert the demotion at once (the target was never promoted, so that is safe).
4. `REPLICAOF NO ONE` on the target: from here it is the one writable primary.
5. Still paused, the old primary closes its normal client connections (`release.py`), so blocked
   writers see a dropped connection, reconnect and ask where the primary is now. It does so twice: once
   before step 3 (a write that reaches a replica is refused at once, ahead of the pause, so clients must
   be gone before the demotion) and once after step 4, for any that came back.
6. `CLIENT UNPAUSE` on the old primary, which partially resyncs from the new one (PSYNC on the
   shared replication id). Then the `failed_over` notice (when the command carries one) is published on
   the old primary, its pub/sub connections are closed (its subscribers heard where the primary went
   before they are let go), and the notice is published on the new primary. (`failing_over` went out on the
   old primary just before step 1: a paused server holds PUBLISH back.)

A crash between 3 and 4 leaves no writable primary (safe); a re-run sees that state (old primary a
replica of the target, target holding everything) and finishes with step 4. When step 4 fails, the
demotion is reverted only if no REPLICAOF NO ONE can have reached the target (each attempt's PING
failed, or the connection was refused: it was never promoted and took no write); otherwise none is
writable until a re-run promotes it.
The write pause reported runs from step 1 to the moment step 4 returned, measured on the injected
clock's monotonic time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any

import redis.asyncio
import redis.exceptions

from agent.outcome import Outcome, Progress
from agent.redisnode.acl import NO_AUTH, Access
from agent.redisnode.notice import publish
from agent.redisnode.pause import SLICE_MS, WritePause
from agent.redisnode.rcmd import IO_ERRORS, connect, never_delivered, rcmd
from agent.redisnode.release import release_clients
from agent.redisnode.status import RedisServerStatus, describe_error, fetch_status, parse_status
from kvmaint.clock import Clock
from kvmaint.notices import Notice, render

log = logging.getLogger(__name__)

# How much longer than timeout_ms the pause may be renewed: it covers steps 3-5 after a catch-up that
# used its whole budget. A dead agent leaves writes paused for one slice (pause.SLICE_MS), not this.
GRACE_MS = 1000
POLL_SECONDS = 0.001
PROGRESS_EVERY_SECONDS = 0.1
# After the switch, how long to wait to see the old primary's link to the new one come up.
RELINK_WAIT_SECONDS = 5.0


class PlanKind(Enum):
    RUN = "run"
    ALREADY_DONE = "already_done"
    PROMOTE_ONLY = "promote_only"
    REFUSE = "refuse"


@dataclass(frozen=True)
class FailoverPlan:
    kind: PlanKind
    reason: str


def plan_failover(
    old: RedisServerStatus, target: RedisServerStatus, target_host: str, target_port: int
) -> FailoverPlan:
    """Decides from the current roles what a (possibly repeated) failover command must do."""
    where = f"{target_host}:{target_port}"
    if not old.reachable:
        return FailoverPlan(
            PlanKind.REFUSE, f"The old primary on port {old.port} is unreachable: {old.error}."
        )
    if not target.reachable:
        return FailoverPlan(PlanKind.REFUSE, f"The target {where} is unreachable: {target.error}.")
    if old.run_id and old.run_id == target.run_id:
        return FailoverPlan(PlanKind.REFUSE, f"The target {where} is the old primary itself.")
    if old.is_replica:
        if not old.follows(target_host, target_port):
            return FailoverPlan(
                PlanKind.REFUSE,
                f"Port {old.port} is not a primary: it replicates from "
                f"{old.primary_host}:{old.primary_port}.",
            )
        if target.is_primary:
            return FailoverPlan(
                PlanKind.ALREADY_DONE,
                f"Already done: {where} is primary and port {old.port} replicates from it.",
            )
        if target.replid == old.replid and target.processed_offset >= old.repl_offset:
            return FailoverPlan(
                PlanKind.PROMOTE_ONLY,
                f"Port {old.port} was already demoted and {where} holds all its writes; promoting it.",
            )
        return FailoverPlan(
            PlanKind.REFUSE,
            f"Port {old.port} replicates from {where}, which is not a primary and may lack its writes; "
            "refusing to promote it.",
        )
    if not old.is_primary:
        return FailoverPlan(PlanKind.REFUSE, f"Port {old.port} has role {old.role!r}, not primary.")
    if target.is_primary:
        return FailoverPlan(PlanKind.REFUSE, f"Both port {old.port} and {where} are primaries; refusing.")
    if target.replid != old.replid:
        return FailoverPlan(PlanKind.REFUSE, f"The target {where} does not replicate from port {old.port}.")
    if not target.link_up:
        return FailoverPlan(PlanKind.REFUSE, f"The target {where} has its replication link down.")
    return FailoverPlan(PlanKind.RUN, f"Switching over from port {old.port} to {where}.")


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


class _Switchover:
    """One failover run: the two clients, the clock and the timings, step by step."""

    def __init__(
        self,
        old: redis.asyncio.Redis,
        old_port: int,
        target: redis.asyncio.Redis,
        target_host: str,
        target_port: int,
        timeout_ms: int,
        clock: Clock,
        progress: Progress,
        managed: bool,
        notices: tuple[Notice | None, Notice | None] = (None, None),
    ) -> None:
        self.old = old
        self.old_port = old_port
        self.target = target
        self.target_host = target_host
        self.target_port = target_port
        self.where = f"{target_host}:{target_port}"
        self.timeout_ms = max(1, timeout_ms)
        self.clock = clock
        self.progress = progress
        self.managed = managed
        self.fields: dict[str, str] = {}
        self.clients_closed = 0
        self.kill_notes: list[str] = []
        self.pause: WritePause | None = None
        self.failing_over, self.failed_over = notices

    async def _release_clients(self, kinds: tuple[str, ...] = ("normal",)) -> None:
        closed, note = await release_clients(self.old, f"port {self.old_port}", kinds)
        self.clients_closed += closed
        if note:
            self.kill_notes.append(note)

    async def _old_status(self) -> RedisServerStatus:
        return await fetch_status(self.old, self.old_port, managed=self.managed)

    async def _unpause(self) -> str:
        """Ends the pause; when that fails the pause still ends by itself at its timeout."""
        if self.pause is not None:
            await self.pause.stop()  # no renewal may overtake the UNPAUSE
            self.fields["pause_renewals"] = str(self.pause.renewals)
            self.fields["pause_max_renewal_gap_ms"] = str(self.pause.max_gap_ms)
        try:
            await rcmd(self.old, "CLIENT", "UNPAUSE")
            return ""
        except IO_ERRORS as exc:
            log.warning("CLIENT UNPAUSE on port %d failed: %s", self.old_port, describe_error(exc))
            return f" (CLIENT UNPAUSE failed: {describe_error(exc)}; the pause ends by its own timeout)"

    async def _offsets(self) -> tuple[int, int]:
        """(old primary's master_repl_offset, target's processed offset), read concurrently."""
        old_info, target_info = await asyncio.gather(
            self.old.info("replication"), self.target.info("replication")
        )
        old = parse_status(self.old_port, old_info)
        target = parse_status(self.target_port, target_info)
        return old.repl_offset, target.processed_offset

    async def _wait_applied(self, deadline: float, label: str) -> tuple[bool, int, int]:
        """Polls until the target has applied all the old primary has; (caught up, old offset, lag)."""
        old_offset, lag = -1, -1
        next_report = self.clock.monotonic()
        while True:
            remaining = deadline - self.clock.monotonic()
            try:
                # Real time: bounds the Redis socket I/O; the deadline itself is on self.clock.
                old_offset, target_offset = await asyncio.wait_for(
                    self._offsets(), timeout=max(remaining, 0.001)
                )
                lag = old_offset - target_offset
                if lag <= 0:
                    return True, old_offset, 0
            except IO_ERRORS as exc:
                log.debug("catch-up poll failed: %s", describe_error(exc))
            now = self.clock.monotonic()
            if now >= deadline:
                return False, old_offset, lag
            if now >= next_report:
                self.progress(f"{label}: target {lag} bytes behind", lag_bytes=max(lag, 0))
                next_report = now + PROGRESS_EVERY_SECONDS
            await self.clock.sleep(POLL_SECONDS)

    async def _stats(self) -> dict[str, Any]:
        try:
            return dict(await self.target.info("stats"))
        except IO_ERRORS:
            return {}

    async def run(self) -> Outcome:
        try:
            return await self._run()
        finally:
            if self.pause is not None:
                await self.pause.stop()  # however this ends, the last slice then runs out by itself

    async def _run(self) -> Outcome:
        stats_before = await self._stats()
        if self.failing_over is not None:
            payload = render(self.failing_over, self.clock.now())
            await self._publish(self.failing_over, payload, self.old, f"port {self.old_port}")
        started = self.clock.monotonic()
        pause_ms = self.timeout_ms + GRACE_MS
        pause = WritePause(self.old, self.old_port, self.clock, pause_ms)
        try:
            await pause.start()
        except IO_ERRORS as exc:
            return Outcome.failed(
                f"Could not pause writes on port {self.old_port}: {describe_error(exc)}.",
                server=await self._old_status(),
            )
        self.pause = pause
        self.progress(
            f"writes paused on port {self.old_port} (in {SLICE_MS} ms slices renewed while the "
            f"switchover goes on, at most {pause_ms} ms)"
        )

        # Step 2: the target applies everything the old primary has.
        caught_up, offset, lag = await self._wait_applied(started + self.timeout_ms / 1000, "catching up")
        caught_up_at = self.clock.monotonic()
        self.fields["catch_up_ms"] = str(_ms(caught_up_at - started))
        if not caught_up:
            note = await self._unpause()
            return Outcome.failed(
                f"The target {self.where} was still {lag} bytes behind after {self.timeout_ms} ms; writes "
                f"resumed on port {self.old_port}, which stays primary{note}.",
                server=await self._old_status(),
                lag_bytes=max(lag, 0),
                fields=self.fields,
            )
        if caught_up_at - started >= pause_ms / 1000 - GRACE_MS / 2000:
            note = await self._unpause()
            return Outcome.failed(
                f"Caught up too close to the end of the write pause to demote safely; port {self.old_port} "
                f"stays primary{note}.",
                server=await self._old_status(),
                fields=self.fields,
            )
        self.progress(f"target caught up at offset {offset}", fields={"offset": str(offset)})
        await self._release_clients()

        # Step 3: demote, reading the offset in the same transaction.
        demoted = await self._demote(offset, started + pause_ms / 1000 - 0.05)
        if demoted is not None:
            return demoted
        self.fields["demoted_ms"] = str(_ms(self.clock.monotonic() - started))
        self.progress(f"port {self.old_port} demoted to replica of {self.where}")

        # Step 4: promote.
        promoted = await self._promote(started)
        if promoted is not None:
            return promoted
        return await self._finish(started, stats_before)

    async def _demote(self, caught_up_offset: int, pause_ends: float) -> Outcome | None:
        """Step 3. Returns an Outcome when the failover must stop here, None to go on."""
        try:
            async with self.old.pipeline(transaction=True) as tx:
                tx.info("replication")
                tx.execute_command("REPLICAOF", self.target_host, str(self.target_port))
                info, _ = await tx.execute()
            demoted_offset = parse_status(self.old_port, info).repl_offset
        except IO_ERRORS as exc:
            # The transaction may or may not have run: look before doing anything else.
            status = await self._old_status()
            if status.is_primary:
                note = await self._unpause()
                return Outcome.failed(
                    f"Demoting port {self.old_port} failed ({describe_error(exc)}); it stays primary{note}.",
                    server=status,
                    fields=self.fields,
                )
            if not status.follows(self.target_host, self.target_port):
                return Outcome.failed(
                    f"Lost contact with port {self.old_port} while demoting it ({describe_error(exc)}); its "
                    f"role is unknown and {self.where} was not promoted.",
                    server=status,
                    fields=self.fields,
                )
            demoted_offset = status.repl_offset
        if demoted_offset <= caught_up_offset:
            return None
        # Bytes reached the old primary's stream after the catch-up read (a replication PING, or a write if
        # the pause had lapsed). They were already sent to the target; make sure it applied them.
        self.fields["bytes_after_catch_up"] = str(demoted_offset - caught_up_offset)
        ok, _, lag = await self._wait_until_target_has(demoted_offset, pause_ends)
        if ok:
            return None
        try:
            await rcmd(self.old, "REPLICAOF", "NO", "ONE")
        except IO_ERRORS as exc:
            return Outcome.failed(
                f"Port {self.old_port} was demoted holding {lag} bytes the target lacks, and reverting it "
                f"failed ({describe_error(exc)}); {self.where} was not promoted.",
                server=await self._old_status(),
                fields=self.fields,
            )
        note = await self._unpause()
        return Outcome.failed(
            f"The target {self.where} lacked {lag} bytes at the moment of demotion; port {self.old_port} was "
            f"reverted to primary and stays primary{note}.",
            server=await self._old_status(),
            fields=self.fields,
        )

    async def _wait_until_target_has(self, offset: int, deadline: float) -> tuple[bool, int, int]:
        lag = -1
        while self.clock.monotonic() < deadline:
            try:
                info = await self.target.info("replication")
                lag = offset - parse_status(self.target_port, info).processed_offset
                if lag <= 0:
                    return True, offset, 0
            except IO_ERRORS:
                pass
            await self.clock.sleep(POLL_SECONDS)
        return False, offset, lag

    async def _promote(self, started: float) -> Outcome | None:
        """Step 4. A lost reply is checked by reading the role back; never reverts the demotion."""
        last_error = ""
        delivered = False  # whether any REPLICAOF NO ONE may have reached the target
        for attempt in range(3):
            try:
                # A PING first (one round trip): when it fails, the REPLICAOF below was never sent, which
                # an error on the REPLICAOF itself (a connection reset) could not tell.
                await rcmd(self.target, "PING")
            except IO_ERRORS as exc:
                last_error = describe_error(exc)
                log.warning(
                    "the target %s did not answer PING (attempt %d): %s", self.where, attempt + 1, last_error
                )
            else:
                try:
                    await rcmd(self.target, "REPLICAOF", "NO", "ONE")
                    return None
                except IO_ERRORS as exc:
                    delivered = delivered or not never_delivered(exc)
                    last_error = describe_error(exc)
                    log.warning(
                        "REPLICAOF NO ONE on %s failed (attempt %d): %s", self.where, attempt + 1, last_error
                    )
            try:
                if parse_status(self.target_port, await self.target.info("replication")).is_primary:
                    return None
            except IO_ERRORS:
                pass
            await self.clock.sleep(0.05 * (attempt + 1))
        if not delivered:
            reverted = await self._revert_demotion(last_error)
            if reverted is not None:
                return reverted
        note = await self._unpause()
        return Outcome.failed(
            f"Port {self.old_port} was demoted to a replica of {self.where}, but promoting the target failed "
            f"({last_error}); no server accepts writes until {self.where} is promoted (re-run the failover)"
            f"{note}.",
            server=await self._old_status(),
            fields={**self.fields, "state": "demoted"},
        )

    async def _revert_demotion(self, why: str) -> Outcome | None:
        """No promotion reached the target, so it was never promoted (and took no write): the old
        primary, which holds every write, becomes the primary again rather than leave none writable."""
        try:
            await rcmd(self.old, "REPLICAOF", "NO", "ONE")
        except IO_ERRORS as exc:
            log.warning("reverting the demotion of port %d failed: %s", self.old_port, describe_error(exc))
            return None
        await _rewrite_config(self.old, f"port {self.old_port}", required=self.managed)
        note = await self._unpause()
        return Outcome.failed(
            f"The target {self.where} was unreachable before it could be promoted ({why}); port "
            f"{self.old_port} was reverted to primary and stays primary{note}.",
            server=await self._old_status(),
            fields=self.fields,
        )

    async def _finish(self, started: float, stats_before: dict[str, Any]) -> Outcome:
        """After step 4: unpause, tell subscribers, persist roles, and see the old primary follow."""
        promoted_at = self.clock.monotonic()
        write_pause_ms = _ms(promoted_at - started)
        await self._release_clients()
        note = await self._unpause()
        self.fields["unpaused_ms"] = str(_ms(self.clock.monotonic() - started))
        # failed_over: on the old primary, then let go of its subscribers, then on the new one (whose
        # copy the old primary, now its replica, relays to its own subscribers: they are gone by then).
        payload = render(self.failed_over, self.clock.now()) if self.failed_over is not None else ""
        if self.failed_over is not None:
            await self._publish(self.failed_over, payload, self.old, f"port {self.old_port}")
        await self._release_clients(("pubsub",))
        if self.failed_over is not None:
            await self._publish(self.failed_over, payload, self.target, self.where)
        # From the pause until every client of the old primary was let go: the scheduler adds the time
        # it takes to record the promotion (which discovery answers from) to make redirect_ms.
        released_ms = _ms(self.clock.monotonic() - started)
        self.fields["released_ms"] = str(released_ms)
        closed, kill_note = self.clients_closed, "; ".join(self.kill_notes)
        self.fields["clients_closed"] = str(closed)
        self.progress(
            f"{self.where} is primary; writes were paused {write_pause_ms} ms; port {self.old_port} closed "
            f"{closed} client connection(s){f' ({kill_note})' if kill_note else ''}",
            # "promoted": the scheduler may send clients to the new primary now, before the rest.
            fields={
                "write_pause_ms": str(write_pause_ms),
                "clients_closed": str(closed),
                "released_ms": str(released_ms),
                "promoted": "true",
            },
        )
        await _rewrite_config(self.old, f"port {self.old_port}", required=self.managed)
        await _rewrite_config(self.target, self.where, required=False)
        status = await self._wait_relinked()
        stats_after = await self._stats()
        self.fields["resync"] = _resync_kind(stats_before, stats_after)
        link = "replicates from it" if status.link_up else "is its replica (link not up yet)"
        return Outcome.done(
            f"Switched over to {self.where} with a {write_pause_ms} ms write pause; "
            f"port {self.old_port} {link}{note}.",
            server=status,
            write_pause_ms=write_pause_ms,
            link_up=status.link_up,
            fields=self.fields,
        )

    async def _publish(self, notice: Notice, payload: str, client: redis.asyncio.Redis, what: str) -> None:
        """One server; a notice sent to both carries the same bytes to each (a subscriber that hears it
        twice, directly and replicated, can tell). How many heard it goes into the result's fields."""
        heard, error = await publish(client, payload, what)
        key = f"{notice.type.value}_notice_subscribers"
        self.fields[key] = str(int(self.fields.get(key, "0")) + heard)
        if error:
            self.fields[f"{notice.type.value}_notice_error"] = error

    async def _wait_relinked(self) -> RedisServerStatus:
        deadline = self.clock.monotonic() + RELINK_WAIT_SECONDS
        while True:
            status = await self._old_status()
            if status.link_up or self.clock.monotonic() >= deadline:
                return status
            await self.clock.sleep(0.01)

    async def promote_only(self) -> Outcome:
        """Finishes a failover whose agent died between demotion and promotion."""
        started = self.clock.monotonic()
        stats_before = await self._stats()
        promoted = await self._promote(started)
        if promoted is not None:
            return promoted
        outcome = await self._finish(started, stats_before)
        outcome.write_pause_ms = 0
        outcome.fields["resumed"] = "true"
        return outcome


def _resync_kind(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Whether the old primary rejoined by partial resync (cheap) or full (a new RDB), from target stats."""
    if not before or not after:
        return "unknown"
    if int(after.get("sync_full", 0)) > int(before.get("sync_full", 0)):
        return "full"
    if int(after.get("sync_partial_ok", 0)) > int(before.get("sync_partial_ok", 0)):
        return "partial"
    return "none yet"


async def _rewrite_config(client: redis.asyncio.Redis, what: str, required: bool) -> None:
    """Persists the new role into the server's config file, so a restart does not bring back the old one."""
    try:
        await rcmd(client, "CONFIG", "REWRITE")
    except IO_ERRORS as exc:
        level = logging.WARNING if required else logging.DEBUG
        log.log(level, "CONFIG REWRITE on %s failed: %s", what, describe_error(exc))


async def run_failover(
    old: redis.asyncio.Redis,
    old_port: int,
    target_host: str,
    target_port: int,
    timeout_ms: int,
    clock: Clock,
    progress: Progress,
    managed: bool = False,
    io_timeout: float = 2.0,
    notices: tuple[Notice | None, Notice | None] = (None, None),
    access: Access = NO_AUTH,
) -> Outcome:
    """Runs (or safely re-runs) a switchover; see the module docstring for the order and its reasons.
    `notices`: (failing_over, failed_over) to publish, or None for either."""
    target = connect(target_host, target_port, io_timeout, access)
    try:
        old_status, target_status = await asyncio.gather(
            fetch_status(old, old_port, managed=managed), fetch_status(target, target_port)
        )
        plan = plan_failover(old_status, target_status, target_host, target_port)
        log.info("failover port %d -> %s:%d: %s", old_port, target_host, target_port, plan.reason)
        switch = _Switchover(
            old, old_port, target, target_host, target_port, timeout_ms, clock, progress, managed, notices
        )
        if plan.kind is PlanKind.REFUSE:
            return Outcome.failed(plan.reason, server=old_status)
        if plan.kind is PlanKind.ALREADY_DONE:
            note = await switch._unpause()  # a previous run may have died before its last step
            return Outcome.done(
                plan.reason + note,
                server=old_status,
                link_up=old_status.link_up,
                fields={"already_done": "true"},
            )
        progress(plan.reason)
        if plan.kind is PlanKind.PROMOTE_ONLY:
            return await switch.promote_only()
        return await switch.run()
    finally:
        await target.aclose()

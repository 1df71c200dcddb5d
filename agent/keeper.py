"""The agent's keeper: keeps the host's managed redis-servers running in the roles the scheduler records.

A level-triggered loop: each pass reads every server (INFO, its pid), asks the pure `keep.decide` what
to do, and does it under the server's lock, so it never races a command on the same server. Nothing is
started before the scheduler sent its record (`set_roles`, from the stream): after a host reboot the
servers come back once the agent has reached the scheduler, in the roles the scheduler's record gives
them, primaries first so their standbys link at once. What it does and why goes into each heartbeat
(`report`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from agent.inventory import STATUS_TIMEOUT_SECONDS, Inventory
from agent.keep import (
    Act,
    Assignment,
    Decision,
    KeepPolicy,
    Report,
    Seen,
    Supervision,
    Track,
    after_start,
    decide,
)
from agent.redisnode import RedisNode
from agent.redisnode.status import RedisServerStatus, unreachable
from kvmaint.clock import Clock

log = logging.getLogger(__name__)

PASS_SECONDS = 1.0


class Keeper:
    def __init__(
        self,
        inventory: Inventory,
        clock: Clock,
        policy: KeepPolicy | None = None,
        interval: float = PASS_SECONDS,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.inventory = inventory
        self.clock = clock
        self.policy = policy or KeepPolicy()
        self.interval = interval
        # Called after a pass that acted or saw a server change (up/down, role, link), so the scheduler
        # hears of it now (a heartbeat), not at the next interval.
        self.on_change = on_change
        self._shapes: dict[int, tuple[bool, str, bool, str, int]] = {}
        self._changed = False
        # None until the scheduler sent its record: nothing is started on a guess.
        self._roles: dict[int, Assignment] | None = None
        self._tracks: dict[int, Track] = {}
        self._last: dict[int, Decision] = {}
        self._wake = asyncio.Event()
        self.passes = 0

    @property
    def has_roles(self) -> bool:
        return self._roles is not None

    def set_roles(self, roles: Mapping[int, Assignment]) -> None:
        """The scheduler's record for this host (all of it); the next pass runs at once."""
        self._roles = dict(roles)
        self._wake.set()

    def report(self, port: int) -> Report | None:
        decision = self._last.get(port)
        if decision is None:
            return None
        return Report(decision.supervision, self._tracks.get(port, Track()).starts, decision.why)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                for sentence in await self.pass_once():
                    log.info("%s", sentence)
            except Exception:
                log.exception("keeper pass failed")
            await self._pause(stop)

    async def _pause(self, stop: asyncio.Event) -> None:
        waiters = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self.clock.sleep(self.interval)),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        self._wake.clear()

    async def pass_once(self) -> list[str]:
        """One look at every server; returns a sentence per action taken."""
        self.passes += 1
        roles = self._roles
        nodes = list(self.inventory)
        # Primaries first: a standby started before its primary could not link.
        nodes.sort(key=lambda n: not (roles and n.port in roles and roles[n.port].role.is_primary))
        done: list[str] = []
        self._changed = False
        for node in nodes:
            sentence = await self._one(node, roles.get(node.port) if roles is not None else None)
            if sentence:
                done.append(sentence)
        if (done or self._changed) and self.on_change is not None:
            self.on_change()
        for port in set(self._last) - {n.port for n in nodes}:  # forgotten (stopped) servers
            self._last.pop(port, None)
            self._tracks.pop(port, None)
            self._shapes.pop(port, None)
        return done

    async def _one(self, node: RedisNode, assignment: Assignment | None) -> str:
        status = await self._status(node)
        shape = (status.reachable, status.role, status.link_up, status.primary_host, status.primary_port)
        if self._shapes.get(node.port, shape) != shape:
            self._changed = True
        self._shapes[node.port] = shape
        seen = Seen(
            managed=node.managed,
            status=status,
            process_alive=node.process is not None and node.process.pid() is not None,
            busy=node.lock.locked(),
            assignment=assignment,
        )
        now = self.clock.monotonic()
        decision, track = decide(seen, self._tracks.get(node.port, Track()), now, self.policy)
        previous = self._last.get(node.port)
        self._tracks[node.port] = track
        self._last[node.port] = decision
        if decision.supervision is Supervision.CRASH_LOOPING and (
            previous is None or previous.supervision is not Supervision.CRASH_LOOPING
        ):
            log.error("port %d: %s", node.port, decision.why)
        if decision.act is Act.NOTHING or decision.role is None:
            return ""
        async with node.lock:
            await node.drop_idle_connections()
            again = await self._status(node)
            if decision.act is Act.START:
                if again.reachable:  # someone else started it meanwhile
                    return ""
                outcome = await node.start(decision.role)
                self._tracks[node.port] = after_start(
                    track, self.clock.monotonic(), "" if outcome.ok else outcome.error, self.policy
                )
                verb = "started" if outcome.ok else "failed to start"
                return f"keeper: port {node.port} {verb}: {decision.why}: {outcome.message or outcome.error}"
            role = decision.role
            outcome = await node.replicate_from(role.primary_host, role.primary_port)
            return f"keeper: port {node.port}: {decision.why}: {outcome.message or outcome.error}"

    async def _status(self, node: RedisNode) -> RedisServerStatus:
        try:
            return await asyncio.wait_for(node.status(), STATUS_TIMEOUT_SECONDS)  # real time: socket I/O
        except TimeoutError:
            return unreachable(node.port, "status read timed out", node.managed)

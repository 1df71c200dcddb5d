"""The I/O around `policy.decide`: the child process, the config-var watch, signals, the grace timer.

Everything that happens becomes an event on one queue; `decide` says what to do; this module does it.
The child runs in its own process group, so a restart or a passed-on signal reaches every process the
command started (a shell loop and its `sleep`), and a terminal's Ctrl-C reaches it once, through us.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import grpc
from redis.backoff import FullJitterBackoff

from kvmaint.channel import ChannelOptions, split_addresses, to_rpc_error
from kvmaint.clock import Clock, SystemClock
from kvmaint.errors import KvmaintError
from kvmaint.redact import redact_url
from kvmaint.supervise import policy as P
from kvmaint.v1 import fleet_pb2, fleet_pb2_grpc

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
RECONNECT = FullJitterBackoff(cap=5.0, base=0.1)


@dataclass(frozen=True)
class ExecSpec:
    app: str
    command: Sequence[str]
    grace: float = 30.0


def aio_channel(options: ChannelOptions, address: str | None = None) -> grpc.aio.Channel:
    address = address or options.address
    if options.ca_file is None:
        return grpc.aio.insecure_channel(address)
    try:
        root = options.ca_file.read_bytes()
    except OSError as err:
        raise KvmaintError(f"Cannot read the CA file {options.ca_file}: {err.strerror}.") from err
    return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=root))


async def watch_config(
    options: ChannelOptions, app: str, clock: Clock, post: Callable[[P.Event], None]
) -> None:
    """WatchConfigVars for ever: every message as ConfigSeen, a failure as WatchLost, then again after a
    jittered backoff (with several scheduler addresses, on the next one). The stream ending by itself
    means the app was deleted."""
    metadata = (("authorization", f"Bearer {options.token}"),) if options.token else ()
    addresses = split_addresses(options.address)
    failures = turn = 0
    while True:
        address = addresses[turn % len(addresses)]
        try:
            channel = aio_channel(options, address)
        except KvmaintError as err:
            post(P.WatchLost(str(err)))
            return
        try:
            stub = fleet_pb2_grpc.FleetServiceStub(channel)
            call = stub.WatchConfigVars(fleet_pb2.WatchConfigVarsRequest(app=app), metadata=metadata)
            async for msg in call:
                failures = 0
                post(P.ConfigSeen(dict(msg.config_vars)))
            post(P.AppGone())
            return
        except grpc.aio.AioRpcError as err:
            post(P.WatchLost(str(to_rpc_error(err, address)).rstrip(".")))
            turn += 1
        finally:
            await channel.close()
        await clock.sleep(RECONNECT.compute(failures))
        failures += 1


class Supervisor:
    """Runs `spec.command` under the policy until it says Exit; returns that exit status."""

    def __init__(
        self,
        spec: ExecSpec,
        options: ChannelOptions,
        clock: Clock | None = None,
        stderr: TextIO | None = None,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.options = options
        self.clock = clock or SystemClock()
        self._stderr = stderr
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.events: asyncio.Queue[P.Event] = asyncio.Queue()
        self.state = P.State()
        self.child: asyncio.subprocess.Process | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.label = shlex.join(spec.command)

    def say(self, text: str) -> None:
        print(f"kvmaint apps:exec: {text}", file=self._stderr or sys.stderr, flush=True)

    def post(self, event: P.Event) -> None:
        self.events.put_nowait(event)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in FORWARDED:
            loop.add_signal_handler(signum, self.post, P.SignalReceived(signum))
        self._spawn(watch_config(self.options, self.spec.app, self.clock, self.post), "watch-config")
        try:
            while True:
                event = await self.events.get()
                self.state, actions = P.decide(self.state, event, self.spec.grace)
                for action in actions:
                    code = await self._act(action)
                    if code is not None:
                        return code
        finally:
            for signum in FORWARDED:
                loop.remove_signal_handler(signum)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.child is not None and self.child.returncode is None:
                self._signal(signal.SIGKILL)

    async def _act(self, action: P.Action) -> int | None:
        if isinstance(action, P.Exit):
            return action.code
        if isinstance(action, P.Say):
            self.say(action.text)
        elif isinstance(action, P.SendSignal):
            self._signal(action.signum)
        elif isinstance(action, P.ArmGrace):
            self._spawn(self._grace(action.stop), f"grace-{action.stop}")
        else:
            await self._start(action)
        return None

    async def _grace(self, stop: int) -> None:
        await self.clock.sleep(self.spec.grace)
        self.post(P.GraceOver(stop))

    def _signal(self, signum: int) -> None:
        """To the child's whole process group (it leads it); a group already gone is no error."""
        if self.child is None or self.child.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.child.pid, signum)

    async def _start(self, action: P.Start) -> None:
        env = {**self.base_env, **action.config}
        try:
            # Its own process group is in the terminal's background: reading the terminal would stop it.
            stdin = subprocess.DEVNULL if sys.stdin is not None and sys.stdin.isatty() else None
            child = await asyncio.create_subprocess_exec(
                *self.spec.command, env=env, stdin=stdin, process_group=0
            )
        except OSError as err:
            code = 127 if isinstance(err, FileNotFoundError) else 126
            self.post(P.StartFailed(f"cannot run {self.label}: {err.strerror or err}", code))
            return
        self.child = child
        names = ", ".join(f"{k}={redact_url(v)}" for k, v in sorted(action.config.items()))
        self.say(f"{action.why}: {self.label} (pid {child.pid}) with {names or 'no config vars'}")
        self._spawn(self._reap(child), f"reap-{child.pid}")

    async def _reap(self, child: asyncio.subprocess.Process) -> None:
        self.post(P.ChildExited(await child.wait()))


def exec_app(spec: ExecSpec, options: ChannelOptions) -> int:
    """The `kvmaint apps:exec` command: blocks until the supervisor exits."""
    return asyncio.run(Supervisor(spec, options).run())

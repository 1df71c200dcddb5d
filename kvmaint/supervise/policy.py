"""What `kvmaint apps:exec` does about each thing that happens. Pure: (state, event) -> (state, actions).

The supervisor runs one child with the app's config vars in its environment. A changed config var
restarts it the way Heroku restarts a dyno: SIGTERM, up to `grace` seconds, SIGKILL, start again with
the new values. A signal to the supervisor is passed on and ends it; a child that ends on its own ends
it with the child's status. A config identical to the one the child runs with (the first message after
a reconnect to a restarted scheduler) changes nothing.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum

from kvmaint.redact import redact_url as redact

Config = Mapping[str, str]


class Phase(Enum):
    WAITING = "waiting"  # no config yet, no child
    RUNNING = "running"
    RESTARTING = "restarting"  # SIGTERM sent for a config change; start again once it exits
    EXITING = "exiting"  # a signal was passed on (or the app is gone); exit once it exits
    DONE = "done"


# --- events -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConfigSeen:
    """The app's config vars, as the watch stream delivered them (the whole map)."""

    config: Config


@dataclass(frozen=True)
class WatchLost:
    """The watch stream failed; `why` is a sentence. It is retried."""

    why: str


@dataclass(frozen=True)
class AppGone:
    """The watch stream ended: the app was deleted."""


@dataclass(frozen=True)
class ChildExited:
    """`returncode` as asyncio reports it: negative when a signal ended the child."""

    returncode: int


@dataclass(frozen=True)
class StartFailed:
    """The command could not be started at all (not found, not executable)."""

    why: str
    exit_code: int


@dataclass(frozen=True)
class GraceOver:
    """The grace period armed by stop number `stop` ran out."""

    stop: int


@dataclass(frozen=True)
class SignalReceived:
    signum: int


Event = ConfigSeen | WatchLost | AppGone | ChildExited | StartFailed | GraceOver | SignalReceived


# --- actions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Start:
    config: Config
    why: str


@dataclass(frozen=True)
class SendSignal:
    signum: int


@dataclass(frozen=True)
class ArmGrace:
    """Start a timer of the grace period; its end arrives as GraceOver(stop)."""

    stop: int


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Exit:
    code: int


Action = Start | SendSignal | ArmGrace | Say | Exit


@dataclass(frozen=True)
class State:
    phase: Phase = Phase.WAITING
    running: Config | None = None  # the config the current child was started with
    pending: Config | None = None  # the config to restart with (RESTARTING)
    stops: int = 0  # how many stops were begun; names the grace timer that belongs to the latest
    connected: bool = True
    exit_code: int | None = None  # forced exit status (the app is gone), else the child's


def exit_status(returncode: int) -> int:
    """A shell's convention: the child's code, or 128 + N when signal N ended it."""
    return 128 - returncode if returncode < 0 else returncode


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe_change(old: Config, new: Config) -> str:
    """ "REDIS_URL changed from A to B" for every var that differs, in name order."""
    parts: list[str] = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if before is None:
            parts.append(f"{name} was set to {redact(str(after))}")
        elif after is None:
            parts.append(f"{name} was removed (was {redact(before)})")
        else:
            parts.append(f"{name} changed from {redact(before)} to {redact(after)}")
    return "; ".join(parts)


def _stop(state: State, signum: int) -> tuple[State, list[Action]]:
    """Signal the child and arm the grace timer of this stop (`state` already has its new phase)."""
    stops = state.stops + 1
    return replace(state, stops=stops), [SendSignal(signum), ArmGrace(stops)]


def decide(state: State, event: Event, grace: float) -> tuple[State, list[Action]]:
    """The next state and what to do, for one event."""
    phase = state.phase
    if phase is Phase.DONE:
        return state, []

    if isinstance(event, WatchLost):
        if phase is Phase.WAITING:
            return replace(state, phase=Phase.DONE), [Say(event.why), Exit(1)]
        if not state.connected:
            return state, []
        return replace(state, connected=False), [
            Say(f"lost the scheduler ({event.why}); the command keeps running, reconnecting")
        ]

    if isinstance(event, ConfigSeen):
        back: list[Action] = [] if state.connected else [Say("reconnected to the scheduler")]
        state = replace(state, connected=True)
        config = dict(event.config)
        if phase is Phase.WAITING:
            return replace(state, phase=Phase.RUNNING, running=config), [Start(config, "started")]
        if phase is Phase.RUNNING:
            if state.running is not None and config == dict(state.running):
                return state, [*back, *([Say("config vars unchanged; nothing to restart")] if back else [])]
            change = describe_change(state.running or {}, config)
            new, actions = _stop(replace(state, phase=Phase.RESTARTING, pending=config), signal.SIGTERM)
            return new, [*back, Say(f"{change}: restarting (SIGTERM, up to {grace:g} s)"), *actions]
        if phase is Phase.RESTARTING:
            return replace(state, pending=config), back
        return state, back  # EXITING: the new config is for nobody

    if isinstance(event, AppGone):
        if phase is Phase.WAITING:
            return replace(state, phase=Phase.DONE), [Say("the app was deleted"), Exit(1)]
        if phase is Phase.EXITING:
            return replace(state, exit_code=1), []
        new, actions = _stop(replace(state, phase=Phase.EXITING, pending=None, exit_code=1), signal.SIGTERM)
        return new, [Say("the app was deleted: stopping the command (SIGTERM)"), *actions]

    if isinstance(event, SignalReceived):
        name = signal_name(event.signum)
        if phase is Phase.WAITING:
            return replace(state, phase=Phase.DONE), [Exit(exit_status(-event.signum))]
        new, actions = _stop(replace(state, phase=Phase.EXITING, pending=None), event.signum)
        return new, [Say(f"got {name}: passing it on, then exiting (up to {grace:g} s)"), *actions]

    if isinstance(event, GraceOver):
        if event.stop != state.stops or phase not in (Phase.RESTARTING, Phase.EXITING):
            return state, []
        return state, [
            Say(f"the command did not exit within {grace:g} s: SIGKILL"),
            SendSignal(signal.SIGKILL),
        ]

    if isinstance(event, StartFailed):
        return replace(state, phase=Phase.DONE), [Say(event.why), Exit(event.exit_code)]

    # ChildExited
    status = exit_status(event.returncode)
    how = (
        f"was ended by {signal_name(-event.returncode)}"
        if event.returncode < 0
        else f"exited with status {event.returncode}"
    )
    if phase is Phase.RESTARTING and state.pending is not None:
        config = dict(state.pending)
        return replace(state, phase=Phase.RUNNING, running=config, pending=None), [
            Start(config, f"restarted (the previous one {how})")
        ]
    code = state.exit_code if state.exit_code is not None else status
    return replace(state, phase=Phase.DONE), [Say(f"the command {how}"), Exit(code)]

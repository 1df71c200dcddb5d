"""A maintenance's durable driver state, typed: which steps are done and what they decided.

The runner resumes a maintenance from this record after a crash or a change of scheduler, so every field
is a fact a later step relies on. It is stored as a flat JSON object of strings (the keys below), the
shape earlier versions wrote: their rows read back unchanged, and keys this version does not know (a
newer scheduler's, before a downgrade) are kept as they were rather than dropped on the next write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

# steps.FAILOVER: once it has completed, the new primary serves and later trouble must not roll back
# (failures past it are retried). Spelled here, as steps.py imports this module.
POINT_OF_NO_RETURN = "failover"

_KNOWN = ("done", "old_primary", "target", "hidden", "outage", "queued", "traceparent")


@dataclass(frozen=True)
class StepOutputs:
    """What a step decided that later steps need (prepare: who takes over; an outage: nobody)."""

    target: str = ""  # host:port of the server that becomes the primary
    old_primary: str = ""  # host:port of the primary being maintained
    hidden: bool = False  # the target is a hidden standby started for this maintenance
    outage: bool = False  # no standby possible: the primary restarts in place
    # The failover's measurements, which go to the maintenance's own columns, not into the state.
    write_pause_ms: int | None = None
    redirect_ms: int | None = None


@dataclass(frozen=True)
class DriverState:
    done: tuple[str, ...] = ()
    old_primary: str = ""
    target: str = ""
    hidden: bool = False
    outage: bool = False
    # Why the planner holds a due maintenance back (a freeze, a host's limit): kept so that the same
    # reason is not written again every tick.
    queued: str = ""
    # W3C traceparent of the maintenance's trace (server/observe.py), drawn at its first step.
    traceparent: str = ""
    unknown: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_json(cls, raw: Mapping[str, str]) -> DriverState:
        return cls(
            done=tuple(s for s in str(raw.get("done", "")).split(",") if s),
            old_primary=str(raw.get("old_primary", "")),
            target=str(raw.get("target", "")),
            hidden=raw.get("hidden") == "1",
            outage=raw.get("outage") == "1",
            queued=str(raw.get("queued", "")),
            traceparent=str(raw.get("traceparent", "")),
            unknown=tuple(sorted((k, str(v)) for k, v in raw.items() if k not in _KNOWN)),
        )

    def to_json(self) -> dict[str, str]:
        out = dict(self.unknown)
        texts = {
            "done": ",".join(self.done),
            "old_primary": self.old_primary,
            "target": self.target,
            "queued": self.queued,
            "traceparent": self.traceparent,
        }
        out.update({k: v for k, v in texts.items() if v})
        if self.target:  # earlier versions wrote hidden="0" beside every target
            out["hidden"] = "1" if self.hidden else "0"
        if self.outage:
            out["outage"] = "1"
        return out

    def is_done(self, step: str) -> bool:
        return step in self.done

    def finished(self, step: str, outputs: StepOutputs | None = None) -> DriverState:
        """The state once `step` is done, with what it decided."""
        state = self if outputs is None else self.with_outputs(outputs)
        return state if step in state.done else replace(state, done=(*state.done, step))

    def with_outputs(self, o: StepOutputs) -> DriverState:
        return replace(
            self,
            target=o.target or self.target,
            old_primary=o.old_primary or self.old_primary,
            hidden=o.hidden if o.target else self.hidden,
            outage=o.outage or self.outage,
        )

    @property
    def past_point_of_no_return(self) -> bool:
        return POINT_OF_NO_RETURN in self.done

    def servers(self) -> tuple[str, ...]:
        """The old primary and the target, where known (one may have left the add-on's record)."""
        return tuple(k for k in (self.old_primary, self.target) if k)

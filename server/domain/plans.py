"""Plans and their rules (the seed's "Limitations"): only premium, private and shield have windows."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kvmaint.errors import ErrorReason, FailedPrecondition, InvalidArgument

_PLAN = re.compile(r"^(?P<tier>mini|premium|private|shield)(?:-(?P<size>\d{1,2}))?$")


@dataclass(frozen=True)
class Plan:
    tier: str
    size: int | None

    @property
    def name(self) -> str:
        return self.tier if self.size is None else f"{self.tier}-{self.size}"

    @property
    def has_window(self) -> bool:
        return self.tier != "mini"

    @property
    def has_standby(self) -> bool:
        return self.tier != "mini"

    @property
    def description(self) -> str:
        return "mini" if self.tier == "mini" else f"{self.tier} HA"


def parse_plan(text: str) -> Plan:
    m = _PLAN.match(text.strip().lower())
    if not m or (m["tier"] == "mini") != (m["size"] is None):
        raise InvalidArgument.field(
            "plan", f"'{text}' is not a plan; use mini, premium-N, private-N or shield-N (N from 0 to 99)."
        )
    return Plan(m["tier"], int(m["size"]) if m["size"] is not None else None)


def require_window_plan(plan: Plan, action: str) -> None:
    """Mini plans cannot have windows set or maintenances run or scheduled by their owners."""
    if not plan.has_window:
        raise FailedPrecondition(
            f"You cannot {action} on a {plan.name} plan: maintenance windows and manual maintenance "
            "are available only on premium, private and shield plans.",
            reason=ErrorReason.PLAN_HAS_NO_WINDOW,
            metadata={"plan": plan.name},
        )

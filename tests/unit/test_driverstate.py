"""The typed driver state reads the rows earlier versions wrote and writes the same shape back."""

from __future__ import annotations

import json

from server.domain import steps as S
from server.domain.driverstate import POINT_OF_NO_RETURN, DriverState, StepOutputs


def test_an_earlier_versions_row_reads_back_typed_and_writes_back_unchanged() -> None:
    row = {
        "done": "prepare,catch_up,maintain_standby,failover",
        "target": "db-2:7002",
        "hidden": "1",
        "old_primary": "db-1:7001",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "write_pause_ms": "12",  # a measurement earlier versions left in the state
    }
    state = DriverState.from_json(row)
    assert state.done == ("prepare", "catch_up", "maintain_standby", "failover")
    assert (state.target, state.old_primary, state.hidden, state.outage) == ("db-2:7002", "db-1:7001", True, False)
    assert state.past_point_of_no_return
    assert state.to_json() == row  # unknown keys kept, not dropped on the next write
    assert DriverState.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_a_step_finishes_once_with_its_outputs() -> None:
    state = DriverState().finished(S.PREPARE, StepOutputs(target="db-2:7002", old_primary="db-1:7001"))
    assert state.to_json() == {"done": "prepare", "target": "db-2:7002", "old_primary": "db-1:7001", "hidden": "0"}
    again = state.finished(S.PREPARE)
    assert again.done == ("prepare",)
    outage = DriverState().finished(S.RESTART, StepOutputs(old_primary="db-1:7001", outage=True))
    assert outage.outage and outage.to_json()["outage"] == "1" and not outage.target
    # Outputs without a target leave what prepare decided alone.
    later = state.finished(S.CATCH_UP, StepOutputs())
    assert (later.target, later.hidden, later.done) == ("db-2:7002", False, ("prepare", "catch_up"))


def test_the_point_of_no_return_is_the_failover_step() -> None:
    assert POINT_OF_NO_RETURN == S.FAILOVER
    assert S.next_step(S.FAILOVER_STEPS, DriverState(done=("prepare", "catch_up"))) == S.MAINTAIN_STANDBY
    assert S.next_step(S.FAILOVER_STEPS, DriverState(done=S.FAILOVER_STEPS)) is None

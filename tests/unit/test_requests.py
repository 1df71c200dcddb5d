"""The pure parts of retried writes and resumed waits: the request mark's context (server/domain/
requests.py) and how a relayed WaitMaintenance is asked again of the next leader (server/replica/
forward.resume_wait)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb
from server.domain import requests
from server.replica.forward import resume_wait

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def test_a_resumed_wait_follows_the_first_answers_maintenance_and_attempts() -> None:
    request = mpb.WaitMaintenanceRequest(app="example-app", addon="REDIS_URL").SerializeToString()
    assert resume_wait(request, None) == request  # nothing answered yet: the same wait again
    first = mpb.WaitMaintenanceResponse(maintenance=rpb.Maintenance(id="m-1", attempts=2)).SerializeToString()
    resumed = mpb.WaitMaintenanceRequest.FromString(resume_wait(request, first))
    assert (resumed.app, resumed.addon, resumed.maintenance_id, resumed.attempts_before) == (
        "example-app", "REDIS_URL", "m-1", 2,
    )  # fmt: skip
    # Resumed twice (a second takeover): still the first wait's bounds.
    later = mpb.WaitMaintenanceResponse(maintenance=rpb.Maintenance(id="m-1", attempts=3)).SerializeToString()
    again = mpb.WaitMaintenanceRequest.FromString(resume_wait(resumed.SerializeToString(), later))
    assert (again.maintenance_id, again.attempts_before) == ("m-1", 2)


async def test_the_mark_is_recorded_only_while_its_handler_runs_and_replays_say_so() -> None:
    assert requests.recording() is None and requests.replaying() is None
    mark = requests.Mark("r1", "/m/CreateAddon", T0)
    token = requests.current.set(mark)
    try:
        requests.note("redis-a")
        assert requests.recording() is mark and mark.key == "redis-a"
        assert requests.replaying() is None  # a first attempt
        seen: list[object] = []

        async def spawned() -> None:  # a task the handler started sees the same mark...
            await asyncio.sleep(0)
            seen.append(requests.recording())

        task = asyncio.create_task(spawned())
        mark.open = False  # ...and records nothing once the handler returned
        await task
        assert seen == [None]
    finally:
        requests.current.reset(token)
    replay = requests.Mark("r1", "/m/CreateAddon", T0, replay_key="redis-a")
    token = requests.current.set(replay)
    try:
        assert requests.replaying() is replay
    finally:
        requests.current.reset(token)

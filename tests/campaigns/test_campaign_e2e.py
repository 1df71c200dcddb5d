"""Campaigns end to end: the scheduler and three agents as OS processes, real redis-server and
valkey-server processes, real gRPC. Every add-on's window is set to one under way now, so the planner
starts each wave's maintenances as soon as the wave is released; soaks are seconds. Outcomes are polled
for, never slept for."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from bench.writer import Writer, missing_writes
from kvmaint.client import attach
from kvmaint.v1 import campaigns_pb2 as cpb
from kvmaint.v1 import campaigns_pb2_grpc
from kvmaint.v1 import events_pb2 as epb
from kvmaint.v1 import events_pb2_grpc as epb_grpc
from kvmaint.v1 import maintenance_pb2 as mpb
from kvmaint.v1 import resources_pb2 as rpb
from tests.cli.conftest import Cli
from tests.integration.conftest import FAST
from tests.integration.test_builds import reported
from tests.integration.test_failover import APP, Api, connect
from tests.notify.servers import Received, SmtpSink
from tests.support.agentproc import AgentProcess
from tests.support.builds import REDIS, REDIS_VERSION, VALKEY_VERSION, build_args, valkey
from tests.support.eventually import eventually
from tests.support.scheduler import SchedulerProcess

HOSTS = ("db-1", "db-2", "db-3")
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def window_under_way() -> tuple[str, str]:
    """A weekly window that started an hour ago (the minute floored), so three hours of it remain."""
    start = datetime.now(UTC) - timedelta(hours=1)
    return DAYS[start.weekday()], start.strftime("%H:%M")


async def make_fleet(api: Api, n: int) -> list[rpb.Addon]:
    day, time = window_under_way()
    addons = []
    for i in range(n):
        addon = await api.create("premium-0", var=f"R{i:02d}_URL")
        await api.maint.UpdateWindow(mpb.UpdateWindowRequest(app=APP, addon=addon.name, day=day, time=time))
        addons.append(addon)
    for addon in addons:
        await reported(api, addon.name, REDIS_VERSION)
    return addons


def request(**kw: object) -> cpb.CreateCampaignRequest:
    deadline = Timestamp()
    deadline.FromDatetime(datetime.now(UTC) + timedelta(days=14))
    soak = Duration()
    soak.FromSeconds(int(kw.pop("soak_seconds", 2)))  # type: ignore[call-overload]
    return cpb.CreateCampaignRequest(
        all=True,
        build="valkey-8.1",
        reason=rpb.MAINTENANCE_REASON_REDIS_UPGRADE,
        required_by=deadline,
        soak=soak,
        **kw,  # type: ignore[arg-type]
    )


async def campaign(stub: campaigns_pb2_grpc.CampaignServiceStub, cid: str) -> cpb.GetCampaignResponse:
    return await stub.GetCampaign(cpb.GetCampaignRequest(id=cid))


async def wait_campaign(
    stub: campaigns_pb2_grpc.CampaignServiceStub, cid: str, status: int, timeout: float = 120
) -> cpb.GetCampaignResponse:
    async def reached() -> cpb.GetCampaignResponse | None:
        got = await campaign(stub, cid)
        return got if got.campaign.status == status else None

    result: cpb.GetCampaignResponse = await eventually(
        reached, timeout=timeout, interval=0.2, message=f"campaign {cpb.CampaignStatus.Name(status)}"
    )
    return result


@pytest.fixture
def three_hosts(scheduler_factory: Callable[..., SchedulerProcess], agents: Callable[..., AgentProcess]):
    s = scheduler_factory(extra_args=FAST)
    args = build_args(REDIS, valkey())
    return s, {h: agents(h, s.address, args) for h in HOSTS}


async def test_a_campaign_moves_12_addons_on_3_hosts_to_valkey_in_waves(three_hosts) -> None:
    scheduler, _ = three_hosts
    async with connect(scheduler.address) as api, grpc.aio.insecure_channel(scheduler.address) as channel:
        stub = campaigns_pb2_grpc.CampaignServiceStub(channel)
        await api.wait_agents(*HOSTS)
        addons = await make_fleet(api, 12)
        assert len({s.address.host for a in addons for s in a.servers}) == 3

        dry = (await stub.CreateCampaign(request(canary=1, waves="25%,100%", dry_run=True))).plan
        assert [list(dry.waves).count(w) for w in range(3)] == [1, 3, 8]
        assert all(dry.meets_deadline) and sum(d.count for d in dry.per_day) == 12
        assert (await stub.ListCampaigns(cpb.ListCampaignsRequest())).campaigns == []  # wrote nothing
        [canary] = [a for a, w in zip(dry.addons, dry.waves, strict=True) if w == 0]
        var = next(f"R{i:02d}_URL" for i, a in enumerate(addons) if a.name == canary)

        client = await attach(scheduler.address, APP, var, decode_responses=True)
        writer = Writer(client.set)
        writer.start()
        await eventually(lambda: len(writer.log) > 200, timeout=10)
        created = (await stub.CreateCampaign(request(canary=1, waves="25%,100%"))).campaign
        assert created.status == cpb.CAMPAIGN_STATUS_RUNNING
        # Members page (a campaign of 100,000 would be ~10 MB in one reply); all of them by default.
        whole = await campaign(stub, created.id)
        pages, token = [], ""
        while True:
            got = await stub.GetCampaign(cpb.GetCampaignRequest(id=created.id, page_size=5, page_token=token))
            pages.append([m.addon for m in got.members])
            token = got.next_page_token
            if not token:
                break
        assert [len(p) for p in pages] == [5, 5, 2] and not whole.next_page_token
        assert [a for p in pages for a in p] == [m.addon for m in whole.members]

        async def canary_done() -> bool:
            got = await campaign(stub, created.id)
            return got.campaign.wave_summaries[0].completed == 1

        await eventually(canary_done, timeout=60, message="canary completed")
        mark = len(writer.log)
        await eventually(lambda: len(writer.log) > mark + 100, timeout=10)  # still writing, on the new one
        log = await writer.stop()
        await client.aclose()
        assert not log.failure, log.failure
        primary = (await api.config())[var]
        assert await missing_writes(primary, len(log)) == []

        done = await wait_campaign(stub, created.id, cpb.CAMPAIGN_STATUS_COMPLETED)
        assert [(w.completed, w.failed, w.pending, w.running) for w in done.campaign.wave_summaries] == [
            (1, 0, 0, 0),
            (3, 0, 0, 0),
            (8, 0, 0, 0),
        ]
        # Each wave was released only once the one before had ended and soaked (2 s).
        events = epb_grpc.EventServiceStub(channel)
        released = [
            r.event
            async for r in events.StreamEvents(epb.StreamEventsRequest())
            if r.event.type == rpb.EVENT_TYPE_CAMPAIGN_WAVE_RELEASED
        ]
        assert len(released) == 3
        for before, event in zip(done.campaign.wave_summaries, released[1:], strict=False):
            soaked = before.ended_at.ToDatetime(tzinfo=UTC) + timedelta(seconds=2)
            assert event.time.ToDatetime(tzinfo=UTC) >= soaked
        # The real run's windows are the dry run's.
        assert {m.addon: m.scheduled_for.ToMilliseconds() for m in done.members} == dict(
            zip(dry.addons, dry.window_starts_ms, strict=True)
        )
        for addon in addons:
            assert await reported(api, addon.name, VALKEY_VERSION) == [("valkey-8.1", VALKEY_VERSION)] * 2


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


async def test_a_stopped_standby_halts_the_campaign_which_survives_a_crash_and_resumes(
    scheduler_factory: Callable[..., SchedulerProcess], agents: Callable[..., AgentProcess], smtp: SmtpSink
) -> None:
    mail = ["--smtp-host", "127.0.0.1", "--smtp-port", str(smtp.port), "--notify-interval", "0.5"]
    # A catch-up bound of 15 s, not FAST's 5: after the SIGKILLs below the scheduler resumes the maintenances
    # under way at once, and an agent that takes longer than the bound to reconnect (its backoff, on a loaded
    # machine) fails that attempt, which would halt the campaign a second time.
    fast = [*FAST[: FAST.index("--catch-up-timeout")], *FAST[FAST.index("--catch-up-timeout") + 2 :]]
    args = [*fast, "--catch-up-timeout", "15", *mail, "--operator-email", "ops@example.com"]
    scheduler = scheduler_factory(extra_args=args)
    hosts = {h: agents(h, scheduler.address, build_args(REDIS, valkey())) for h in HOSTS}
    async with connect(scheduler.address) as api, grpc.aio.insecure_channel(scheduler.address) as channel:
        stub = campaigns_pb2_grpc.CampaignServiceStub(channel)
        await api.wait_agents(*HOSTS)
        addons = await make_fleet(api, 3)
        # Through the CLI this time: the dry run's JSON names the canary.
        cli = Cli(scheduler.address)
        deadline = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
        create = ("campaigns:create", "--build", "valkey-8.1", "--reason", "redis_upgrade", "--all")
        create += ("--required-by", deadline, "--canary", "1", "--waves", "100%", "--soak", "1s")
        dry = cli.ok(*create, "--dry-run", "--json").json()
        assert [a["wave_label"] for a in dry["addons"]] == ["canary", "wave 1", "wave 1"]
        canary = dry["addons"][0]["addon"]
        standby = next(
            s for a in addons if a.name == canary for s in a.servers if s.role == rpb.SERVER_ROLE_STANDBY
        )
        pid = hosts[standby.address.host].server_pid(standby.address.port)
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the fault: the canary's standby stops answering
        try:
            created = cpb.Campaign(id=cli.ok(*create, "--json").json()["id"])
            halted = await wait_campaign(stub, created.id, cpb.CAMPAIGN_STATUS_HALTED, timeout=60)
        finally:
            os.kill(pid, signal.SIGCONT)  # the repair
        assert (
            halted.campaign.halt_reason == "1 maintenance attempt(s) of canary failed (--halt-on-failures 1)"
        )
        assert [(w.failed, w.completed) for w in halted.campaign.wave_summaries] == [(1, 0), (0, 0)]
        # Nothing more started: the next wave was never filed.
        assert [m.maintenance_id for m in halted.members if m.wave == 1] == ["", ""]

        # The operators hear of it by email, with the reason and the commands.
        def operator_mail() -> list[Received] | None:
            found = [m for m in smtp.messages() if m.rcpt_tos == ("ops@example.com",)]
            return found or None

        [mail_in] = await eventually(operator_mail, timeout=30, message="the operator's email")
        assert mail_in.subject == (
            f"Campaign {created.id} halted: 1 maintenance attempt(s) of canary failed (--halt-on-failures 1)"
        )
        assert f"kvmaint campaigns:resume {created.id}" in mail_in.text
        listed = cli.ok("campaigns").out
        assert "halted" in listed and "1 maintenance attempt(s) of canary failed" in listed
        info = await api.info(canary)
        assert info.attempts == 1 and "catch_up" in info.last_failure_reason

        # SIGKILL the scheduler; after the restart the campaign is exactly where it was.
        scheduler.restart()
        after = await campaign(stub, created.id)
        assert after == halted

        assert cli.ok("campaigns:resume", created.id, "--json").json()["status"] == "running"

        # SIGKILL it again once the next wave is filed, maintenances under way: after the restart the
        # same maintenances go on (none filed twice) and the campaign completes.
        async def wave_filed() -> dict[str, str] | None:
            got = await campaign(stub, created.id)
            ids = {m.addon: m.maintenance_id for m in got.members if m.wave == 1}
            return ids if all(ids.values()) else None

        filed: dict[str, str] = await eventually(
            wave_filed, timeout=60, interval=0.05, message="wave 1 filed"
        )
        scheduler.restart()
        done = await wait_campaign(stub, created.id, cpb.CAMPAIGN_STATUS_COMPLETED)
        assert {m.addon: m.maintenance_id for m in done.members if m.wave == 1} == filed
        for name in filed:
            assert (
                len(
                    (
                        await api.maint.ListMaintenanceHistory(
                            mpb.ListMaintenanceHistoryRequest(app=APP, addon=name, limit=20)
                        )
                    ).maintenances
                )
                == 1
            )
        assert [(w.completed, w.failed) for w in done.campaign.wave_summaries] == [(1, 0), (2, 0)]
        for addon in addons:
            assert await reported(api, addon.name, VALKEY_VERSION) == [("valkey-8.1", VALKEY_VERSION)] * 2
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await stub.CancelCampaign(cpb.CancelCampaignRequest(id=created.id))
        assert ended.value.code() == grpc.StatusCode.FAILED_PRECONDITION

"""Campaigns are the operators': an app token is refused on every CampaignService call."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from kvmaint.v1 import campaigns_pb2 as cpb
from kvmaint.v1 import campaigns_pb2_grpc
from kvmaint.v1 import resources_pb2 as rpb
from tests.conftest import APP_TOKENS, OPERATOR_TOKEN
from tests.support.scheduler import SchedulerProcess


async def test_app_tokens_may_not_touch_campaigns(scheduler_factory: Callable[..., SchedulerProcess]) -> None:
    s = scheduler_factory(tokens=True)
    async with grpc.aio.insecure_channel(s.address) as channel:
        stub = campaigns_pb2_grpc.CampaignServiceStub(channel)
        app = [("authorization", f"Bearer {APP_TOKENS['example-app']}")]
        calls = [
            (stub.CreateCampaign, cpb.CreateCampaignRequest(all=True, build="valkey-8.1", dry_run=True)),
            (stub.ListCampaigns, cpb.ListCampaignsRequest()),
            (stub.GetCampaign, cpb.GetCampaignRequest(id="x")),
            (stub.ResumeCampaign, cpb.ResumeCampaignRequest(id="x")),
            (stub.CancelCampaign, cpb.CancelCampaignRequest(id="x")),
        ]
        for method, request in calls:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await method(request, metadata=app)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, method
        operator = [("authorization", f"Bearer {OPERATOR_TOKEN}")]
        assert (await stub.ListCampaigns(cpb.ListCampaignsRequest(), metadata=operator)).campaigns == []
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetCampaign(cpb.GetCampaignRequest(id="nope"), metadata=operator)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        # No agent has reported the build: refused with the builds known, before anything is planned.
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.CreateCampaign(
                cpb.CreateCampaignRequest(
                    all=True,
                    build="valkey-8.1",
                    reason=rpb.MAINTENANCE_REASON_REDIS_UPGRADE,
                    dry_run=True,
                    required_by={"seconds": 4102444800},
                ),
                metadata=operator,
            )
        assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "no agent has reported any build" in unknown.value.details()

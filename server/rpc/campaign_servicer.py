"""The CampaignService servicer: operators only; validate, convert, call the campaign service."""

from __future__ import annotations

from datetime import datetime, timedelta

from kvmaint.errors import InvalidArgument
from kvmaint.v1 import campaigns_pb2 as cpb
from kvmaint.v1 import campaigns_pb2_grpc
from server.auth import require_operator
from server.domain import campaigns as dc
from server.domain.campaigns import MemberState, Spec
from server.rpc import convert
from server.rpc.servicers import Ctx, _text
from server.service import paging
from server.service.campaigns import CampaignService, CampaignView, Selection

MAX_APPS = 1000
# Members in one GetCampaign reply: ~100 B each, so about 1 MB, well below gRPC's 4 MB default.
MEMBERS_PAGE = 10_000


def _spec(r: cpb.CreateCampaignRequest) -> Spec:
    if not r.build:
        raise InvalidArgument.field("build", "A build is required (--build NAME; see kvmaint builds).")
    if not r.HasField("required_by"):
        raise InvalidArgument.field("required_by", "A deadline is required (--required-by).")
    try:
        soak = r.soak.ToTimedelta() if r.HasField("soak") else dc.DEFAULT_SOAK
    except (OverflowError, ValueError):
        raise InvalidArgument.field("soak", "The soak is not a valid duration.") from None
    if soak < timedelta(0) or soak > timedelta(days=30):
        raise InvalidArgument.field("soak", "A soak is 0 to 30 days.")
    return Spec(
        build=_text(r.build, "build"),
        reason=convert.reason_from(r.reason).value,
        required_by=convert.from_ts(r.required_by, "required_by"),
        canary=r.canary if r.HasField("canary") else 1,
        waves=dc.parse_waves(_text(r.waves, "waves")) if r.waves else dc.DEFAULT_WAVES,
        soak=soak,
        halt_on_failures=r.halt_on_failures if r.HasField("halt_on_failures") else 1,
        halt_on_pause_ms=r.halt_on_pause_ms if r.HasField("halt_on_pause_ms") else 1000,
    )


def _selection(r: cpb.CreateCampaignRequest) -> Selection:
    target = r.WhichOneof("target")
    if target == "all" and r.all:
        return Selection(all=True)
    if target == "plan":
        return Selection(plan=_text(r.plan, "plan"))
    if target == "apps":
        if len(r.apps.names) > MAX_APPS:
            raise InvalidArgument.field("apps", f"At most {MAX_APPS} apps; use --plan or --all.")
        return Selection(apps=tuple(_text(a, "apps") for a in r.apps.names))
    raise InvalidArgument.field("target", "Name apps (-a APP), a plan (--plan), or all add-ons (--all).")


def _planned_starts(members: tuple[MemberState, ...]) -> dict[int, datetime]:
    out: dict[int, datetime] = {}
    for s in members:
        at = s.member.planned_at
        if s.member.wave not in out or at < out[s.member.wave]:
            out[s.member.wave] = at
    return out


def _campaign(v: CampaignView) -> cpb.Campaign:
    return convert.campaign(v.campaign, v.waves, _planned_starts(v.members))


class CampaignServicer(campaigns_pb2_grpc.CampaignServiceServicer):
    def __init__(self, service: CampaignService) -> None:
        self.service = service

    async def CreateCampaign(
        self, request: cpb.CreateCampaignRequest, context: Ctx
    ) -> cpb.CreateCampaignResponse:
        require_operator("run campaigns")
        c, plan = await self.service.create(
            _spec(request),
            _selection(request),
            dry_run=request.dry_run,
            allow_downgrade=request.allow_downgrade,
        )
        out = cpb.CreateCampaignResponse(plan=convert.campaign_plan(plan))
        if c is not None:
            out.campaign.CopyFrom(_campaign(await self.service.get(c.id)))
        return out

    async def ListCampaigns(
        self, request: cpb.ListCampaignsRequest, context: Ctx
    ) -> cpb.ListCampaignsResponse:
        require_operator("list campaigns")
        return cpb.ListCampaignsResponse(campaigns=[_campaign(v) for v in await self.service.list()])

    async def GetCampaign(self, request: cpb.GetCampaignRequest, context: Ctx) -> cpb.GetCampaignResponse:
        require_operator("see campaigns")
        v = await self.service.get(_text(request.id, "id"))
        if request.page_size < 0 or request.page_size > MEMBERS_PAGE:
            raise InvalidArgument.field("page_size", f"page_size must be between 0 and {MEMBERS_PAGE}.")
        size = request.page_size or MEMBERS_PAGE
        after = paging.decode(f"campaign-members/{v.campaign.id}", _text(request.page_token, "page_token"))
        start = int(after) if after.isdigit() else 0
        page = v.members[start : start + size]
        more = start + size < len(v.members)
        return cpb.GetCampaignResponse(
            campaign=_campaign(v),
            members=[convert.campaign_member(m) for m in page],
            next_page_token=paging.encode(f"campaign-members/{v.campaign.id}", str(start + size))
            if more
            else "",
        )

    async def ResumeCampaign(
        self, request: cpb.ResumeCampaignRequest, context: Ctx
    ) -> cpb.ResumeCampaignResponse:
        require_operator("resume campaigns")
        c = await self.service.resume(_text(request.id, "id"))
        return cpb.ResumeCampaignResponse(campaign=_campaign(await self.service.get(c.id)))

    async def CancelCampaign(
        self, request: cpb.CancelCampaignRequest, context: Ctx
    ) -> cpb.CancelCampaignResponse:
        require_operator("cancel campaigns")
        c = await self.service.cancel(_text(request.id, "id"))
        return cpb.CancelCampaignResponse(campaign=_campaign(await self.service.get(c.id)))

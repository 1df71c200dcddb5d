"""Handlers of the campaigns:* commands (operators): roll a build out over the fleet in waves."""

from __future__ import annotations

import argparse
import re

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from kvmaint.cli import campaign_format as cfmt
from kvmaint.cli import format as fmt
from kvmaint.cli.context import Context
from kvmaint.cli.values import UsageError, parse_enum, parse_time
from kvmaint.v1 import campaigns_pb2 as cpb
from kvmaint.v1 import resources_pb2

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, option: str) -> Duration:
    """"30s", "15m", "2h", "1d", "1h30m"."""
    raw = text.strip().lower()
    parts = re.findall(r"(\d+)([smhd])", raw)
    if not parts or "".join(n + u for n, u in parts) != raw:
        raise UsageError(f"{option} {text!r} is not a duration such as 30s, 15m, 2h or 1d.", option)
    out = Duration()
    out.seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    return out


def campaigns_create(ctx: Context, args: argparse.Namespace) -> int:
    required_by = Timestamp()
    required_by.FromDatetime(parse_time(args.required_by, "--required-by"))
    request = cpb.CreateCampaignRequest(
        build=args.build,
        reason=parse_enum(resources_pb2.MaintenanceReason, args.reason, "--reason"),
        required_by=required_by,
        waves=args.waves or "",
        dry_run=bool(args.dry_run),
        allow_downgrade=bool(args.allow_downgrade),
    )
    if args.canary is not None:
        request.canary = args.canary
    if args.soak is not None:
        request.soak.CopyFrom(parse_duration(args.soak, "--soak"))
    if args.halt_on_failures is not None:
        request.halt_on_failures = args.halt_on_failures
    if args.halt_on_pause_ms is not None:
        request.halt_on_pause_ms = args.halt_on_pause_ms
    if args.apps:
        request.apps.names.extend(args.apps)
        target = f"the add-ons of {', '.join(args.apps)}"
    elif args.plan:
        request.plan = args.plan
        target = f"every {args.plan} add-on"
    else:
        request.all = True
        target = "every add-on"
    resp = ctx.conn.call(ctx.conn.campaigns.CreateCampaign, request)
    has_canary = (args.canary if args.canary is not None else 1) > 0
    plan = cfmt.plan_view(resp.plan, has_canary)
    if args.dry_run:
        ctx.out.done(f"Planning a campaign to build {args.build} over {target}")
        ctx.out.emit(plan, lambda: cfmt.plan_text(plan))
        ctx.out.note("Dry run: nothing was written.")
        return 0
    view = cfmt.campaign_view(resp.campaign)
    ctx.out.done(f"Starting a campaign to build {args.build} over {target}")
    ctx.out.emit(view, lambda: cfmt.info_text(view))
    return 0


def campaigns_list(ctx: Context, args: argparse.Namespace) -> int:
    resp = ctx.conn.call(ctx.conn.campaigns.ListCampaigns, cpb.ListCampaignsRequest())
    views = [cfmt.campaign_view(c) for c in resp.campaigns]
    if not views and not ctx.out.json_mode:
        ctx.out.note("There are no campaigns.")
        return 0
    ctx.out.emit(views, lambda: fmt.render_table(cfmt.list_rows(views), cfmt.LIST_COLUMNS))
    return 0


def campaigns_info(ctx: Context, args: argparse.Namespace) -> int:
    request = cpb.GetCampaignRequest(id=args.id)
    resp = ctx.conn.call(ctx.conn.campaigns.GetCampaign, request)
    members = list(resp.members)
    while resp.next_page_token:  # more than 10,000 members
        request.page_token = resp.next_page_token
        resp = ctx.conn.call(ctx.conn.campaigns.GetCampaign, request)
        members += resp.members
    view = cfmt.campaign_view(resp.campaign)
    view["members"] = [cfmt.member_view(m, resp.campaign.canary > 0) for m in members]
    ctx.out.emit(view, lambda: cfmt.info_text(view))
    return 0


def campaigns_resume(ctx: Context, args: argparse.Namespace) -> int:
    resp = ctx.conn.call(ctx.conn.campaigns.ResumeCampaign, cpb.ResumeCampaignRequest(id=args.id))
    ctx.out.done(f"Resuming campaign {args.id}")
    view = cfmt.campaign_view(resp.campaign)
    ctx.out.emit(view, lambda: cfmt.info_text(view))
    return 0


def campaigns_cancel(ctx: Context, args: argparse.Namespace) -> int:
    resp = ctx.conn.call(ctx.conn.campaigns.CancelCampaign, cpb.CancelCampaignRequest(id=args.id))
    ctx.out.done(f"Canceling campaign {args.id}")
    view = cfmt.campaign_view(resp.campaign)
    ctx.out.emit(view, lambda: cfmt.info_text(view))
    return 0

"""Handlers of the fleet commands: apps, maintenance mode, add-ons, config vars, maintenance campaigns."""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from typing import cast

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from kvmaint.channel import to_rpc_error, with_tls_hint
from kvmaint.cli import format as fmt
from kvmaint.cli.context import Context
from kvmaint.cli.values import UsageError, parse_enum, parse_host_port, parse_time
from kvmaint.v1 import fleet_pb2, resources_pb2


def apps_create(ctx: Context, args: argparse.Namespace) -> int:
    resp = ctx.conn.call(
        ctx.conn.fleet.CreateApp,
        fleet_pb2.CreateAppRequest(name=args.name, owner_email=args.owner_email or ""),
    )
    ctx.out.done(f"Creating ⬢ {resp.app.name}")
    view = fmt.app_view(resp.app)
    ctx.out.emit(view, lambda: "")
    return 0


def apps_list(ctx: Context, args: argparse.Namespace) -> int:
    apps = ctx.conn.paginate(ctx.conn.fleet.ListApps, fleet_pb2.ListAppsRequest(page_size=1000), "apps")
    views = [fmt.app_view(a) for a in apps]
    if not views and not ctx.out.json_mode:
        ctx.out.note("There are no apps.")
        return 0
    ctx.out.emit(views, lambda: fmt.render_table(views, fmt.APP_COLUMNS))
    return 0


def apps_destroy(ctx: Context, args: argparse.Namespace) -> int:
    if args.confirm is None:
        raise UsageError(
            f"This permanently destroys {args.name} and its add-ons. To proceed, re-run the "
            f"command with --confirm {args.name}",
            "--confirm",
        )
    if args.confirm != args.name:
        raise UsageError(f"Confirmation {args.confirm} did not match {args.name}. Aborted.", "--confirm")
    ctx.conn.call(ctx.conn.fleet.DeleteApp, fleet_pb2.DeleteAppRequest(name=args.name))
    ctx.out.done(f"Destroying ⬢ {args.name} (including all add-ons)")
    ctx.out.emit({"name": args.name, "destroyed": True}, lambda: "")
    return 0


def _maintenance_mode(ctx: Context, app: str, enabled: bool) -> int:
    resp = ctx.conn.call(
        ctx.conn.fleet.SetMaintenanceMode, fleet_pb2.SetMaintenanceModeRequest(app=app, enabled=enabled)
    )
    verb = "Enabling" if enabled else "Disabling"
    ctx.out.done(f"{verb} maintenance mode for ⬢ {resp.app.name or app}")
    ctx.out.emit(fmt.app_view(resp.app), lambda: "")
    return 0


def maintenance_status(ctx: Context, args: argparse.Namespace) -> int:
    """Heroku's `maintenance -a APP`: "on" or "off"."""
    resp = ctx.conn.call(ctx.conn.fleet.GetApp, fleet_pb2.GetAppRequest(name=args.app))
    view = fmt.app_view(resp.app)
    ctx.out.emit(view, lambda: "on" if view["maintenance_mode"] else "off")
    return 0


def maintenance_on(ctx: Context, args: argparse.Namespace) -> int:
    return _maintenance_mode(ctx, args.app, True)


def maintenance_off(ctx: Context, args: argparse.Namespace) -> int:
    return _maintenance_mode(ctx, args.app, False)


def _server_address(text: str | None, option: str) -> resources_pb2.ServerAddress | None:
    if text is None:
        return None
    host, port = parse_host_port(text, option)
    return resources_pb2.ServerAddress(host=host, port=port)


def addons_create(ctx: Context, args: argparse.Namespace) -> int:
    request = fleet_pb2.CreateAddonRequest(
        app=args.app, plan=args.plan, name=args.addon_name or "", attachments=args.attachments or []
    )
    primary = _server_address(args.primary, "--primary")
    standby = _server_address(args.standby, "--standby")
    if primary is not None:
        request.primary.CopyFrom(primary)
    if standby is not None:
        request.standby.CopyFrom(standby)
    resp = ctx.conn.call(ctx.conn.fleet.CreateAddon, request)
    view = fmt.addon_view(resp.addon)
    ctx.out.done(f"Creating {args.plan} on ⬢ {resp.addon.app or args.app}")
    ctx.out.emit(view, lambda: f"Created {view['name']} as {fmt.cell(view['attachments'])}")
    return 0


def addons_list(ctx: Context, args: argparse.Namespace) -> int:
    addons = ctx.conn.paginate(
        ctx.conn.fleet.ListAddons, fleet_pb2.ListAddonsRequest(app=args.app or "", page_size=1000), "addons"
    )
    views = [fmt.addon_view(a) for a in addons]
    if not views and not ctx.out.json_mode:
        ctx.out.note(f"No add-ons on ⬢ {args.app}." if args.app else "There are no add-ons.")
        return 0
    ctx.out.emit(views, lambda: fmt.render_table(views, fmt.ADDON_COLUMNS))
    return 0


def config(ctx: Context, args: argparse.Namespace) -> int:
    resp = ctx.conn.call(ctx.conn.fleet.GetConfigVars, fleet_pb2.GetConfigVarsRequest(app=args.app))
    config_vars = dict(sorted(resp.config_vars.items()))
    ctx.out.emit(config_vars, lambda: fmt.config_block(args.app, config_vars))
    return 0


def config_get(ctx: Context, args: argparse.Namespace) -> int:
    """One config var's value alone (empty when unset), as `heroku config:get` prints it for scripts."""
    resp = ctx.conn.call(ctx.conn.fleet.GetConfigVars, fleet_pb2.GetConfigVarsRequest(app=args.app))
    value = resp.config_vars.get(args.key, "")
    ctx.out.emit(value, lambda: value)
    return 0


def agents(ctx: Context, args: argparse.Namespace) -> int:
    resp = ctx.conn.call(ctx.conn.fleet.ListAgents, fleet_pb2.ListAgentsRequest())
    views = [fmt.agent_view(a) for a in resp.agents]
    if not views and not ctx.out.json_mode:
        ctx.out.note("No agent has connected yet.")
        return 0
    rows = [{**v, "servers_text": fmt.agent_servers_text(v)} for v in views]
    ctx.out.emit(views, lambda: fmt.render_table(rows, fmt.AGENT_COLUMNS))
    return 0


def schedulers(ctx: Context, args: argparse.Namespace) -> int:
    """The scheduler replicas on the database: which one leads, under which term, last heartbeat."""
    resp = ctx.conn.call(ctx.conn.fleet.ListSchedulers, fleet_pb2.ListSchedulersRequest())
    now = resp.now.ToDatetime(tzinfo=UTC) if resp.HasField("now") else datetime.now(UTC)
    views = [
        {
            "id": r.id,
            "address": r.address,
            "agent_address": r.agent_address,
            "leader": r.leader,
            "term": r.term if r.leader else None,
            "started_at": r.start_time.ToDatetime(tzinfo=UTC).isoformat(timespec="milliseconds"),
            "seen_at": r.seen_time.ToDatetime(tzinfo=UTC).isoformat(timespec="milliseconds"),
            "version": r.version,
        }
        for r in resp.schedulers
    ]
    if not views and not ctx.out.json_mode:
        ctx.out.note("No scheduler has recorded itself yet.")
        return 0
    rows = []
    for r, v in zip(resp.schedulers, views, strict=True):
        seen = max(0.0, (now - r.seen_time.ToDatetime(tzinfo=UTC)).total_seconds())
        lead = {"leader_text": "leader" if r.leader else "", "term_text": str(r.term) if r.leader else ""}
        rows.append({**v, **lead, "seen_text": f"{seen:.1f}s ago"})
    columns = [("ID", "id"), ("ADDRESS", "address"), ("LEADER", "leader_text"), ("TERM", "term_text"),
               ("SEEN", "seen_text")]
    ctx.out.emit({"term": resp.term, "schedulers": views}, lambda: fmt.render_table(rows, columns))
    return 0


def builds(ctx: Context, args: argparse.Namespace) -> int:
    resp = ctx.conn.call(ctx.conn.fleet.ListAgents, fleet_pb2.ListAgentsRequest())
    rows = fmt.builds_rows([fmt.agent_view(a) for a in resp.agents])
    if not rows and not ctx.out.json_mode:
        ctx.out.note("No connected agent has reported a build yet.")
        return 0
    ctx.out.emit(rows, lambda: fmt.render_table(rows, fmt.BUILD_COLUMNS))
    return 0


def maintenances_require(ctx: Context, args: argparse.Namespace) -> int:
    request = fleet_pb2.RequireMaintenanceRequest(
        reason=parse_enum(resources_pb2.MaintenanceReason, args.reason, "--reason"),
        build=args.build or "",
        allow_downgrade=bool(args.allow_downgrade),
    )
    if args.method is not None:
        request.method = parse_enum(resources_pb2.MaintenanceMethod, args.method, "--method")
    if args.required_by is not None:
        required_by = Timestamp()
        required_by.FromDatetime(parse_time(args.required_by, "--required-by"))
        request.required_by.CopyFrom(required_by)
    if args.addons:
        request.addons.names.extend(args.addons)
        target = ", ".join(args.addons)
    elif args.plan:
        request.plan = args.plan
        target = f"every {args.plan} add-on"
    else:
        request.all = True
        target = "every add-on"
    fleet_wide = not args.addons or len(args.addons) > FOLLOW_ABOVE
    if fleet_wide:
        request.request_id = f"cli-{uuid.uuid4()}"
        resp = _follow_filing(ctx, request)
    else:
        resp = ctx.conn.call(ctx.conn.fleet.RequireMaintenance, request)
    views = [fmt.maintenance_view(m) for m in resp.maintenances]
    pending = list(resp.already_pending)
    ctx.out.done(f"Requiring maintenance for {target}")
    counts = {
        "filing": resp.filing,
        "filed": resp.filed_count,
        "already_pending_count": resp.already_pending_count,
        "skipped": {s.reason: s.count for s in resp.skipped},
        "batches": resp.batches,
        "lists_omitted": resp.lists_omitted,
    }
    if ctx.out.json_mode:
        ctx.out.json({"maintenances": views, "already_pending": pending, **counts})
        return 0
    if views:
        ctx.out.line(fmt.render_table(views, fmt.REQUIRED_COLUMNS))
    if pending:
        ctx.out.note(f"Already pending, kept as they are: {', '.join(pending)}.")
    if not resp.filed_count and not resp.already_pending_count and not resp.skipped:
        ctx.out.note("No add-on matched.")
        return 0
    if fleet_wide or resp.lists_omitted or resp.skipped:  # a few named add-ons: the table says it all
        ctx.out.note(_counts_sentence(resp))
    return 0


# A request for more add-ons than this (or for a plan, or all) is followed with progress.
FOLLOW_ABOVE = 500
FLEET_TIMEOUT = 3600.0
PROGRESS_EVERY = 2.0


def _counts_sentence(resp: fleet_pb2.RequireMaintenanceResponse) -> str:
    text = f"Filed {resp.filed_count}, already pending {resp.already_pending_count}"
    for s in resp.skipped:
        examples = f" (e.g. {', '.join(s.examples[:3])})" if s.examples else ""
        text += f", skipped {s.count} ({s.reason}){examples}"
    text += f"; {resp.batches} batch{'es' if resp.batches != 1 else ''}, filing {resp.filing}."
    if resp.lists_omitted:
        text += f" Too many to list here: kvmaint data:maintenances --filing {resp.filing}"
    return text


def _follow_filing(
    ctx: Context, request: fleet_pb2.RequireMaintenanceRequest
) -> fleet_pb2.RequireMaintenanceResponse:
    """Sends a fleet-wide request with a long deadline and prints how far it has got (GetFiling by its
    request_id) on stderr until it answers. Sent again after a failure it files only what is missing."""
    future = ctx.conn.fleet.RequireMaintenance.future(request, timeout=FLEET_TIMEOUT)
    last = ""
    try:
        while True:
            try:
                return cast(fleet_pb2.RequireMaintenanceResponse, future.result(timeout=PROGRESS_EVERY))
            except grpc.FutureTimeoutError:
                pass
            try:
                p = ctx.conn.fleet.GetFiling(fleet_pb2.GetFilingRequest(filing=request.request_id), timeout=5)
            except grpc.RpcError:
                continue  # not started yet, or another replica serves it: no progress to show
            of = f" of {p.targeted}" if p.targeted >= 0 else ""
            seen = p.filed_count + p.already_pending_count + sum(s.count for s in p.skipped)
            line = (
                f"... {seen}{of} add-ons: filed {p.filed_count}, already pending "
                f"{p.already_pending_count} ({p.batches} batches)"
            )
            if line != last:
                ctx.out.note(line)
                last = line
    except grpc.RpcError as err:
        raise with_tls_hint(to_rpc_error(err, ctx.conn.options.address), ctx.conn.options) from None

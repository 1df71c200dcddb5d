"""Handlers of what an app owner runs: redis:info and the data:maintenances:* commands."""

from __future__ import annotations

import argparse

from kvmaint.cli import format as fmt
from kvmaint.cli import heroku
from kvmaint.cli.context import Context
from kvmaint.cli.values import UsageError, parse_week
from kvmaint.errors import ErrorReason, KvmaintError, RPCError
from kvmaint.v1 import fleet_pb2, maintenance_pb2

# Statuses after which a maintenance will not move again.
_FAILED_ENDINGS = ("failed", "canceled")
# A maintenance in these is in progress: what `data:maintenances:wait` follows.
IN_PROGRESS = ("preparing", "ready", "running")


def redis_info(ctx: Context, args: argparse.Namespace) -> int:
    """One add-on, or every add-on of the app (ListAddons, then GetAddonInfo for each)."""
    if args.addon:
        names = [args.addon]
    elif args.app:
        addons = ctx.conn.paginate(
            ctx.conn.fleet.ListAddons, fleet_pb2.ListAddonsRequest(app=args.app, page_size=1000), "addons"
        )
        names = [a.name for a in addons]
    else:
        raise UsageError("Name an add-on or an app: kvmaint redis:info [ADDON] -a APP.", "--app")
    requests = [maintenance_pb2.GetAddonInfoRequest(app=args.app or "", addon=name) for name in names]
    views = [fmt.addon_info_view(ctx.conn.call(ctx.conn.maintenance.GetAddonInfo, r)) for r in requests]
    if not views and not ctx.out.json_mode:
        ctx.out.note(f"No add-ons on ⬢ {args.app}.")
        return 0
    ctx.out.emit(views, lambda: "\n\n".join(fmt.addon_info_block(v) for v in views))
    return 0


def maintenances_list(ctx: Context, args: argparse.Namespace) -> int:
    filing = getattr(args, "filing", None) or ""
    if not args.app and not filing:
        raise UsageError("Missing required flag -a/--app APP (or --filing ID).", "--app")
    items = ctx.conn.paginate(
        ctx.conn.maintenance.ListMaintenances,
        maintenance_pb2.ListMaintenancesRequest(app=args.app or "", page_size=1000, filing=filing),
        "maintenances",
    )
    views = [fmt.maintenance_view(m) for m in items]
    if not views and not ctx.out.json_mode:
        ctx.out.note(f"No maintenances filed by {filing}." if filing else f"No maintenances on ⬢ {args.app}.")
        return 0
    if filing and ctx.out.json_mode:
        ctx.out.json(views)
        return 0
    if ctx.out.json_mode:
        addons = {a.name: fmt.addon_view(a) for a in ctx.conn.paginate(
            ctx.conn.fleet.ListAddons, fleet_pb2.ListAddonsRequest(app=args.app, page_size=1000), "addons")}
        ctx.out.json([heroku.maintenance_item_object(v, addons.get(str(v["addon"]))) for v in views])
        return 0
    ctx.out.emit(views, lambda: fmt.render_table(views, fmt.MAINTENANCE_COLUMNS))
    return 0


def _info_view(ctx: Context, app: str, addon: str) -> fmt.View:
    resp = ctx.conn.call(
        ctx.conn.maintenance.GetMaintenanceInfo,
        maintenance_pb2.GetMaintenanceInfoRequest(app=app, addon=addon),
    )
    return fmt.maintenance_info_view(resp.info)


def maintenance_info(ctx: Context, args: argparse.Namespace) -> int:
    view = _info_view(ctx, args.app or "", args.addon)
    ctx.out.done("Fetching maintenance")
    ctx.out.emit(heroku.maintenance_info_object(view), lambda: fmt.info_block(view))
    return 0


def window_show(ctx: Context, args: argparse.Namespace) -> int:
    resp = ctx.conn.call(
        ctx.conn.maintenance.GetWindow, maintenance_pb2.GetWindowRequest(app=args.app or "", addon=args.addon)
    )
    view = fmt.window_state_view(resp.state)
    ctx.out.emit(heroku.window_object(view), lambda: fmt.render_view(view, fmt.WINDOW_KEYS))
    return 0


def window_update(ctx: Context, args: argparse.Namespace) -> int:
    resp = ctx.conn.call(
        ctx.conn.maintenance.UpdateWindow,
        maintenance_pb2.UpdateWindowRequest(
            app=args.app or "", addon=args.addon, day=args.day, time=args.time
        ),
    )
    view = fmt.window_state_view(resp.state)
    ctx.out.done(f"Setting maintenance window for {args.addon} to {view['window']}")
    ctx.out.emit(heroku.window_object(view), lambda: fmt.render_view(view, fmt.WINDOW_KEYS))
    return 0


def schedule(ctx: Context, args: argparse.Namespace) -> int:
    request = maintenance_pb2.ScheduleMaintenanceRequest(app=args.app or "", addon=args.addon)
    if args.weeks is not None:
        request.weeks = args.weeks
    elif args.week is not None:
        request.week = parse_week(args.week)
    resp = ctx.conn.call(ctx.conn.maintenance.ScheduleMaintenance, request)
    view = fmt.schedule_view(resp)
    ctx.out.done(f"Scheduling maintenance for {view['addon'] or args.addon}")
    ctx.out.emit(view, lambda: fmt.render_view(view, fmt.SCHEDULE_KEYS))
    return 0


def run(ctx: Context, args: argparse.Namespace) -> int:
    resp = ctx.conn.call(
        ctx.conn.maintenance.RunMaintenance,
        maintenance_pb2.RunMaintenanceRequest(
            app=args.app or "", addon=args.addon, confirm=args.confirm or ""
        ),
    )
    view = fmt.maintenance_view(resp.maintenance)
    ctx.out.done(f"Starting maintenance for {view['addon'] or args.addon}")
    if args.wait:  # just started: follow it from its first step
        return _wait(ctx, args.app or "", args.addon)
    if ctx.out.json_mode:
        ctx.out.json(heroku.maintenance_info_object(_info_view(ctx, args.app or "", args.addon)))
    return 0


def wait(ctx: Context, args: argparse.Namespace) -> int:
    """Heroku's wait: an error at once when nothing is in progress (a pending maintenance may be weeks
    away, and a deploy script must not block on it)."""
    view = _info_view(ctx, args.app or "", args.addon)
    if view.get("status") not in IN_PROGRESS:
        name = view.get("addon_name") or args.addon
        raise KvmaintError(f"There currently isn't any maintenance in progress for {name}.")
    return _wait(ctx, args.app or "", args.addon)


def _wait(ctx: Context, app: str, addon: str) -> int:
    """Shows WaitMaintenance progress until the stream ends, then the final info block. A maintenance
    that failed or was canceled ends the command with its reason as the error."""
    request = maintenance_pb2.WaitMaintenanceRequest(app=app, addon=addon)
    with ctx.out.progress() as progress:
        try:
            for resp in ctx.conn.stream(ctx.conn.maintenance.WaitMaintenance, request):
                progress.update(fmt.progress_view(resp))
        except RPCError as err:
            if err.reason != ErrorReason.MAINTENANCE_NOT_REQUIRED:
                raise
            name = err.resource.name if err.resource else addon
            raise KvmaintError(f"There currently isn't any maintenance in progress for {name}.") from None
    view = _info_view(ctx, app, addon)
    ctx.out.emit(heroku.maintenance_info_object(view), lambda: fmt.info_block(view))
    status = str(view.get("status") or "")
    name = str(view.get("addon_name") or addon)
    if status in _FAILED_ENDINGS:
        raise KvmaintError(ending_sentence(name, status, str(view.get("failure_reason") or "")))
    if status == "pending":  # the stream ends on a pending maintenance only when an attempt failed
        raise KvmaintError(retry_sentence(name, view))
    return 0


def retry_sentence(addon: str, view: fmt.View) -> str:
    """A failed attempt: its reason, then what happens next (the next try, or an operator)."""
    reason = str(view.get("last_failure_reason") or "").strip().rstrip(".")
    attempts = view.get("attempts")
    if view.get("needs_operator"):
        then = f"it is still required and waits for an operator after {attempts} failed attempts"
    else:
        then = f"it is pending again (attempt {attempts} failed) for {view.get('scheduled_for')}"
    return f"Maintenance of {addon} failed: {reason}; {then}."


def ending_sentence(addon: str, status: str, reason: str) -> str:
    """ "Maintenance of redis-x failed: <reason>." with exactly one full stop at the end."""
    reason = reason.strip()
    if not reason:
        return f"Maintenance of {addon} {status}."
    stop = "" if reason.endswith((".", "!", "?", ".)")) else "."
    return f"Maintenance of {addon} {status}: {reason}{stop}"


def history(ctx: Context, args: argparse.Namespace) -> int:
    resp = ctx.conn.call(
        ctx.conn.maintenance.ListMaintenanceHistory,
        maintenance_pb2.ListMaintenanceHistoryRequest(
            app=args.app or "", addon=args.addon, limit=args.limit or 0
        ),
    )
    views = [fmt.maintenance_view(m) for m in resp.maintenances]
    if not views and not ctx.out.json_mode:
        ctx.out.note(f"No maintenances of {args.addon} yet.")
        return 0
    if ctx.out.json_mode:
        info = ctx.conn.call(ctx.conn.maintenance.GetAddonInfo,
                             maintenance_pb2.GetAddonInfoRequest(app=args.app or "", addon=args.addon))
        addon = fmt.addon_view(info.addon)
        ctx.out.json([heroku.maintenance_item_object(v, addon) for v in views])
        return 0
    ctx.out.emit(views, lambda: fmt.render_table(views, fmt.HISTORY_COLUMNS))
    return 0

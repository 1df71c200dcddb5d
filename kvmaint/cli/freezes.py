"""Handlers of the data:maintenances:freezes commands: periods in which no maintenance starts."""

from __future__ import annotations

import argparse

from google.protobuf.timestamp_pb2 import Timestamp

from kvmaint.cli import format as fmt
from kvmaint.cli.context import Context
from kvmaint.cli.values import UsageError, parse_time
from kvmaint.v1 import maintenance_pb2, resources_pb2

FREEZE_COLUMNS: list[fmt.Column] = [
    ("ID", "id"),
    ("APP", "app"),
    ("FROM", "from"),
    ("TO", "to"),
    ("REASON", "reason"),
]


def freeze_view(f: resources_pb2.Freeze) -> fmt.View:
    return {
        "id": f.id,
        "app": f.app or "(fleet)",
        "from": fmt.ts_iso(f.start_time),
        "to": fmt.ts_iso(f.end_time),
        "reason": f.reason,
        "created_at": fmt.ts_iso(f.create_time),
    }


def _scope(args: argparse.Namespace) -> str:
    if args.fleet and args.app:
        raise UsageError("Use -a APP or --fleet, not both.", "--fleet")
    if not args.fleet and not args.app:
        raise UsageError("Name the app (-a APP), or --fleet for a fleet-wide freeze.", "--app")
    return "" if args.fleet else str(args.app)


def freezes_list(ctx: Context, args: argparse.Namespace) -> int:
    resp = ctx.conn.call(
        ctx.conn.maintenance.ListFreezes, maintenance_pb2.ListFreezesRequest(app=args.app or "")
    )
    views = [freeze_view(f) for f in resp.freezes]
    if not views and not ctx.out.json_mode:
        ctx.out.note("No freezes in force" + (f" on ⬢ {args.app}." if args.app else "."))
        return 0
    ctx.out.emit(views, lambda: fmt.render_table(views, FREEZE_COLUMNS))
    return 0


def freezes_add(ctx: Context, args: argparse.Namespace) -> int:
    app = _scope(args)
    start, end = Timestamp(), Timestamp()
    start.FromDatetime(parse_time(args.start, "--from"))
    end.FromDatetime(parse_time(args.end, "--to"))
    resp = ctx.conn.call(
        ctx.conn.maintenance.CreateFreeze,
        maintenance_pb2.CreateFreezeRequest(
            app=app, start_time=start, end_time=end, reason=args.reason or ""
        ),
    )
    ctx.out.done(f"Freezing maintenance of {'⬢ ' + app if app else 'the fleet'}")
    view = freeze_view(resp.freeze)
    ctx.out.emit(view, lambda: fmt.render_view(view, ["id", "app", "from", "to", "reason"]))
    return 0


def freezes_remove(ctx: Context, args: argparse.Namespace) -> int:
    app = _scope(args)
    ctx.conn.call(ctx.conn.maintenance.DeleteFreeze, maintenance_pb2.DeleteFreezeRequest(app=app, id=args.id))
    ctx.out.done(f"Removing freeze {args.id}")
    ctx.out.emit({"id": args.id, "removed": True}, lambda: "")
    return 0

"""Handlers of the webhooks commands: where an app's maintenance notifications are POSTed."""

from __future__ import annotations

import argparse

from kvmaint.cli import format as fmt
from kvmaint.cli.context import Context
from kvmaint.v1 import fleet_pb2

COLUMNS: list[fmt.Column] = [("ID", "id"), ("URL", "url"), ("CREATED", "created_at")]


def webhook_view(hook: fleet_pb2.Webhook) -> fmt.View:
    return {
        "id": hook.id,
        "app": hook.app,
        "url": hook.url,
        "created_at": fmt.ts_iso(hook.create_time),
    }


def webhooks_list(ctx: Context, args: argparse.Namespace) -> int:
    resp = ctx.conn.call(ctx.conn.fleet.ListWebhooks, fleet_pb2.ListWebhooksRequest(app=args.app or ""))
    views = [webhook_view(h) for h in resp.webhooks]
    if not views and not ctx.out.json_mode:
        ctx.out.note(f"No webhooks on ⬢ {args.app}." if args.app else "No webhooks.")
        return 0
    ctx.out.emit(views, lambda: fmt.render_table(views, COLUMNS))
    return 0


def webhooks_add(ctx: Context, args: argparse.Namespace) -> int:
    resp = ctx.conn.call(
        ctx.conn.fleet.CreateWebhook,
        fleet_pb2.CreateWebhookRequest(app=args.app or "", url=args.url, secret=args.secret or ""),
    )
    view = webhook_view(resp.webhook)
    if resp.secret:
        view["secret"] = resp.secret
    ctx.out.done(f"Adding webhook {args.url} to ⬢ {resp.webhook.app or args.app}")

    def human() -> str:
        text = fmt.render_view(view, ["id", "app", "url", "created_at"])
        if resp.secret:
            text += (
                f"\nsecret: {resp.secret}\n"
                "Keep this secret: it is shown only now. Deliveries are signed the Standard Webhooks "
                "way (webhook-id, webhook-timestamp, webhook-signature): verify them with a "
                "Standard Webhooks library and this secret."
            )
        return text

    ctx.out.emit(view, human)
    return 0


def webhooks_remove(ctx: Context, args: argparse.Namespace) -> int:
    request = fleet_pb2.DeleteWebhookRequest(app=args.app or "", id=args.id)
    ctx.conn.call(ctx.conn.fleet.DeleteWebhook, request)
    ctx.out.done(f"Removing webhook {args.id}" + (f" from ⬢ {args.app}" if args.app else ""))
    ctx.out.emit({"id": args.id, "removed": True}, lambda: "")
    return 0

"""The events command: stored events, then with --follow new ones as they happen, one line each."""

from __future__ import annotations

import argparse

from kvmaint.cli import format as fmt
from kvmaint.cli.context import Context
from kvmaint.v1 import events_pb2


def events(ctx: Context, args: argparse.Namespace) -> int:
    request = events_pb2.StreamEventsRequest(
        app=args.app or "", addon=args.addon or "", since_sequence=args.since or 0, follow=args.follow
    )
    for resp in ctx.conn.stream(ctx.conn.events.StreamEvents, request):
        view = fmt.event_view(resp.event)
        if ctx.out.json_mode:
            ctx.out.json_line(view)  # JSON Lines: a follower can parse each line as it arrives
        else:
            ctx.out.line(fmt.event_line(view))
    return 0
